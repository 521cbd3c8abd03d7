// How a mixture-of-experts layer's tokens reach their experts' ranks and come back when attention is
// data-parallel (ParallelConfig::data > 1): vLLM's all-to-all backends (`--all2all-backend`, before v0.11 the
// VLLM_ALL2ALL_BACKEND environment variable; vllm/distributed/device_communicators/all2all.py). One interface,
// implementations registered by name (moe_all2all_registry.cpp, one line each):
//
//   allgather_reducescatter  vLLM's default: dispatch all-gathers every rank's tokens (hidden states and router
//                            logits) onto every rank, each rank runs its own experts over all of them, and combine
//                            reduce-scatters the partial outputs back to the tokens' ranks. The bytes do not
//                            depend on the routing.
//   naive                    vLLM's first backend (the default before allgather_reducescatter): dispatch
//                            all-reduces a buffer of every rank's hidden states and one of their router logits
//                            (each rank fills its own rows), combine all-reduces the outputs.
//   deepep_high_throughput   DeepEP's normal kernels: each token is sent once to every rank that holds at least
//                            one of its experts (the expected distinct ranks, from the routing), in fp8 with one
//                            4-byte scale per 128 values when the experts compute in fp8 (fp8 weights on a GPU
//                            with fp8 tensor cores: vLLM quantizes before the dispatch), and combined back once per rank in the activation dtype (each rank sums its
//                            experts' weighted outputs first). Across nodes a token crosses the network once per
//                            node it has experts on, to the GPU of the same local index there (its rail), which
//                            forwards it over NVLink to the ranks of that node that need it; the two run pipelined,
//                            so the dispatch takes the longer of a rail all-to-all (T x nodes hit rows per rank) and
//                            a node all-to-all (T x ranks hit / nodes rows per rank). The combine reverses both.
//   deepep_low_latency       DeepEP's low-latency kernels: one copy per (token, expert) pair, fp8 as above, and
//                            each expert's output sent back in the activation dtype (the receiver sums them). Their
//                            buffers hold at most 256 tokens per rank (VLLM_MOE_DP_CHUNK_SIZE's default), so vLLM
//                            runs a layer in chunks of that many of the busiest rank's tokens (chunk_tokens()).
//                            GPU-initiated: every row posted at once (one latency step, MoeCollective::one_shot),
//                            plus a fixed kernel time fitted to DeepEP's published EP 8-64 latencies
//                            (moe_all2all_deepep_low_latency.cpp).
//
// Sizes are nccl-tests' (models/net/collective.h) on the stage's expert-parallel group. Routing skew: where the
// bytes follow the routing (the DeepEP backends), every rank is costed at the busiest receiver's share (what each
// rank sends x busiest / mean received), since every rank waits for the slowest in the layer.
// Group-limited routing (DeepSeek's topk_group) enters through the ranks and nodes a token reaches (ExpertReach).
// Not modelled: topk index / weight metadata, the pplx and flashinfer_all2allv backends, and the high-throughput
// kernels' fixed time (their notify step and host synchronisation; DeepEP publishes bandwidths only): they are
// costed as NCCL all-to-alls, one latency step per peer.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "models/common/registry.h"
#include "models/net/collective.h"

namespace servesim {

// One MoE layer's routing, as the backends need it.
struct MoeTraffic {
  double rank_tokens = 0;         // tokens this rank dispatches (its data-parallel group's, over tensor ranks)
  double total_tokens = 0;        // tokens over the whole expert-parallel group
  std::int64_t experts_per_token = 1;  // k
  double hidden_bytes = 0;        // one token's hidden state in the activation dtype: hidden_size x bytes
  double logits_bytes = 0;        // one token's router logits in the activation dtype: experts x bytes
  double fp8_row_bytes = 0;       // one token's hidden state in fp8 with per-128 scales; 0 unless the experts compute
                                  // in fp8
  double ranks_per_token = 1;     // expected distinct ranks a token's experts are on (ExpertReach)
  double busiest_rank_share = 1;  // busiest rank's expected distinct tokens / the mean over ranks (>= 1)
  std::int64_t nodes = 1;         // nodes the expert-parallel group spans (equal contiguous blocks of ranks)
  double nodes_per_token = 1;     // expected distinct nodes a token's experts are on
  double busiest_node_share = 1;  // busiest node's expected distinct tokens / the mean over nodes (>= 1)
  double busiest_rows_share = 1;  // busiest rank's expected (token, expert) rows / the mean over ranks (>= 1)
  // The row a dispatch sends: fp8 when the experts compute in fp8, else the activation dtype.
  [[nodiscard]] double dispatch_row_bytes() const { return fp8_row_bytes > 0 ? fp8_row_bytes : hidden_bytes; }
};

// Which GPUs of a stage's expert-parallel group a collective runs on: all of them, each node's (every node's group
// at once), or each rail's (the GPUs of one local index on every node, every rail at once).
enum class ExpertScope { group, node, rail };

// One collective of a dispatch or combine, `bytes` as nccl-tests size it for the scope's groups. `one_shot`: an
// all_to_all whose ranks post every send at once from the GPU (GroupComm::expert_collective), else NCCL's.
struct MoeCollective {
  CollectiveOp op = CollectiveOp::all_to_all;
  double bytes = 0;
  ExpertScope scope = ExpertScope::group;
  bool one_shot = false;
};

// The (at most two) collectives of one dispatch or combine: one after the other, or `concurrent` (pipelined: the
// longer one's time); `overhead` is added once (a kernel's fixed time besides its transfers).
struct MoeCommPlan {
  std::array<MoeCollective, 2> steps{};
  int count = 0;
  bool concurrent = false;
  Seconds overhead{0.0};
  MoeCommPlan& add(CollectiveOp op, double bytes, ExpertScope scope = ExpertScope::group, bool one_shot = false) {
    steps.at(static_cast<std::size_t>(count++)) = {op, bytes, scope, one_shot};
    return *this;
  }
};

// What one rank's MoE layer holds at once after the dispatch, at the peak of vLLM's start-up profile run (a
// forward of max_num_batched_tokens on every rank; moe_activation_peak): the tokens' hidden states received (with
// `logits`, their router logits too; with `fp8_rows`, in fp8 when the experts compute in fp8), the rows its experts'
// grouped GEMMs run over in one pass, whether vLLM runs them through its modular kernel (FusedMoEModularKernel,
// whose expert workspaces are wider than fused_experts'), and whether the experts' output lands in their workspace.
struct MoePeakRows {
  double received = 0;
  bool logits = false;
  bool fp8_rows = false;
  double expert_rows = 0;
  bool modular = false;
  bool output_in_workspace = false;
};

class MoeAll2AllBackend {
 public:
  virtual ~MoeAll2AllBackend() = default;
  [[nodiscard]] virtual MoeCommPlan dispatch(const MoeTraffic& t) const = 0;
  [[nodiscard]] virtual MoeCommPlan combine(const MoeTraffic& t) const = 0;
  // The most tokens per rank one dispatch takes (0: no limit); more run the MoE layer in chunks (moe_mlp_ops).
  [[nodiscard]] virtual std::int64_t chunk_tokens() const { return 0; }
  // MoePeakRows for `rank_tokens` tokens on each of `ep` ranks, k experts per token, `local_experts` physical experts
  // on this rank. Default (the all-gather and all-reduce backends, and DeepEP's high-throughput kernels): every
  // rank's tokens may reach this rank (the profile run's dummy routing can send them all to one), rank_tokens x ep,
  // with their logits when `gathers_logits()`, in fused_experts' contiguous layout: k rows per token, in passes of
  // at most VLLM_FUSED_MOE_CHUNK_SIZE (32,768, vllm/envs.py) tokens.
  [[nodiscard]] virtual MoePeakRows peak_rows(double rank_tokens, std::int64_t ep, std::int64_t k,
                                              std::int64_t local_experts) const;
  // Whether the dispatch carries every token's router logits (allgather_reducescatter, naive).
  [[nodiscard]] virtual bool gathers_logits() const { return false; }
};

// vLLM's VLLM_FUSED_MOE_CHUNK_SIZE default (vllm/envs.py): fused_experts runs at most this many tokens per pass.
inline constexpr double kFusedMoeChunkTokens = 32768.0;

// The bytes a plan's collectives put between each pair of ranks, as the per-rank send buffer of an all-to-all over
// the group that moves the same pairwise bytes (all_to_all, all_gather, reduce_scatter of S: S; all_reduce of S:
// 2 S, its reduce-scatter and all-gather), summed over the group and rail steps; node steps (NVLink forwarding
// within a node) are left out. A rail all-to-all of S moves S (nodes - 1) / nodes across nodes per rank, as a
// group all-to-all of S does, so StepTraffic (which spreads these bytes over the group's pairs) gets each rank's
// inter-node bytes right, spread over every remote GPU rather than its rail peers only.
[[nodiscard]] double all_to_all_equivalent_bytes(const MoeCommPlan& plan);

using MoeAll2AllRegistry = Registry<MoeAll2AllBackend>;
// allgather_reducescatter, deepep_high_throughput, deepep_low_latency, naive.
[[nodiscard]] const MoeAll2AllRegistry& moe_all2all_registry();
// vLLM's default backend.
inline constexpr const char* kDefaultAll2AllBackend = "allgather_reducescatter";

std::unique_ptr<MoeAll2AllBackend> make_allgather_reducescatter_all2all();
std::unique_ptr<MoeAll2AllBackend> make_naive_all2all();
std::unique_ptr<MoeAll2AllBackend> make_deepep_high_throughput_all2all();
std::unique_ptr<MoeAll2AllBackend> make_deepep_low_latency_all2all();

}  // namespace servesim
