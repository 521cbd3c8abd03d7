// Operators of the mixture-of-experts MLP and of multi-head latent attention's projections on one GPU, for the
// step model (step_model.cpp calls them inside its per-layer loop; each op is reported through `emit`).
//
// MoE layer (ModelArch::moe), T tokens on this GPU (T_total over the stage's data-parallel ranks):
//   moe_router      GEMM [T, E, hidden], in the checkpoint dtype (vLLM builds the gate with quant_config=None)
//   moe_topk        softmax / sigmoid + top-k over [T, E] fp32 scores (elementwise)
//   moe_dispatch    data-parallel attention only: the tokens to their experts' ranks, as the all-to-all backend
//                   (ParallelConfig::all2all_backend, models/cost/moe_all2all.h) moves them on the expert-parallel
//                   group; its bytes are what one rank sends (an all-to-all's send buffer moving the same pairwise
//                   bytes, all_to_all_equivalent_bytes), summed over the backend's collectives
//   moe_gate_up     grouped GEMM over the experts this GPU holds that receive a token (ExpertRouting::load)
//   moe_act_mul     SiLU-and-mul over the routed rows
//   moe_down        grouped GEMM
//   moe_combine     data-parallel attention only: the outputs back, as the backend moves them
//   shared_gate_up, shared_act_mul, shared_down   the shared experts (a dense SwiGLU MLP, split over TP)
//   shared_expert_gate                            Qwen2-MoE: GEMM [T, 1, hidden]
//   tp_all_reduce_moe  without data-parallel attention, when the layer is split over more than one GPU
//   tp_all_gather_moe  sequence-parallel MoE only (below): the tensor-parallel group's outputs, [T, hidden]
// A backend with a dispatch limit per rank (MoeAll2AllBackend::chunk_tokens, DeepEP's low-latency kernels) runs the
// layer's router to combine in chunks of at most that many of this GPU's tokens, each op costed once per chunk.
// Sequence-parallel MoE (vLLM's use_sequence_parallel_moe: tensor > 1 with data-parallel attention and expert
// parallelism): each tensor-parallel rank takes ceil(T / tensor) of its group's tokens through the whole MoE layer
// (router, dispatch, experts, combine, and the shared experts, which are then not split over TP: vLLM builds them
// with disable_tp), and the group all-gathers the outputs.
// Expert placement: expert = 1 splits each expert's FFN over the TP ranks (every GPU runs every hit expert with
// width I / tp); expert parallelism gives each rank whole experts (expert_placement: the contiguous experts
// [r E / ep, (r + 1) E / ep), or with EPLB its (E + R) / ep physical experts, replicas taking q_i / replicas of the
// tokens each), and the layer waits for the busiest rank (the one whose grouped GEMMs take longest under the
// routing).
// Dispatch volume with skew: the busiest rank receives T_total x (its physical experts' selection probabilities)
// rows; where the backend's bytes follow the routing, every rank is costed as sending that rank's share (the
// slowest rank bounds the layer).
//
// MLA projections (ModelArch::mla), as vLLM's DeepseekV2MLAAttention runs them, TP splits heads:
//   mla_qkv_a   GEMM [T, q_lora_rank + kv_lora_rank + rope, hidden], replicated (fused q_a_proj + kv_a_proj)
//               (without q_lora_rank: mla_q [T, heads/tp x qk_head_dim, hidden] and mla_kv_a [T, kv_lora + rope, h])
//   mla_norms   RMSNorm of the q and kv latents
//   mla_q_b     GEMM [T, heads/tp x qk_head_dim, q_lora_rank]
//   mla_kv_b    GEMM [T, heads/tp x (qk_nope + v_head_dim), kv_lora_rank]: prefill expands the new tokens' K_nope
//               and V with it; decode multiplies q_nope by W_UK and the latent output by W_UV (the absorbed form),
//               the same weights and FLOPs per token, so one op costs both
//   rope        over q's and k's rope dims
//   o           GEMM [T, hidden, heads/tp x v_head_dim]
// Prefill chunks after the first also expand their cached context's latent (mla_context_kv_b, in the attention
// part: it depends on the context, not on T).
#pragma once
#include <cstdint>
#include <functional>

#include "models/arch/model_arch.h"
#include "models/cost/moe_routing.h"
#include "models/cost/op_predictor.h"
#include "models/hw/gpu.h"

namespace servesim {

class GroupComm;
class MoeAll2AllBackend;
struct ParallelConfig;

// One op of a layer: name, FLOPs, bytes, its cost on one GPU.
using EmitOp = std::function<void(const char* name, Flops flops, Bytes bytes, OpCost cost)>;

struct LayerCostContext {
  const ModelArch& arch;
  const GpuSpec& gpu;
  const ParallelConfig& parallel;
  const OpPredictor& predictor;
  const GroupComm* comm;  // null for a single GPU
  const ExpertRouting& routing;
  const ExpertPlacement& placement;  // expert_placement(arch, parallel, routing); MoE models only
  const ExpertReach& reach;          // expert_reach(routing, placement, comm's expert_nodes()); with data > 1 only
  const MoeAll2AllBackend* all2all;  // data-parallel attention's dispatch / combine; null when parallel.data == 1
};

// The physical experts of each expert-parallel rank (one rank of every expert when parallel.expert = 1): the
// contiguous placement, or with parallel.enable_eplb ExpertPlacement::balanced over the routing's q_i with
// parallel.num_redundant_experts extra copies. Empty for a model without MoE layers. Throws InputError with key()
// "parallel.enable_eplb" (a model without MoE layers, or expert_parallel_size 1: vLLM's EPLB needs expert
// parallelism) or "parallel.num_redundant_experts" (< 0, set without enable_eplb, or E + R not divisible by
// expert_parallel_size, which vLLM requires).
// With EPLB the model's expert groups (MoeArch::num_expert_groups) and the `nodes` the expert-parallel ranks span
// select EPLB's hierarchical policy where the groups divide over the nodes (ExpertPlacement::balanced).
ExpertPlacement expert_placement(const ModelArch& arch, const ParallelConfig& parallel, const ExpertRouting& routing,
                                 std::int64_t nodes = 1);

// The MoE MLP of one layer (without its RMSNorm) for `tokens` on this GPU, `total_tokens` over the stage's
// data-parallel ranks; returns one GPU's time for the layer.
Seconds moe_mlp_ops(const LayerCostContext& c, std::int64_t tokens, std::int64_t total_tokens, const EmitOp& emit);
// MLA's projections of one layer (everything but attention_norm and the attention kernels).
Seconds mla_projection_ops(const LayerCostContext& c, std::int64_t tokens, const EmitOp& emit);
// The peak a MoE layer reaches on one GPU in vLLM's start-up profile run (a forward of `tokens` =
// max_num_batched_tokens on every data-parallel rank; the activation reserve, sim/scenario/engine_setup.cpp), in the
// checkpoint dtype, for the Triton path of vLLM's FusedMoE (fused_experts, vllm/model_executor/layers/fused_moe/
// fused_moe.py; other expert kernels hold workspaces of the same rows), bytes:
//   2 x Tm x h            the residual and the layer's input on this GPU (Tm = ceil(tokens / TP) with
//                         sequence-parallel MoE, else tokens)
//   received x (h [+ E])  with data-parallel attention, the tokens the dispatch brings (MoePeakRows from the
//                         all-to-all backend: the all-gather's every rank's tokens with their router logits; DeepEP's
//                         rows in fp8 for fp8 experts)
//   out x h               the experts' output (received tokens, or this GPU's Tm without data parallelism; none
//                         where it lands in the workspace: DeepEP low latency's batched experts)
//   rows x width          the experts' workspaces over one pass, N = 2 x the expert width on this GPU
//                         (moe_intermediate_size, / TP without expert parallelism); rows = k x min(tokens of the
//                         pass, VLLM_FUSED_MOE_CHUNK_SIZE 32,768; vLLM 0.7 - 0.11, later releases do not chunk)
//                         without data parallelism, else the backend's. width: fused_experts' cache13 (gate_up's
//                         output, later down's, one buffer) and cache2 (SiLU-and-mul's output), max(N, h) + N / 2;
//                         through vLLM's modular kernel (DeepEP's backends, and block-scaled fp8 experts:
//                         DeepGEMM, ModelArch::fp8_block_scaled), its workspace13 and workspace2,
//                         max(N / 2, h) + max(N, h) (DeepGEMM's padding of each expert's rows to its block is not
//                         counted).
// DeepEP's own communication buffers (NVSHMEM, outside PyTorch's allocator) are not counted. 0 for a model without
// MoE layers. Throws InputError for an unknown parallel.all2all_backend.
[[nodiscard]] Bytes moe_activation_peak(const ModelArch& arch, const ParallelConfig& parallel, std::int64_t tokens);
// Weights of layer `layer` on one GPU (bytes), for MoE and MLA models. A MoE layer holds physical_experts(E) / ep
// routed experts per GPU: (E + R) / ep with EPLB (every replica is a full copy of its expert's weights).
double moe_mla_layer_weight_bytes(const ModelArch& arch, const ParallelConfig& parallel, std::int64_t layer);

}  // namespace servesim
