// The inter-node part of a replica's step communication: which GPU pairs on different nodes exchange how many
// bytes in a step, and how much of the step's communication time those exchanges take. With it a replica whose
// collectives cross nodes puts its traffic on the same flow-level network as the KV transfers
// (sim/cluster/step_network.h), so that both compete for NICs and fabric links.
//
// Per operator of StepModel::breakdown (names as models/cost/step_model.cpp and moe_mla_cost.cpp emit them;
// `bytes` there is the per-call message times the calls, `time` the calls' time):
//   tp_all_reduce_attn / _mlp / _moe  an all-reduce among the tensor-parallel ranks of each data-parallel group of
//       each stage, stage s taking its share of the layers (its MoE layers' share for _moe). Inter-node bytes as
//       NCCL's ring moves them: on every ring channel of the group (GroupPaths::rings, rail-aligned across nodes),
//       each edge carries 2 (n - 1) / n of the message over the channel count; the edges between nodes count.
//   tp_all_gather_moe  sequence-parallel MoE layers' all-gather among the same tensor-parallel ranks: half an
//       all-reduce's bytes on the same ring edges ((n - 1) / n of the message).
//   moe_dispatch / moe_combine  among the stage's tensor x data GPUs: every rank sends 1 / n of the op's bytes to
//       each other rank (models/net/collective_direct.cpp's plan); the pairs on different nodes count. The op's
//       bytes are the backend's collectives as such an all-to-all (all_to_all_equivalent_bytes,
//       models/cost/moe_all2all.h): each rank's inter-node bytes are right, spread over every remote GPU.
//   tp_gather_logits  the last stage's first tensor-parallel group: every rank but the first sends its shard (the
//       op's bytes / tensor) to the first.
//   pp_send_recv  activations from each stage's first GPU to the next stage's (the op's bytes / (p - 1) each).
// An operator's time counts in full for each group or boundary that crosses nodes, by its share: an all-reduce's
// time times the layer share of the stages with a group crossing nodes, a send's time times the share of
// boundaries crossing nodes. Other operators (GEMMs, attention, element-wise) move nothing between nodes.
// What is left out: NCCL's tree and NVLS algorithms move the same bytes per node pair as the ring in total but in
// other patterns; sends are modelled from the stages' first GPUs only, as the step model times them.
#pragma once
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "models/arch/model_arch.h"
#include "models/common/units.h"
#include "models/cost/step_model.h"
#include "models/net/topology.h"

namespace servesim {

// A directed pair of GPUs on different nodes, with its route's directed link ids.
struct InterNodePair {
  int src_gpu = 0;
  int dst_gpu = 0;
  std::vector<int> links;
};

class StepTraffic {
 public:
  // `gpus`: the replica's topology GPU indices, stage after stage, each stage data-parallel group after group of
  // `parallel.tensor` GPUs (sim/scenario/placement.h). Throws InputError when the list's length is not
  // parallel.gpus(), a GPU is not on the topology, or two GPUs have no route between them.
  StepTraffic(const Topology& topo, const std::vector<int>& gpus, const ParallelConfig& parallel,
              const ModelArch& arch);

  // Whether some collective or send of the replica crosses nodes.
  [[nodiscard]] bool spans_nodes() const { return !pairs_.empty(); }
  // The pairs, in a fixed order (first use while building: all-reduce rings, all-to-all, gather, sends).
  [[nodiscard]] const std::vector<InterNodePair>& pairs() const { return pairs_; }

  struct Load {
    std::vector<double> bytes;  // bytes[i] for pairs()[i]
    Seconds time{0};            // the time of the operators' parts that cross nodes
  };
  // The inter-node load of one step from its operators (StepModel::breakdown(batch).ops).
  [[nodiscard]] Load of(const std::vector<StepOp>& ops) const;

 private:
  struct Pattern {
    std::vector<std::pair<std::size_t, double>> terms;  // (pair, fraction of the op's bytes)
    double time_share = 0;
  };
  std::size_t pair(const Topology& topo, int src_gpu, int dst_gpu);

  std::vector<InterNodePair> pairs_;
  std::map<std::pair<int, int>, std::size_t> index_;
  Pattern all_reduce_;
  Pattern all_reduce_moe_;
  Pattern all_gather_moe_;
  Pattern all_to_all_;
  Pattern gather_;
  Pattern send_;
};

}  // namespace servesim
