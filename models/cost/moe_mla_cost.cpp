#include "models/cost/moe_mla_cost.h"

#include <algorithm>
#include <optional>
#include <string>

#include "models/common/error.h"
#include "models/cost/moe_all2all.h"
#include "models/cost/step_model.h"

namespace servesim {
namespace {

// Reports ops through `emit` and sums their time; GEMMs of T rows in the layer's weight precision.
struct Emitter {
  const LayerCostContext& c;
  const EmitOp& emit;
  std::int64_t T;
  double e = c.arch.weight_bytes_per_param;
  bool fp8_weights = c.arch.quantization == Quantization::fp8;
  bool fp8_math = fp8_weights && c.gpu.has_fp8();
  Seconds total{0.0};
  void operator()(const char* name, Flops f, Bytes b, OpCost cost) {
    emit(name, f, b, cost);
    total += cost.time;
  }
  // Y[T, n] = X[T, k] W^T; `quantized` = false for weights vLLM keeps in the checkpoint dtype (routers).
  void gemm(const char* name, std::int64_t n, std::int64_t k, bool quantized = true) {
    const GemmShape g{name, T, n, k, e, quantized && fp8_weights ? 1.0 : 0.0, quantized && fp8_math};
    (*this)(name, g.flops(), g.bytes(), c.predictor.gemm(g));
  }
  void elementwise(const char* name, double bytes, double flops) {
    (*this)(name, Flops{flops}, Bytes{bytes}, c.predictor.elementwise(Bytes{bytes}, Flops{flops}));
  }
};

// An error about a [parallel] key: key() names it, so that the scenario loader places it at the key.
InputError parallel_error(const char* key, const std::string& detail) {
  return InputError(ErrorPlace{"", std::nullopt, std::string("parallel.") + key}, detail);
}

}  // namespace

ExpertPlacement expert_placement(const ModelArch& arch, const ParallelConfig& par, const ExpertRouting& routing,
                                 std::int64_t nodes) {
  const std::int64_t R = par.num_redundant_experts;
  if (R < 0) throw parallel_error("num_redundant_experts", "must be >= 0 (got " + std::to_string(R) + ")");
  if (R > 0 && !par.enable_eplb) {
    throw parallel_error("num_redundant_experts", "applies with enable_eplb = true only (vLLM's redundant experts "
                                                  "are part of expert-parallel load balancing)");
  }
  if (par.enable_eplb && !arch.moe.enabled()) {
    throw parallel_error("enable_eplb", arch.name + " has no mixture-of-experts layers");
  }
  if (!arch.moe.enabled()) return {};
  const std::int64_t E = arch.moe.num_experts;
  const std::int64_t ep = par.expert;
  if (!par.enable_eplb) return ExpertPlacement::contiguous(E, ep);
  if (ep <= 1) {
    throw parallel_error("enable_eplb", "needs expert parallelism (expert_parallel_size > 1), as vLLM's "
                                        "--enable-eplb does");
  }
  if ((E + R) % ep != 0) {
    throw parallel_error("num_redundant_experts",
                         std::to_string(E) + " experts of " + arch.name + " + " + std::to_string(R) +
                             " redundant = " + std::to_string(E + R) + " physical experts do not divide by "
                             "expert_parallel_size " + std::to_string(ep) + " (vLLM requires whole experts per rank)");
  }
  return ExpertPlacement::balanced(routing.select(), ep, R, arch.moe.num_expert_groups, nodes);
}

namespace {

// One MoE layer's router, dispatch, experts, combine and shared experts for Tm tokens on this GPU (its slice with
// sequence-parallel MoE), `total_tokens` over the expert-parallel group.
Seconds moe_block(const LayerCostContext& c, std::int64_t Tm, std::int64_t total_tokens, bool sequence_parallel,
                  const EmitOp& emit) {
  const MoeArch& moe = c.arch.moe;
  const ParallelConfig& par = c.parallel;
  Emitter add{c, emit, Tm};
  const double e = add.e;
  const std::int64_t h = c.arch.hidden_size;
  const std::int64_t E = moe.num_experts;
  const std::int64_t k = moe.experts_per_token;
  add.gemm("moe_router", E, h, false);
  add.elementwise("moe_topk", double(Tm) * double(E) * (e + 4.0) + double(Tm * k) * 8.0, 5.0 * double(Tm) * double(E));

  // The experts: per expert-parallel rank, its experts' load; the busiest rank bounds the layer.
  const std::int64_t ep = par.expert;
  const std::int64_t width = ep > 1 ? moe.expert_intermediate_size : moe.expert_intermediate_size / par.tensor;
  // Tokens routed over: every token of the stage (after the dispatch, or because every rank holds them all).
  const double routed_tokens = double(ep > 1 ? total_tokens : Tm);
  struct RankCost {
    GroupedGemmShape gate_up_shape, down_shape;
    OpCost gate_up, act, down;
    double rows = 0.0;
    [[nodiscard]] Seconds time() const { return gate_up.time + act.time + down.time; }
  };
  auto rank_cost = [&](std::int64_t r) {
    const ExpertRouting::Load load = c.routing.load(routed_tokens, c.placement.rank(r));
    // Expert weights: fp8, MXFP4 (weight-only: dequantized to the activations' precision) or the checkpoint's.
    const double w = c.arch.quantization == Quantization::mxfp4 ? kMxfp4BytesPerWeight : add.fp8_weights ? 1.0 : 0.0;
    RankCost rc{{"moe_gate_up", load.groups, load.rows, load.rows_per_group(), 2 * width, h, e, w, add.fp8_math},
                {"moe_down", load.groups, load.rows, load.rows_per_group(), h, width, e, w, add.fp8_math},
                {}, {}, {}, load.rows};
    rc.gate_up = c.predictor.grouped_gemm(rc.gate_up_shape);
    rc.down = c.predictor.grouped_gemm(rc.down_shape);
    const double act_elems = load.rows * double(width);
    rc.act = c.predictor.elementwise(Bytes{3.0 * act_elems * e}, Flops{5.0 * act_elems});
    return rc;
  };
  RankCost busiest = rank_cost(0);
  double busiest_rows = busiest.rows;
  for (std::int64_t r = 1; r < ep; ++r) {
    RankCost rc = rank_cost(r);
    if (rc.time() > busiest.time()) busiest = rc;
    busiest_rows = std::max(busiest_rows, rc.rows);
  }
  // Data-parallel attention: the backend's dispatch and combine on the expert-parallel group.
  MoeCommPlan dispatch, combine;
  if (par.data > 1) {
    MoeTraffic tr;
    tr.rank_tokens = double(Tm);
    tr.total_tokens = double(total_tokens);
    tr.experts_per_token = k;
    tr.hidden_bytes = double(h) * e;
    tr.logits_bytes = double(E) * e;
    // vLLM quantizes before a DeepEP dispatch when the experts compute in fp8: 1 byte per value, a 4-byte scale per 128.
    if (add.fp8_math) tr.fp8_row_bytes = double(h) + 4.0 * double((h + 127) / 128);
    // Ranks and nodes a token reaches: rank r on node r / (ep / nodes), the comm's contiguous blocks.
    const std::int64_t nodes = c.comm->expert_nodes();
    const ExpertReach& reach = c.reach;
    tr.ranks_per_token = reach.ranks_per_token;
    tr.busiest_rank_share =
        reach.ranks_per_token > 0.0 ? reach.busiest_rank_hit * double(ep) / reach.ranks_per_token : 1.0;
    tr.nodes = nodes;
    tr.nodes_per_token = reach.nodes_per_token;
    tr.busiest_node_share =
        reach.nodes_per_token > 0.0 ? reach.busiest_node_hit * double(nodes) / reach.nodes_per_token : 1.0;
    const double mean_rows = double(total_tokens) * double(k) / double(ep);
    tr.busiest_rows_share = mean_rows > 0.0 ? busiest_rows / mean_rows : 1.0;
    dispatch = c.all2all->dispatch(tr);
    combine = c.all2all->combine(tr);
  }
  auto communicate = [&](const char* name, const MoeCommPlan& plan) {
    if (plan.count == 0) return;
    Seconds t{0.0};
    for (int i = 0; i < plan.count; ++i) {
      const MoeCollective& s = plan.steps[static_cast<std::size_t>(i)];
      const Seconds step = c.comm->expert_collective(s.op, Bytes{s.bytes}, s.scope, s.one_shot).time;
      t = plan.concurrent ? std::max(t, step) : t + step;
    }
    t += plan.overhead;
    const double bytes = all_to_all_equivalent_bytes(plan);
    add(name, Flops{0.0}, Bytes{bytes}, OpCost{t * (1.0 - par.overlap), Bound::communication});
  };
  communicate("moe_dispatch", dispatch);
  const double act_elems = busiest.rows * double(width);
  add("moe_gate_up", busiest.gate_up_shape.flops(), busiest.gate_up_shape.bytes(), busiest.gate_up);
  add("moe_act_mul", Flops{5.0 * act_elems}, Bytes{3.0 * act_elems * e}, busiest.act);
  add("moe_down", busiest.down_shape.flops(), busiest.down_shape.bytes(), busiest.down);
  communicate("moe_combine", combine);

  if (moe.shared_intermediate_size > 0) {
    const std::int64_t sw = moe.shared_intermediate_size / (sequence_parallel ? 1 : par.tensor);
    add.gemm("shared_gate_up", 2 * sw, h);
    add.elementwise("shared_act_mul", 3.0 * double(Tm) * double(sw) * e, 5.0 * double(Tm) * double(sw));
    add.gemm("shared_down", h, sw);
    if (moe.shared_expert_gate) add.gemm("shared_expert_gate", 1, h, false);
  }
  return add.total;
}

}  // namespace

Seconds moe_mlp_ops(const LayerCostContext& c, std::int64_t T, std::int64_t total_tokens, const EmitOp& emit) {
  const ParallelConfig& par = c.parallel;
  // Sequence-parallel MoE: each tensor-parallel rank of a data-parallel group takes its slice of the group's tokens.
  const bool sequence_parallel = par.data > 1 && par.tensor > 1;
  const std::int64_t Tm = sequence_parallel ? (T + par.tensor - 1) / par.tensor : T;
  Emitter add{c, emit, Tm};
  if (T == 0) return add.total;
  const double e = add.e;
  const std::int64_t h = c.arch.hidden_size;
  // A backend that dispatches at most `chunk` tokens per rank at once (vLLM's VLLM_MOE_DP_CHUNK_SIZE) runs the layer
  // in n chunks of the busiest rank's tokens, every rank in step: each chunk ceil(Tm / n) of them and ceil(total / n)
  // over the group, its router, dispatch, experts (their weights read again) and combine costed n times.
  const std::int64_t chunk = par.data > 1 ? c.all2all->chunk_tokens() : 0;
  if (chunk > 0 && Tm > chunk) {
    const std::int64_t n = (Tm + chunk - 1) / chunk;
    const double times = double(n);
    const EmitOp each = [&](const char* name, Flops f, Bytes b, OpCost cost) {
      add(name, f * times, b * times, OpCost{cost.time * times, cost.bound});
    };
    (void)moe_block(c, (Tm + n - 1) / n, (total_tokens + n - 1) / n, sequence_parallel, each);
  } else {
    add.total = moe_block(c, Tm, total_tokens, sequence_parallel, emit);
  }
  const std::int64_t ep = par.expert;
  if (par.data == 1 && (par.tensor > 1 || ep > 1)) {
    const double act = double(T) * double(h) * e;
    const OpCost cc = c.comm->all_reduce(Bytes{act});
    add("tp_all_reduce_moe", Flops{0.0}, Bytes{act}, OpCost{cc.time * (1.0 - par.overlap), Bound::communication});
  }
  if (sequence_parallel) {
    const double out = double(T) * double(h) * e;
    const OpCost cc = c.comm->all_gather(Bytes{out});
    add("tp_all_gather_moe", Flops{0.0}, Bytes{out}, OpCost{cc.time * (1.0 - par.overlap), Bound::communication});
  }
  return add.total;
}

Seconds mla_projection_ops(const LayerCostContext& c, std::int64_t T, const EmitOp& emit) {
  const MlaArch& m = c.arch.mla;
  Emitter add{c, emit, T};
  if (T == 0) return add.total;
  const double e = add.e;
  const std::int64_t h = c.arch.hidden_size;
  const std::int64_t heads = c.arch.num_heads / c.parallel.tensor;
  auto gemm = [&](const char* name, std::int64_t n, std::int64_t k) { add.gemm(name, n, k); };
  auto elementwise = [&](const char* name, double bytes, double flops) { add.elementwise(name, bytes, flops); };
  const double t = double(T);
  if (m.q_lora_rank > 0) {
    gemm("mla_qkv_a", m.q_lora_rank + m.latent_dim(), h);
    const double normed = t * double(m.q_lora_rank + m.kv_lora_rank);
    elementwise("mla_norms", 2.0 * normed * e, 4.0 * normed);
    gemm("mla_q_b", heads * m.qk_head_dim(), m.q_lora_rank);
  } else {
    gemm("mla_q", heads * m.qk_head_dim(), h);
    gemm("mla_kv_a", m.latent_dim(), h);
    const double normed = t * double(m.kv_lora_rank);
    elementwise("mla_norms", 2.0 * normed * e, 4.0 * normed);
  }
  gemm("mla_kv_b", heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank);
  const double rope = t * double(heads + 1) * double(m.qk_rope_head_dim);
  elementwise("rope", 2.0 * rope * e, 6.0 * rope);
  if (add.fp8_math) {
    const double o_in = t * double(heads * m.v_head_dim);
    elementwise("o_input_quant", o_in * (e + 1.0), 3.0 * o_in);
  }
  gemm("o", h, heads * m.v_head_dim);
  return add.total;
}

Bytes moe_activation_peak(const ModelArch& a, const ParallelConfig& par, std::int64_t tokens) {
  const MoeArch& moe = a.moe;
  if (!moe.enabled()) return Bytes{0.0};
  const double h = double(a.hidden_size);
  const bool sequence_parallel = par.data > 1 && par.tensor > 1;
  const double Tm = double(sequence_parallel ? (tokens + par.tensor - 1) / par.tensor : tokens);
  const double width = par.expert > 1 ? double(moe.expert_intermediate_size)
                                      : double(moe.expert_intermediate_size) / double(par.tensor);
  const double N = 2.0 * width;
  MoePeakRows rows;
  if (par.data > 1) {
    const auto backend = moe_all2all_registry().create(par.all2all_backend, "parallel.all2all_backend");
    const std::int64_t physical = moe.num_experts + (par.enable_eplb ? par.num_redundant_experts : 0);
    rows = backend->peak_rows(Tm, par.expert, moe.experts_per_token, physical / par.expert);
  } else {
    rows.expert_rows = std::min(Tm, kFusedMoeChunkTokens) * double(moe.experts_per_token);
  }
  const double e = a.weight_bytes_per_param;
  const bool fp8 = a.quantization == Quantization::fp8;
  const double out = rows.output_in_workspace ? 0.0 : par.data > 1 ? rows.received : Tm;
  // Per workspace row: fused_experts' cache13 + cache2, or the modular kernel's two workspaces (block-scaled fp8
  // experts run through it too: vLLM's DeepGEMM experts).
  const bool modular = rows.modular || (fp8 && a.fp8_block_scaled);
  const double per_row = modular ? std::max(N / 2.0, h) + std::max(N, h) : std::max(N, h) + N / 2.0;
  const double received = rows.received * (h * (rows.fp8_rows && fp8 ? 1.0 : e) +
                                            (rows.logits ? double(moe.num_experts) * e : 0.0));
  return Bytes{(2.0 * Tm * h + out * h + rows.expert_rows * per_row) * e + received};
}

double moe_mla_layer_weight_bytes(const ModelArch& a, const ParallelConfig& par, std::int64_t layer) {
  const double t = double(par.tensor);
  const double h = double(a.hidden_size);
  double linear = 0.0, other = 2.0 * h;  // the two RMSNorms
  if (a.mla.enabled()) {
    const MlaArch& m = a.mla;
    const double heads = double(a.num_heads) / t;
    linear += m.q_lora_rank > 0 ? h * double(m.q_lora_rank) + double(m.q_lora_rank) * heads * double(m.qk_head_dim())
                                : h * heads * double(m.qk_head_dim());
    linear += h * double(m.latent_dim());  // kv_a_proj_with_mqa, replicated
    linear += double(m.kv_lora_rank) * heads * double(m.qk_nope_head_dim + m.v_head_dim) + heads * double(m.v_head_dim) * h;
    other += double(m.q_lora_rank + m.kv_lora_rank);
  } else {
    const std::int64_t kv_heads = a.num_kv_heads >= par.tensor ? a.num_kv_heads / par.tensor : 1;
    const double qkv_out = double(a.q_dim()) / t + 2.0 * double(kv_heads * a.head_dim);
    linear += h * qkv_out + double(a.q_dim()) / t * h;
    other += (a.qkv_bias ? qkv_out : 0.0) + (a.o_bias ? h : 0.0) + (a.qk_norm ? 2.0 * double(a.head_dim) : 0.0) +
             (a.attention_sinks ? double(a.num_heads) / t : 0.0);
  }
  double routed = 0.0;  // the routed experts' weights, at their own precision
  if (a.is_moe_layer(layer)) {
    const MoeArch& moe = a.moe;
    // Routed experts per GPU: E / ep, or (E + R) / ep physical ones with EPLB (each replica a full copy).
    const double experts = double(par.physical_experts(moe.num_experts)) / double(par.expert);
    const double width = par.expert > 1 ? double(moe.expert_intermediate_size) : double(moe.expert_intermediate_size) / t;
    routed = experts * 3.0 * h * width;
    // Sequence-parallel MoE layers hold their shared experts whole (vLLM builds them with disable_tp).
    const double shared_split = par.data > 1 && par.tensor > 1 ? 1.0 : t;
    linear += 3.0 * h * double(moe.shared_intermediate_size) / shared_split;
    other += h * double(moe.num_experts) + (moe.shared_expert_gate ? h : 0.0);
    // gpt-oss: the router's bias, and each expert's gate_up bias (split like its width) and down bias (whole on
    // every rank that holds the expert).
    if (moe.expert_bias) other += double(moe.num_experts) + experts * (2.0 * width + h);
  } else {
    linear += 3.0 * h * double(a.intermediate_size) / t;
  }
  return routed * a.expert_bytes_per_param() + linear * a.linear_bytes_per_param() + other * a.weight_bytes_per_param;
}

}  // namespace servesim
