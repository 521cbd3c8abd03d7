#include "models/cost/kv_transfer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include <fmt/format.h>

#include "models/common/error.h"
#include "models/cost/step_model.h"

namespace servesim {
namespace {

void check_tokens(std::int64_t tokens) {
  if (tokens < 0 || tokens > kMaxTokensPerRequest) {
    throw InputError(fmt::format("KV transfer: tokens = {} must be in [0, {}]", tokens, kMaxTokensPerRequest));
  }
}

// First and one-past-last KV head held by `rank` of a TP group of `tp` over `heads` heads (vLLM's layout).
std::pair<std::int64_t, std::int64_t> heads_of(std::int64_t heads, int tp, int rank) {
  if (heads >= tp) {
    const std::int64_t per = heads / tp;
    return {rank * per, (rank + 1) * per};
  }
  const std::int64_t h = static_cast<std::int64_t>(rank) * heads / tp;
  return {h, h + 1};
}

void check_tp(const ModelArch& arch, int tp, const char* what) {
  if (tp < 1) throw InputError(fmt::format("KV transfer: {} tensor-parallel degree {} must be >= 1", what, tp));
  if (arch.mla.enabled()) return;
  const std::int64_t h = arch.num_kv_heads;
  if (h < 1) throw InputError(fmt::format("KV transfer: {}: the model has no KV heads", arch.name));
  if ((h >= tp && h % tp != 0) || (h < tp && tp % h != 0)) {
    throw InputError(fmt::format("KV transfer: {} tensor-parallel degree {} neither divides nor is a multiple of "
                                 "{}'s {} KV heads",
                                 what, tp, arch.name, h));
  }
}

}  // namespace

Bytes kv_transfer_bytes(const ModelArch& arch, std::int64_t tokens) {
  check_tokens(tokens);
  return arch.kv_bytes_per_token() * static_cast<double>(tokens);
}

std::vector<KvShard> kv_transfer_pairs(const ModelArch& arch, std::int64_t tokens, int sender_tp, int receiver_tp) {
  check_tokens(tokens);
  check_tp(arch, sender_tp, "sender");
  check_tp(arch, receiver_tp, "receiver");
  std::vector<KvShard> out;
  if (arch.mla.enabled()) {
    const Bytes all = kv_transfer_bytes(arch, tokens);
    for (int j = 0; j < receiver_tp; ++j) out.push_back({j % sender_tp, j, all, 0});
    return out;
  }
  // One KV head's K and V over all layers, per token.
  const double head_bytes = 2.0 * static_cast<double>(arch.num_layers * arch.head_dim) * arch.kv_bytes_per_element;
  for (int j = 0; j < receiver_tp; ++j) {
    std::map<int, std::int64_t> from;  // sender rank -> heads
    const auto [first, last] = heads_of(arch.num_kv_heads, receiver_tp, j);
    for (std::int64_t h = first; h < last; ++h) {
      for (int i = 0; i < sender_tp; ++i) {
        const auto [sf, sl] = heads_of(arch.num_kv_heads, sender_tp, i);
        if (h >= sf && h < sl) {
          ++from[i];
          break;
        }
      }
    }
    for (const auto& [i, heads] : from) {
      out.push_back({i, j, Bytes{head_bytes * static_cast<double>(heads) * static_cast<double>(tokens)}, heads});
    }
  }
  return out;
}

std::int64_t sliding_held_tokens(std::int64_t tokens, std::int64_t window, std::int64_t block_size) {
  if (window <= 0) return tokens;
  if (block_size < 1) throw InputError(fmt::format("KV transfer: block_size = {} must be >= 1", block_size));
  return tokens - std::max<std::int64_t>(0, tokens - window + 1) / block_size * block_size;
}

std::vector<KvShard> kv_transfer_pairs(const ModelArch& arch, std::int64_t tokens, KvLayout sender,
                                       KvLayout receiver, std::int64_t sliding_window, std::int64_t block_size) {
  for (const auto& [what, pp] : {std::pair{"sender", sender.pp}, std::pair{"receiver", receiver.pp}}) {
    if (pp < 1 || pp > arch.num_layers) {
      throw InputError(fmt::format("KV transfer: {} pipeline-parallel degree {} must be in [1, {}] ({}'s layers)",
                                   what, pp, arch.num_layers, arch.name));
    }
  }
  std::vector<KvShard> tp_pairs = kv_transfer_pairs(arch, tokens, sender.tp, receiver.tp);
  // With sliding layers holding fewer tokens: layers [first, first + count)'s share of a pair's bytes, every token of
  // the full layers and the held ones of the sliding layers.
  const std::int64_t held = sliding_held_tokens(tokens, sliding_window, block_size);
  const bool sliding = sliding_window > 0 && held < tokens && arch.sliding_layers() > 0;
  const double all_layers = static_cast<double>(arch.num_layers);
  const auto share = [&](std::int64_t first, std::int64_t count) {
    const auto swa = static_cast<double>(arch.sliding_layers(first, count));
    return (static_cast<double>(count) - swa + swa * static_cast<double>(held) / static_cast<double>(tokens)) /
           all_layers;
  };
  if (sender.pp == 1 && receiver.pp == 1) {
    for (KvShard& k : tp_pairs) {
      k.layers = arch.num_layers;
      if (sliding) k.bytes = Bytes{k.bytes.v * share(0, arch.num_layers)};
    }
    return tp_pairs;
  }
  // Layer ranges [first, last) of each stage.
  const auto ranges = [&](int pp) {
    std::vector<std::pair<std::int64_t, std::int64_t>> out;
    std::int64_t first = 0;
    for (const std::int64_t n : StepModel::pp_stage_layers(arch.num_layers, pp)) {
      out.emplace_back(first, first + n);
      first += n;
    }
    return out;
  };
  const auto send = ranges(sender.pp);
  const auto recv = ranges(receiver.pp);
  std::vector<KvShard> out;
  for (int r = 0; r < receiver.pp; ++r) {
    for (int s = 0; s < sender.pp; ++s) {
      const std::int64_t first = std::max(send[static_cast<std::size_t>(s)].first, recv[static_cast<std::size_t>(r)].first);
      const std::int64_t last = std::min(send[static_cast<std::size_t>(s)].second, recv[static_cast<std::size_t>(r)].second);
      if (last <= first) continue;
      for (KvShard k : tp_pairs) {
        k.bytes = Bytes{sliding ? k.bytes.v * share(first, last - first)
                                : k.bytes.v / all_layers * static_cast<double>(last - first)};
        k.sender_stage = s;
        k.receiver_stage = r;
        k.layers = last - first;
        out.push_back(k);
      }
    }
  }
  return out;
}

Seconds layer_streamed_exposed(Seconds prefill, std::int64_t layers, Seconds per_layer) {
  if (layers < 1) throw InputError(fmt::format("KV transfer: layers = {} must be >= 1", layers));
  for (const auto& [what, s] : {std::pair{"prefill", prefill}, std::pair{"per-layer send", per_layer}}) {
    if (!(s.value() >= 0.0) || !std::isfinite(s.value())) {
      throw InputError(fmt::format("KV transfer: {} time {} s must be finite and >= 0", what, s.value()));
    }
  }
  const double compute = prefill.value() / static_cast<double>(layers);
  const double backlog = std::max(0.0, per_layer.value() - compute);
  return Seconds{per_layer.value() + static_cast<double>(layers - 1) * backlog};
}

}  // namespace servesim
