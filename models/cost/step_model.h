// Step cost: decomposes one engine step (a batch of prefill chunks and decode tokens) into per-layer operators
// on one GPU of the replica, times each with an OpPredictor (and communication with a GroupComm), and adds the
// engine's CPU overhead. With CUDA graphs modelled (CudaGraphConfig, models/cost/cuda_graphs.h) the token-count
// operators run on the captured graph's padded token count, and the GPU time is at least the host's time to issue
// the step's kernels.
//
//   per layer:  attn_norm, qkv_proj, rope, attention (prefill | decode), o_proj, [tp all-reduce],
//               mlp_norm, gate_up_proj, act_mul, down_proj, [tp all-reduce]
//   per step:   embedding, final_norm, lm_head (sampling tokens only), sampling, [pp send/recv]
//   step time = max(gpu time, host launch time) + overhead (EngineOverhead: CPU time per step, per sequence,
//               per token)
//
// Sliding-window layers (ModelArch::layer_sliding) cost their attention over at most `window` keys per query
// (ops attention_{prefill,decode}_swa); full layers over the whole context (attention_{prefill,decode}).
//
// With pipeline parallelism p, one step of the whole pipeline runs num_layers / p layers per stage; the
// returned gpu time is the time of one micro-batch through all stages (p stage times + p-1 activation sends);
// stage_time is what bounds throughput when p micro-batches are in flight.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "models/arch/model_arch.h"
#include "models/cost/cuda_graphs.h"
#include "models/cost/moe_all2all.h"
#include "models/cost/moe_routing.h"
#include "models/cost/op_predictor.h"
#include "models/hw/gpu.h"

namespace servesim {

// Communication inside one replica's GPU group, as the step model needs it.
class GroupComm {
 public:
  virtual ~GroupComm() = default;
  // All-reduce of `bytes` per rank among the tensor-parallel group of a stage.
  [[nodiscard]] virtual OpCost all_reduce(Bytes bytes) const = 0;
  // Activations from one pipeline stage to the next.
  [[nodiscard]] virtual OpCost send_recv(Bytes bytes) const = 0;
  // The last stage's vocab-parallel logits, `per_rank` bytes on each rank, gathered onto one rank for sampling.
  [[nodiscard]] virtual OpCost gather(Bytes per_rank) const = 0;
  // All-gather among the tensor-parallel group of a stage, `size` the gathered output (nccl-tests' size). Throws
  // InputError where the model has none.
  [[nodiscard]] virtual OpCost all_gather(Bytes size) const;
  // A collective among the expert-parallel ranks of a stage (all its tensor x data GPUs; data-parallel attention's
  // MoE dispatch and combine), `size` as nccl-tests sizes `op` (models/net/collective.h) for each group of `scope`
  // (ExpertScope: the whole group, every node's GPUs at once, every rail's at once; the slowest such group's time).
  // `one_shot`: every rank posts all its sends at once from the GPU (DeepEP's kernels; all_to_all only:
  // CommGroup::one_shot_all_to_all), else NCCL's. Throws InputError where the model has no expert-parallel group.
  [[nodiscard]] virtual OpCost expert_collective(CollectiveOp op, Bytes size, ExpertScope scope = ExpertScope::group,
                                                 bool one_shot = false) const;
  // Nodes a stage's expert-parallel group spans when it splits into equal contiguous blocks of ranks per node (its
  // node and rail scopes exist), else 1.
  [[nodiscard]] virtual std::int64_t expert_nodes() const { return 1; }
};

// Parallelism of one replica. Per pipeline stage tensor x data GPUs: attention (and every non-expert layer) is
// tensor-parallel over `tensor` GPUs and, with data > 1, data-parallel over `data` such groups (each attends to
// its share of the batch and holds its sequences' KV: vLLM's and SGLang's data-parallel attention for MoE models).
// Mixture-of-experts layers: expert = 1 splits every expert's FFN over the tensor-parallel ranks (vLLM's default);
// expert = tensor x data splits the experts over all the stage's GPUs, whole (expert parallelism): with data = 1
// every rank holds every token and the MoE output is all-reduced, with data > 1 tokens are dispatched to their
// experts' ranks and combined back by two all-to-alls per MoE layer.
// Expert-parallel load balancing (expert > 1 only): vLLM's --enable-eplb with --eplb-config
// '{"num_redundant_experts": R}' (older releases: --num-redundant-experts R) holds E + R physical experts, the hottest
// logical experts replicated and the copies packed over the ranks to even their loads (ExpertPlacement::balanced,
// models/cost/moe_routing.h); each GPU holds (E + R) / expert of them, which must be whole (vLLM's requirement).
// Without it rank r holds the contiguous experts [r E / expert, (r + 1) E / expert).
// With data > 1 the MoE dispatch and combine move tokens as `all2all_backend` does (vLLM's --all2all-backend; a
// name in moe_all2all_registry(), models/cost/moe_all2all.h; vLLM's default allgather_reducescatter), and with
// tensor > 1 as well the MoE layers are sequence-parallel (models/cost/moe_mla_cost.h).
struct ParallelConfig {
  std::int64_t tensor = 1;
  std::int64_t pipeline = 1;
  double overlap = 0.0;  // fraction of communication hidden behind compute (0 = serial)
  std::int64_t expert = 1;  // expert-parallel ranks: 1, or tensor x data
  std::int64_t data = 1;    // data-parallel attention groups per stage (> 1 only with expert parallelism)
  bool enable_eplb = false;                 // expert-parallel load balancing (vLLM --enable-eplb)
  std::int64_t num_redundant_experts = 0;  // R >= 0 extra physical experts; 0 unless enable_eplb
  std::string all2all_backend = kDefaultAll2AllBackend;  // MoE dispatch / combine with data > 1
  [[nodiscard]] std::int64_t gpus() const { return tensor * data * pipeline; }
  // Physical routed experts over the expert-parallel ranks of a model of `logical` experts: E + R with EPLB, else E.
  [[nodiscard]] std::int64_t physical_experts(std::int64_t logical) const {
    return logical + (enable_eplb ? num_redundant_experts : 0);
  }
};

// The engine's CPU time per step (scheduling, input preparation, sampling bookkeeping, detokenization, Python
// work between kernels), each term >= 0, in seconds:
//   overhead = per_step + per_decode_seq * decodes + per_prefill_seq * prefill chunks
//              + per_prefill_token * prefill tokens + per_sampled_token * sampled tokens
// A prefill chunk is a sequence whose prompt tokens (a chunk of them) are computed in the step; a decode is a
// sequence computing one generated token; sampled tokens are the sequences that sample (decodes + chunks that end
// a prompt). Defaults (sim/scenario/engine_setup.cpp) are servesim's long-standing 400 us + 10 us per sequence.
struct EngineOverhead {
  Seconds per_step{0.0};
  Seconds per_decode_seq{0.0};
  Seconds per_prefill_seq{0.0};
  Seconds per_prefill_token{0.0};
  Seconds per_sampled_token{0.0};
  [[nodiscard]] Seconds of(const BatchShape& b) const {
    const auto prefill_seqs = static_cast<std::int64_t>(b.prefills.size());
    // Written so that equal per-sequence terms give the same bits as one per-sequence term times all sequences.
    return per_step + per_decode_seq * double(b.num_decodes + prefill_seqs) +
           (per_prefill_seq - per_decode_seq) * double(prefill_seqs) + per_prefill_token * double(b.prefill_tokens()) +
           per_sampled_token * double(b.num_sampled);
  }
};

struct StepOp {
  std::string name;
  Flops flops{0.0};
  Bytes bytes{0.0};
  Seconds time{0.0};  // summed over the layers it repeats in
  Bound bound = Bound::memory;
};

// Modeled GPU time of a step (or part of one) by what bounds each operator, in seconds: compute, memory bandwidth,
// communication (collectives, pipeline sends). Indexed by Bound (op_predictor.h); the overhead slot stays 0 here.
struct BoundTimes {
  std::array<double, 4> s{};
  void add(Bound b, double seconds) { s[static_cast<std::size_t>(b)] += seconds; }
  [[nodiscard]] double of(Bound b) const { return s[static_cast<std::size_t>(b)]; }
  BoundTimes& operator+=(const BoundTimes& o) {
    for (std::size_t i = 0; i < s.size(); ++i) s[i] += o.s[i];
    return *this;
  }
};

struct StepCost {
  Seconds gpu{0.0};  // the GPU timeline: the operators' time, or the host's launch time when that is longer
  Seconds overhead{0.0};
  Seconds stage{0.0};  // one pipeline stage (== gpu when pipeline = 1)
  std::vector<StepOp> ops;
  GraphRun run = GraphRun::eager;  // how the step runs (CUDA graphs, when modelled)
  std::int64_t rank_tokens = 0;    // the (busiest rank's) tokens of the step
  std::int64_t padded_tokens = 0;  // the tokens its token-count operators run on (rank_tokens unless padded)
  Seconds host{0.0};               // the host's time to issue the step (0 when CUDA graphs are not modelled)
  [[nodiscard]] Seconds total() const { return gpu + overhead; }
};

class StepModel {
 public:
  // Throws InputError when heads, layers or experts do not divide by the parallel degrees. `routing`: how tokens
  // pick experts in MoE layers (empty = uniform over the model's experts).
  // `graphs`: CUDA graphs and host launch time (default: not modelled).
  StepModel(ModelArch arch, GpuSpec gpu, ParallelConfig parallel, std::shared_ptr<const OpPredictor> predictor,
            EngineOverhead overhead, std::shared_ptr<const GroupComm> comm, ExpertRouting routing = {},
            CudaGraphConfig graphs = {});

  // How a step runs (CudaGraphConfig::run_of) and the token counts its token-count part is costed at.
  struct GraphStep {
    GraphRun run = GraphRun::eager;
    std::int64_t rank_tokens = 0;  // this GPU's data-parallel rank's tokens (the step's without data parallelism)
    std::int64_t step_tokens = 0;  // every rank's tokens
  };
  // A step whose busiest data-parallel rank holds `rank_tokens` of the `step_tokens` over every rank (equal without
  // data parallelism); `decodes_only`: no rank has a prefill chunk. A replayed graph pads the rank's tokens to the
  // capture size, and with data parallelism every rank to that (vLLM pads the ranks to the largest one's graph).
  [[nodiscard]] GraphStep graph_step(bool decodes_only, std::int64_t rank_tokens, std::int64_t step_tokens) const;
  // The host's time to issue a step that runs as `run` and samples (`samples`) or not: CudaGraphConfig::host_time
  // with this model's operator calls (every operator of the token-count part once per layer it repeats in, one
  // attention call per layer), plus the head's operators (logits and sampling, outside the graphs) when it samples.
  // 0 when CUDA graphs are not modelled.
  [[nodiscard]] Seconds host_time(GraphRun run, bool samples) const;
  // max(gpu, host): the step's GPU timeline; the excess over `gpu` is added to `bounds`' overhead slot.
  [[nodiscard]] static Seconds launch_bound(Seconds gpu, Seconds host, BoundTimes& bounds);
  [[nodiscard]] const CudaGraphConfig& cuda_graphs() const { return graphs_; }

  // Fast path for the event loop: total step time (gpu + overhead), no allocation.
  [[nodiscard]] Seconds step_time(const BatchShape& batch) const;
  // The three independent parts of the GPU time (step_time = their sum + overhead), for callers that cache
  // the first two by token and sample count (StepTimer). With data-parallel attention attention_time takes one
  // rank's sequences (busiest_rank(batch)), and the token part is rank_token_time.
  [[nodiscard]] Seconds token_time(std::int64_t tokens) const;
  [[nodiscard]] Seconds sampling_time(std::int64_t sampled) const;
  [[nodiscard]] Seconds attention_time(const BatchShape& batch) const;
  // The same three parts, also adding each operator's time to `bounds` by its Bound (the returned time has the
  // same bits as the plain call's). The operators' times sum to the part's GPU time up to rounding.
  [[nodiscard]] Seconds token_time(std::int64_t tokens, BoundTimes& bounds) const;
  [[nodiscard]] Seconds sampling_time(std::int64_t sampled, BoundTimes& bounds) const;
  [[nodiscard]] Seconds attention_time(const BatchShape& batch, BoundTimes& bounds) const;
  // Data-parallel attention (parallel().data = d > 1): each sequence of a step runs whole on one data-parallel rank
  // (vLLM runs one engine core per DP rank, each scheduling its own requests), and every MoE layer waits for all
  // ranks, so the step takes its busiest rank's time. For a batch given whole (`servesim step`, a replica scheduled
  // as one engine); a run steps one engine per rank instead (sim/engine/dp_group.h) and times each rank's own batch
  // (StepTimer::rank_gpu_time). The step's sequences are placed largest prefill chunk first,
  // each on the rank with the fewest tokens so far (ties: the lower rank), then the decodes one at a time the same
  // way: the most even split at sequence granularity. Returns the busiest rank's share (most tokens; ties: the most
  // prefill tokens, then the lower rank): its chunks, its decodes, their context tokens in proportion (rounded to
  // nearest), and num_sampled = batch.num_sampled (head_part splits the sampling evenly). `batch` itself when
  // d == 1. A step of decodes alone gives ceil(decodes / d) decodes, as the even split did.
  [[nodiscard]] BatchShape busiest_rank(const BatchShape& batch) const;
  // The token-count part for `rank_tokens` tokens on this GPU's data-parallel rank out of `tokens` in the step over
  // every rank (MoE routing and dispatch see all of them). token_time(tokens) = rank_token_time((tokens + d - 1) /
  // d, tokens); StepTimer uses this one when a step's busiest rank holds more than that.
  [[nodiscard]] Seconds rank_token_time(std::int64_t rank_tokens, std::int64_t tokens, BoundTimes& bounds) const;
  // The sampling part of one data-parallel rank that samples `sampled` sequences itself (sampling_time splits a
  // step's samples evenly over the ranks: this is sampling_time(sampled x d)).
  [[nodiscard]] Seconds rank_sampling_time(std::int64_t sampled, BoundTimes& bounds) const;
  // Tokens a sliding-window layer's decode attention reads over the batch: the sum of min(tokens, window),
  // batch.decode_window_context_tokens when the batch collected it for this model's window, otherwise the bound
  // min(decode_context_tokens, num_decodes x window) (exact when every decode is on the same side of the window).
  [[nodiscard]] std::int64_t sliding_decode_tokens(const BatchShape& batch) const;
  // One activation send between two pipeline stages for a micro-batch of `tokens` (0 without pipeline
  // parallelism); gpu time = pipeline x stage time + (pipeline - 1) x this.
  [[nodiscard]] Seconds stage_send_time(std::int64_t tokens) const;
  // The same number, with every operator named (and, when the host's launch time is the longer, the GPU's wait for
  // it as operator host_launch_wait, bound overhead).
  [[nodiscard]] StepCost breakdown(const BatchShape& batch) const;

  [[nodiscard]] const ModelArch& arch() const { return arch_; }
  [[nodiscard]] const GpuSpec& gpu() const { return gpu_; }
  [[nodiscard]] const ParallelConfig& parallel() const { return parallel_; }
  [[nodiscard]] const EngineOverhead& overhead() const { return overhead_; }
  [[nodiscard]] const OpPredictor& predictor() const { return *predictor_; }
  // Layers of each pipeline stage, as vLLM splits them (vllm/distributed/utils.py get_pp_indices, v0.8-v0.11):
  // num_layers / p each; a remainder r goes one layer each to stages p-2, p-3, ..., p-1-r (never the last, which
  // holds the final norm and LM head; the middle ones first). VLLM_PP_LAYER_PARTITION is not modelled.
  [[nodiscard]] static std::vector<std::int64_t> pp_stage_layers(std::int64_t num_layers, std::int64_t stages);
  // Weights (bytes) held by one GPU of pipeline stage `stage` (0-based): its layers (split over TP), plus the
  // vocab-parallel embedding on the first stage, and the LM head and final norm on the last (vLLM's
  // LlamaForCausalLM: PPMissingLayer elsewhere; a tied LM head shares the embedding on a single stage, and with
  // PP the last stage holds its own copy of the tied embedding as vLLM does).
  [[nodiscard]] Bytes weight_bytes_per_gpu(std::int64_t stage) const;
  // The largest stage's weights per GPU (bytes): the bound for the GPU that holds the most.
  [[nodiscard]] Bytes weight_bytes_per_gpu() const;
  // Rows of the vocab-parallel embedding / LM head one GPU holds (vocabulary padded to 64, split over TP).
  [[nodiscard]] std::int64_t vocab_per_rank() const;
  // Output features of one GPU's fused QKV projection.
  [[nodiscard]] std::int64_t qkv_width() const {
    return arch_.q_dim() / parallel_.tensor + 2 * attn_.heads_kv * attn_.head_dim;
  }
  [[nodiscard]] const ExpertRouting& routing() const { return routing_; }
  // MoE models: the physical experts each expert-parallel rank holds (one rank of all experts without EP).
  [[nodiscard]] const ExpertPlacement& expert_placement() const { return placement_; }
  // KV cache bytes per token on one GPU (of stage 0, or of pipeline stage `stage`: its layers only). MLA: the whole
  // latent on every tensor-parallel rank. With data-parallel attention a GPU holds only its own sequences' KV.
  [[nodiscard]] Bytes kv_bytes_per_token_per_gpu() const;
  [[nodiscard]] Bytes kv_bytes_per_token_per_gpu(std::int64_t stage) const;

 private:
  struct Times {
    Seconds gpu{0.0};    // one micro-batch through every stage
    Seconds stage{0.0};  // the slowest stage (the pipeline's throughput bound)
  };
  // T tokens on this GPU's data-parallel rank, `tokens` over all ranks of the stage.
  template <class Sink>
  Times dense_part(std::int64_t T, std::int64_t tokens, Sink& sink) const;
  template <class Sink>
  Times attention_part(const BatchShape& batch, Sink& sink) const;
  template <class Sink>
  Times head_part(std::int64_t sampled, Sink& sink) const;
  // The step's times (the GPU timeline: at least the host's launch time); `how`, if given, is set to how it runs.
  template <class Sink>
  Times evaluate(const BatchShape& batch, Sink& sink, GraphStep* how = nullptr) const;
  void check_moe_parallel() const;

  ModelArch arch_;
  GpuSpec gpu_;
  ParallelConfig parallel_;
  std::shared_ptr<const OpPredictor> predictor_;
  EngineOverhead overhead_;
  std::shared_ptr<const GroupComm> comm_;
  AttentionShape attn_;
  AttentionShape attn_sliding_;               // attn_ with the model's sliding window
  std::vector<std::int64_t> sliding_per_stage_;  // sliding-window layers of each pipeline stage
  std::vector<std::int64_t> moe_per_stage_;      // mixture-of-experts layers of each pipeline stage
  std::int64_t layers_per_stage_ = 0;
  ExpertRouting routing_;
  ExpertPlacement placement_;  // MoE models: expert_placement(arch_, parallel_, routing_)
  ExpertReach reach_;          // MoE models with data-parallel attention: expert_reach over the comm's nodes
  std::shared_ptr<const MoeAll2AllBackend> all2all_;  // data-parallel attention only
  AttentionShape mla_prefill_;  // MLA: the expanded form prefill runs (K, V per head, in the activation dtype)
  void prepare_graphs();
  CudaGraphConfig graphs_;
  // CUDA graphs as tables (prepare_graphs): tokens -> padded tokens up to the largest capture size; how decodes alone
  // (up to decode_graph_max_ tokens) and other steps run; the host time by GraphRun, without and with sampling.
  std::vector<std::int64_t> pad_;
  GraphRun run_mixed_ = GraphRun::eager;
  GraphRun run_decode_ = GraphRun::eager;
  std::int64_t decode_graph_max_ = 0;
  std::array<Seconds, 3> host_{};
  std::array<Seconds, 3> host_sampling_{};
};

}  // namespace servesim
