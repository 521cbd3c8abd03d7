#include "models/cost/cuda_graphs.h"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

namespace servesim {
namespace {

constexpr std::array<std::pair<const char*, CudaGraphMode>, 5> kModes{{
    {"NONE", CudaGraphMode::none},
    {"PIECEWISE", CudaGraphMode::piecewise},
    {"FULL", CudaGraphMode::full},
    {"FULL_DECODE_ONLY", CudaGraphMode::full_decode_only},
    {"FULL_AND_PIECEWISE", CudaGraphMode::full_and_piecewise},
}};

}  // namespace

CudaGraphMode parse_cuda_graph_mode(const std::string& name) {
  for (const auto& [n, m] : kModes) {
    if (name == n) return m;
  }
  std::string valid;
  for (const auto& [n, m] : kModes) valid += std::string(valid.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown cudagraph_mode '" + name + "' (valid: " + valid + ")");
}

const char* to_string(CudaGraphMode m) {
  for (const auto& [n, mode] : kModes) {
    if (mode == m) return n;
  }
  return "?";
}

const char* to_string(GraphRun r) {
  switch (r) {
    case GraphRun::full: return "full";
    case GraphRun::piecewise: return "piecewise";
    case GraphRun::eager: return "eager";
  }
  return "?";
}

std::vector<std::int64_t> default_cuda_graph_capture_sizes(std::int64_t max_size, std::int64_t max_num_batched_tokens) {
  std::vector<std::int64_t> sizes;
  for (const std::int64_t s : {1, 2, 4}) {
    if (s <= max_size) sizes.push_back(s);
  }
  for (std::int64_t s = 8; s < 256 && s <= max_size; s += 8) sizes.push_back(s);
  for (std::int64_t s = 256; s <= max_size; s += 16) sizes.push_back(s);
  if (max_num_batched_tokens > 0 && max_num_batched_tokens == max_size &&
      (sizes.empty() || sizes.back() != max_size)) {
    sizes.push_back(max_size);
  }
  return sizes;
}

GraphRun CudaGraphConfig::run_of(bool decodes_only, std::int64_t tokens) const {
  if (mode == CudaGraphMode::none || tokens > max_capture_size()) return GraphRun::eager;
  // Full decode graphs exist up to max_num_seqs sequences.
  const bool decode_graph = decodes_only && (max_num_seqs <= 0 || capture_size_for(tokens) <= max_num_seqs);
  switch (mode) {
    case CudaGraphMode::full: return GraphRun::full;
    case CudaGraphMode::piecewise: return GraphRun::piecewise;
    case CudaGraphMode::full_decode_only: return decode_graph ? GraphRun::full : GraphRun::eager;
    case CudaGraphMode::full_and_piecewise: return decode_graph ? GraphRun::full : GraphRun::piecewise;
    case CudaGraphMode::none: break;
  }
  return GraphRun::eager;
}

std::int64_t CudaGraphConfig::capture_size_for(std::int64_t tokens) const {
  return *std::lower_bound(capture_sizes.begin(), capture_sizes.end(), tokens);
}

std::int64_t CudaGraphConfig::padded_tokens(bool decodes_only, std::int64_t tokens) const {
  if (!modelled || tokens <= 0 || run_of(decodes_only, tokens) == GraphRun::eager) return tokens;
  return capture_size_for(tokens);
}

std::string CudaGraphConfig::eager_reason(bool decodes_only, std::int64_t tokens) const {
  if (run_of(decodes_only, tokens) != GraphRun::eager) return "";
  if (mode == CudaGraphMode::none) return off_reason.empty() ? "cudagraph_mode NONE" : off_reason;
  if (tokens > max_capture_size()) {
    return std::to_string(tokens) + " tokens > the largest capture size " + std::to_string(max_capture_size());
  }
  if (!decodes_only) return "FULL_DECODE_ONLY and a prefill chunk";
  return "FULL_DECODE_ONLY, and no decode graph of " + std::to_string(capture_size_for(tokens)) +
         " past max_num_seqs " + std::to_string(max_num_seqs);
}

Seconds CudaGraphConfig::host_time(GraphRun run, std::int64_t layers, double eager_ops) const {
  if (!modelled) return Seconds{0.0};
  switch (run) {
    case GraphRun::full: return graph_replay_host;
    case GraphRun::piecewise: return graph_replay_host * double(layers + 1) + eager_op_host * double(layers);
    case GraphRun::eager: return eager_op_host * eager_ops;
  }
  return Seconds{0.0};
}

}  // namespace servesim
