#include "models/net/step_traffic.h"

#include <string>
#include <string_view>

#include "models/common/error.h"
#include "models/net/group_paths.h"

namespace servesim {

std::size_t StepTraffic::pair(const Topology& topo, int src_gpu, int dst_gpu) {
  const auto key = std::make_pair(src_gpu, dst_gpu);
  if (const auto it = index_.find(key); it != index_.end()) return it->second;
  // Throws InputError naming both GPUs' declarations when there is no route.
  pairs_.push_back(InterNodePair{src_gpu, dst_gpu, topo.gpu_route(src_gpu, dst_gpu).links});
  return index_.emplace(key, pairs_.size() - 1).first->second;
}

StepTraffic::StepTraffic(const Topology& topo, const std::vector<int>& gpus, const ParallelConfig& parallel,
                         const ModelArch& arch) {
  const std::int64_t t = parallel.tensor;
  const std::int64_t d = parallel.data;
  const std::int64_t p = parallel.pipeline;
  if (static_cast<std::int64_t>(gpus.size()) != parallel.gpus()) {
    throw InputError("step traffic: " + std::to_string(gpus.size()) + " GPUs for tensor x data x pipeline = " +
                     std::to_string(parallel.gpus()));
  }
  for (const int g : gpus) {
    if (g < 0 || g >= topo.gpu_count()) {
      throw InputError("step traffic: GPU " + std::to_string(g) + " is not on topology " + topo.name());
    }
  }
  const auto at = [&](std::int64_t stage, std::int64_t i) {
    return gpus[static_cast<std::size_t>(stage * t * d + i)];
  };
  const std::vector<std::int64_t> layers = StepModel::pp_stage_layers(arch.num_layers, p);
  const double all_layers = static_cast<double>(arch.num_layers);
  const double moe_layers = static_cast<double>(arch.moe.moe_layers());
  std::int64_t first_layer = 0;
  for (std::int64_t s = 0; s < p; ++s) {
    const std::int64_t n_layers = layers[static_cast<std::size_t>(s)];
    const double share = static_cast<double>(n_layers) / all_layers;
    const double moe_share =
        moe_layers > 0 ? static_cast<double>(arch.moe.moe_layers(first_layer, n_layers)) / moe_layers : 0.0;
    first_layer += n_layers;
    // Tensor-parallel all-reduces: every data-parallel group of the stage, on NCCL's ring channels.
    bool crosses = false;
    if (t > 1) {
      for (std::int64_t g = 0; g < d; ++g) {
        std::vector<int> group;
        for (std::int64_t i = 0; i < t; ++i) group.push_back(at(s, g * t + i));
        const GroupPaths paths(topo, group);
        if (paths.node_count() < 2) continue;
        crosses = true;
        const double ring = 2.0 * static_cast<double>(t - 1) / static_cast<double>(t);
        for (const Transfer& x : GroupPaths::ring_transfers(paths.rings(), ring)) {
          if (paths.node_of(x.src) == paths.node_of(x.dst)) continue;
          const std::size_t k = pair(topo, group[static_cast<std::size_t>(x.src)], group[static_cast<std::size_t>(x.dst)]);
          all_reduce_.terms.emplace_back(k, x.fraction * share);
          all_reduce_moe_.terms.emplace_back(k, x.fraction * moe_share);
          // A ring all-gather moves half an all-reduce's bytes on the same edges.
          all_gather_moe_.terms.emplace_back(k, 0.5 * x.fraction * moe_share);
        }
      }
    }
    if (crosses) {
      all_reduce_.time_share += share;
      all_reduce_moe_.time_share += moe_share;
      all_gather_moe_.time_share += moe_share;
    }
    // Expert-parallel all-to-all over the stage's tensor x data GPUs.
    const std::int64_t n = t * d;
    if (d > 1) {
      bool a2a_crosses = false;
      for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
          if (i == j || topo.node_of_gpu(at(s, i)) == topo.node_of_gpu(at(s, j))) continue;
          a2a_crosses = true;
          all_to_all_.terms.emplace_back(pair(topo, at(s, i), at(s, j)), moe_share / static_cast<double>(n));
        }
      }
      if (a2a_crosses) all_to_all_.time_share += moe_share;
    }
  }
  // Logits gathered onto the last stage's first GPU.
  if (t > 1) {
    bool crosses = false;
    for (std::int64_t i = 1; i < t; ++i) {
      if (topo.node_of_gpu(at(p - 1, i)) == topo.node_of_gpu(at(p - 1, 0))) continue;
      crosses = true;
      gather_.terms.emplace_back(pair(topo, at(p - 1, i), at(p - 1, 0)), 1.0 / static_cast<double>(t));
    }
    if (crosses) gather_.time_share = 1.0;
  }
  // Activations between consecutive stages' first GPUs.
  for (std::int64_t s = 0; s + 1 < p; ++s) {
    if (topo.node_of_gpu(at(s, 0)) == topo.node_of_gpu(at(s + 1, 0))) continue;
    send_.terms.emplace_back(pair(topo, at(s, 0), at(s + 1, 0)), 1.0 / static_cast<double>(p - 1));
    send_.time_share += 1.0 / static_cast<double>(p - 1);
  }
}

StepTraffic::Load StepTraffic::of(const std::vector<StepOp>& ops) const {
  Load out;
  out.bytes.assign(pairs_.size(), 0.0);
  for (const StepOp& op : ops) {
    const std::string_view name = op.name;
    const Pattern* pat = nullptr;
    if (name == "tp_all_reduce_attn" || name == "tp_all_reduce_mlp") {
      pat = &all_reduce_;
    } else if (name == "tp_all_reduce_moe") {
      pat = &all_reduce_moe_;
    } else if (name == "tp_all_gather_moe") {
      pat = &all_gather_moe_;
    } else if (name == "moe_dispatch" || name == "moe_combine") {
      pat = &all_to_all_;
    } else if (name == "tp_gather_logits") {
      pat = &gather_;
    } else if (name == "pp_send_recv") {
      pat = &send_;
    }
    if (pat == nullptr || pat->terms.empty()) continue;
    for (const auto& [k, fraction] : pat->terms) out.bytes[k] += op.bytes.value() * fraction;
    out.time += op.time * pat->time_share;
  }
  return out;
}

}  // namespace servesim
