#include "models/cost/step_model.h"

#include <algorithm>
#include <string>

#include "models/common/error.h"
#include "models/cost/moe_mla_cost.h"

namespace servesim {
namespace {

// An error about a scenario key ("parallel.tensor_parallel_size: ..."): key() names it, so that the scenario
// loader places it at the key in the scenario's file.
InputError key_error(const char* key, const std::string& detail) {
  return InputError(ErrorPlace{"", std::nullopt, key}, detail);
}

struct NullSink {
  void add(const char*, Flops, Bytes, OpCost, double) {}
};

struct BoundSink {
  BoundTimes* bounds;
  void add(const char*, Flops, Bytes, OpCost c, double times) { bounds->add(c.bound, c.time.v * times); }
};

// Operator calls: every operator added, once per layer it repeats in.
struct CountSink {
  double calls = 0;
  void add(const char*, Flops, Bytes, OpCost, double times) { calls += times; }
};

struct ListSink {
  std::vector<StepOp>* ops;
  void add(const char* name, Flops flops, Bytes bytes, OpCost c, double times) {
    if (c.time.v == 0.0 && flops.v == 0.0 && bytes.v == 0.0) return;
    ops->push_back(StepOp{name, flops * times, bytes * times, c.time * times, c.bound});
  }
};

}  // namespace

OpCost GroupComm::all_gather(Bytes) const {
  throw key_error("parallel",
                  "this communication model has no all-gather (needed by sequence-parallel MoE layers: "
                  "tensor_parallel_size > 1 with data-parallel attention)");
}

OpCost GroupComm::expert_collective(CollectiveOp, Bytes, ExpertScope, bool) const {
  throw key_error("parallel",
                  "this communication model has no expert-parallel group (needed by expert parallelism with "
                  "data-parallel attention)");
}

StepModel::StepModel(ModelArch arch, GpuSpec gpu, ParallelConfig parallel,
                     std::shared_ptr<const OpPredictor> predictor, EngineOverhead overhead,
                     std::shared_ptr<const GroupComm> comm, ExpertRouting routing, CudaGraphConfig graphs)
    : arch_(std::move(arch)),
      gpu_(std::move(gpu)),
      parallel_(parallel),
      predictor_(std::move(predictor)),
      overhead_(overhead),
      comm_(std::move(comm)),
      routing_(std::move(routing)),
      graphs_(std::move(graphs)) {
  const auto t = parallel_.tensor;
  const auto p = parallel_.pipeline;
  if (t < 1 || p < 1) throw key_error("parallel", "tensor_parallel_size and pipeline_parallel_size must be >= 1");
  check_moe_parallel();
  if (arch_.num_heads % t != 0) {
    throw key_error("parallel.tensor_parallel_size", std::to_string(arch_.num_heads) + " attention heads of " +
                                                         arch_.name + " do not divide by tensor_parallel_size " +
                                                         std::to_string(t));
  }
  if (arch_.num_kv_heads % t != 0 && t % arch_.num_kv_heads != 0) {
    throw key_error("parallel.tensor_parallel_size", std::to_string(arch_.num_kv_heads) + " KV heads of " + arch_.name +
                                                         " neither divide by nor divide tensor_parallel_size " +
                                                         std::to_string(t));
  }
  if (arch_.intermediate_size % t != 0) {
    throw key_error("parallel.tensor_parallel_size", "intermediate_size " + std::to_string(arch_.intermediate_size) +
                                                         " does not divide by " + std::to_string(t));
  }
  if (arch_.num_layers % p != 0) {
    throw key_error("parallel.pipeline_parallel_size",
                    std::to_string(arch_.num_layers) + " layers do not divide into " + std::to_string(p) + " stages");
  }
  if ((t > 1 || p > 1) && !comm_) throw key_error("parallel", "a multi-GPU replica needs a communication model");
  attn_.heads_q = arch_.num_heads / t;
  // With more TP ranks than KV heads, vLLM replicates KV heads: each GPU keeps one.
  attn_.heads_kv = arch_.num_kv_heads >= t ? arch_.num_kv_heads / t : 1;
  attn_.head_dim = arch_.head_dim;
  attn_.bytes_per_element = arch_.kv_bytes_per_element;
  attn_.act_bytes_per_element = arch_.weight_bytes_per_param;
  // vLLM's FlashAttention-3 backend on an fp8 KV cache quantizes Q and runs attention in fp8.
  attn_.fp8 = arch_.kv_bytes_per_element == 1.0 && gpu_.has_fp8();
  // One split of the layers over the stages (vLLM's get_pp_indices) for cost, weights and KV; the stages are equal
  // here (uneven splits are refused above), so one stage's layer count times every stage.
  const std::vector<std::int64_t> stage_layers = pp_stage_layers(arch_.num_layers, p);
  layers_per_stage_ = stage_layers.front();
  attn_sliding_ = attn_;
  attn_sliding_.window = arch_.sliding_window;
  std::int64_t first_layer = 0;
  for (const std::int64_t n : stage_layers) {
    sliding_per_stage_.push_back(arch_.sliding_layers(first_layer, n));
    moe_per_stage_.push_back(arch_.moe.moe_layers(first_layer, n));
    first_layer += n;
  }
  if (arch_.mla.enabled()) {
    // Decode runs the absorbed form: every query head attends over the one cached latent per token
    // ([kv_lora_rank | rope], head_dim = its width), V being its first kv_lora_rank elements (FlashMLA).
    attn_.heads_kv = 1;
    attn_.head_dim = arch_.mla.latent_dim();
    attn_.v_head_dim = arch_.mla.kv_lora_rank;
    attn_.latent_kv = true;
    attn_.fp8 = false;
    // Prefill runs the expanded form: K (qk_head_dim) and V (v_head_dim) per head, in the activation dtype.
    mla_prefill_ = AttentionShape{attn_.heads_q, attn_.heads_q, arch_.mla.qk_head_dim(), arch_.weight_bytes_per_param,
                                  arch_.weight_bytes_per_param};
    mla_prefill_.v_head_dim = arch_.mla.v_head_dim;
  }
  if (arch_.moe.enabled() && routing_.empty()) {
    routing_ = ExpertRouting::uniform(arch_.moe.num_experts, arch_.moe.experts_per_token);
  }
  if (arch_.moe.enabled() && routing_.experts() != arch_.moe.num_experts) {
    throw key_error("model.moe", std::to_string(routing_.experts()) + " expert loads for " + arch_.name + "'s " +
                                     std::to_string(arch_.moe.num_experts) + " experts");
  }
  // Group-limited routing (DeepSeek's n_group / topk_group): the config's limits were checked when it was read.
  if (arch_.moe.enabled()) {
    try {
      routing_ = routing_.limited_to_groups(arch_.moe.num_expert_groups, arch_.moe.topk_group);
    } catch (const InputError& e) {
      throw key_error("model.config", e.what());
    }
  }
  // EPLB's hierarchical policy needs the nodes the expert-parallel ranks span (data-parallel attention's groups).
  const std::int64_t nodes = parallel_.data > 1 && comm_ ? comm_->expert_nodes() : 1;
  placement_ = servesim::expert_placement(arch_, parallel_, routing_, nodes);
  // Which ranks and nodes a token's experts are on, for the backends whose bytes follow the routing (DeepEP's).
  if (arch_.moe.enabled() && parallel_.data > 1) reach_ = expert_reach(routing_, placement_, nodes);
  if (parallel_.data > 1) all2all_ = moe_all2all_registry().create(parallel_.all2all_backend, "parallel.all2all_backend");
  if (graphs_.modelled) prepare_graphs();
}

// Tables for the event loop's calls (graph_step and host_time run every step): the same answers as
// CudaGraphConfig::run_of / padded_tokens / host_time, looked up.
void StepModel::prepare_graphs() {
  CountSink tokens;
  (void)dense_part(1, parallel_.data, tokens);
  CountSink head_calls;
  (void)head_part(parallel_.data, head_calls);
  const std::int64_t max_size = graphs_.max_capture_size();
  pad_.assign(static_cast<std::size_t>(max_size + 1), 0);
  for (std::int64_t t = 1; t <= max_size; ++t) pad_[static_cast<std::size_t>(t)] = graphs_.capture_size_for(t);
  // Decodes alone replay the decode graph up to the largest size whose graph exists; past it, what a mixed step
  // replays (CudaGraphConfig::run_of).
  if (max_size > 0) {
    run_mixed_ = graphs_.run_of(false, 1);
    run_decode_ = graphs_.run_of(true, 1);
    for (std::int64_t t = 1; t <= max_size && graphs_.run_of(true, t) == run_decode_; ++t) decode_graph_max_ = t;
  }
  const Seconds head = graphs_.eager_op_host * head_calls.calls;
  const double eager_ops = tokens.calls + double(arch_.num_layers);
  for (const GraphRun r : {GraphRun::eager, GraphRun::piecewise, GraphRun::full}) {
    const auto i = static_cast<std::size_t>(r);
    host_[i] = graphs_.host_time(r, arch_.num_layers, eager_ops);
    host_sampling_[i] = host_[i] + head;
  }
}

StepModel::GraphStep StepModel::graph_step(bool decodes_only, std::int64_t rank_tokens,
                                           std::int64_t step_tokens) const {
  GraphStep g{GraphRun::eager, rank_tokens, step_tokens};
  if (!graphs_.modelled || rank_tokens <= 0 || rank_tokens >= static_cast<std::int64_t>(pad_.size())) return g;
  g.run = decodes_only && rank_tokens <= decode_graph_max_ ? run_decode_ : run_mixed_;
  if (g.run == GraphRun::eager) return g;
  g.rank_tokens = pad_[static_cast<std::size_t>(rank_tokens)];
  g.step_tokens = parallel_.data > 1 ? g.rank_tokens * parallel_.data : g.rank_tokens;
  return g;
}

Seconds StepModel::host_time(GraphRun run, bool samples) const {
  if (!graphs_.modelled) return Seconds{0.0};
  // The logits and the sampler run outside the graphs: eager calls in every mode.
  const auto i = static_cast<std::size_t>(run);
  return samples ? host_sampling_[i] : host_[i];
}

Seconds StepModel::launch_bound(Seconds gpu, Seconds host, BoundTimes& bounds) {
  if (host.v <= gpu.v) return gpu;
  bounds.add(Bound::overhead, host.v - gpu.v);
  return host;
}

void StepModel::check_moe_parallel() const {
  const auto t = parallel_.tensor;
  const auto ep = parallel_.expert;
  const auto d = parallel_.data;
  if (ep < 1 || d < 1) throw key_error("parallel", "expert_parallel_size and data_parallel_size must be >= 1");
  if (ep > 1 && ep != t * d) {
    throw key_error("parallel.expert_parallel_size",
                    std::to_string(ep) + " must be 1 or tensor_parallel_size x data_parallel_size (" +
                        std::to_string(t * d) + "): experts are split over all of a stage's GPUs");
  }
  if (d > 1 && parallel_.pipeline > 1) {
    throw key_error("parallel.pipeline_parallel_size",
                    "data-parallel attention (data_parallel_size " + std::to_string(d) +
                        ") with pipeline parallelism is not modelled");
  }
  if (d > 1 && ep == 1) {
    throw key_error("parallel.data_parallel_size",
                    std::to_string(d) + " data-parallel attention groups need expert parallelism "
                                        "(expert_parallel_size = " + std::to_string(t * d) +
                        "); without it, data parallelism is separate replicas ([cluster] replicas)");
  }
  if (ep > 1 && !arch_.moe.enabled()) {
    throw key_error("parallel.expert_parallel_size", arch_.name + " has no mixture-of-experts layers");
  }
  if (!arch_.moe.enabled()) return;
  const MoeArch& m = arch_.moe;
  if (ep > 1 && !parallel_.enable_eplb && m.num_experts % ep != 0) {  // with EPLB: E + R (expert_placement)
    throw key_error("parallel.expert_parallel_size", std::to_string(m.num_experts) + " experts of " + arch_.name +
                                                         " do not divide by " + std::to_string(ep));
  }
  if (ep == 1 && m.expert_intermediate_size % t != 0) {
    throw key_error("parallel.tensor_parallel_size", "moe_intermediate_size " +
                                                         std::to_string(m.expert_intermediate_size) +
                                                         " does not divide by " + std::to_string(t));
  }
  if (m.shared_intermediate_size % t != 0) {
    throw key_error("parallel.tensor_parallel_size", "the shared experts' width " +
                                                         std::to_string(m.shared_intermediate_size) +
                                                         " does not divide by " + std::to_string(t));
  }
}

std::int64_t StepModel::sliding_decode_tokens(const BatchShape& b) const {
  const std::int64_t w = arch_.sliding_window;
  if (w <= 0) return b.decode_context_tokens;
  if (b.window == w) return b.decode_window_context_tokens;
  return std::min(b.decode_context_tokens, b.num_decodes * w);
}

std::int64_t StepModel::vocab_per_rank() const {
  // vLLM's vocab-parallel embedding and LM head: the vocabulary padded to a multiple of 64, split over TP.
  constexpr std::int64_t kPad = 64;
  const std::int64_t padded = (arch_.vocab_size + kPad - 1) / kPad * kPad;
  return (padded + parallel_.tensor - 1) / parallel_.tensor;
}

std::vector<std::int64_t> StepModel::pp_stage_layers(std::int64_t num_layers, std::int64_t stages) {
  std::vector<std::int64_t> parts(static_cast<std::size_t>(stages), num_layers / stages);
  const std::int64_t remaining = num_layers % stages;
  for (std::int64_t i = 2; i < remaining + 2; ++i) parts[static_cast<std::size_t>(stages - i)] += 1;
  return parts;
}

Bytes StepModel::weight_bytes_per_gpu(std::int64_t stage) const {
  // Layer weights split over TP; embedding and LM head split over TP (vocab-parallel).
  const double t = double(parallel_.tensor);
  const auto p = parallel_.pipeline;
  // One GPU's share of a layer: q and o split t ways, K and V heads split (or replicated when t exceeds them).
  const double h = double(arch_.hidden_size);
  const double qkv_out = double(qkv_width());
  const double linear = h * qkv_out + double(arch_.q_dim()) / t * h + 3.0 * h * double(arch_.intermediate_size) / t;
  const double other = (arch_.qkv_bias ? qkv_out : 0.0) + (arch_.o_bias ? h : 0.0) + 2.0 * h;  // biases and norms
  const std::vector<std::int64_t> split = pp_stage_layers(arch_.num_layers, p);
  const double stage_layers = double(split[static_cast<std::size_t>(stage)]);
  double layers = stage_layers * (linear * arch_.linear_bytes_per_param() + other * arch_.weight_bytes_per_param);
  if (arch_.moe.enabled() || arch_.mla.enabled()) {
    std::int64_t first = 0;
    for (std::int64_t s = 0; s < stage; ++s) first += split[static_cast<std::size_t>(s)];
    layers = 0.0;
    for (std::int64_t i = first; i < first + split[static_cast<std::size_t>(stage)]; ++i) {
      layers += moe_mla_layer_weight_bytes(arch_, parallel_, i);
    }
  }
  const double table = double(vocab_per_rank() * arch_.hidden_size);
  const bool first = stage == 0;
  const bool last = stage == p - 1;
  double extra = first ? table : 0.0;                                            // embed_tokens
  if (last) extra += (arch_.tie_word_embeddings && first ? 0.0 : table) + h;  // lm_head (its own copy) + final norm
  return Bytes{layers + extra * arch_.weight_bytes_per_param};
}

Bytes StepModel::weight_bytes_per_gpu() const {
  Bytes most{0.0};
  for (std::int64_t s = 0; s < parallel_.pipeline; ++s) most = Bytes{std::max(most.v, weight_bytes_per_gpu(s).v)};
  return most;
}

Bytes StepModel::kv_bytes_per_token_per_gpu() const { return kv_bytes_per_token_per_gpu(0); }

Bytes StepModel::kv_bytes_per_token_per_gpu(std::int64_t stage) const {
  const std::int64_t layers = pp_stage_layers(arch_.num_layers, parallel_.pipeline)[static_cast<std::size_t>(stage)];
  if (arch_.mla.enabled()) return Bytes{double(layers * arch_.mla.latent_dim()) * arch_.kv_bytes_per_element};
  return Bytes{2.0 * double(layers * attn_.heads_kv * attn_.head_dim) * arch_.kv_bytes_per_element};
}

// Token-count part: every per-layer op whose shape depends only on the step's token count (norms, GEMMs,
// RoPE, activation, TP all-reduces), the embedding gather, and the pipeline sends.
template <class Sink>
StepModel::Times StepModel::dense_part(std::int64_t T, std::int64_t tokens, Sink& sink) const {
  if (tokens == 0) return {};
  // With data-parallel attention each group runs its own sequences: T of the step's tokens (busiest_rank).
  const double L = double(layers_per_stage_);
  const double all_layers = double(arch_.num_layers);  // the breakdown lists whole-model totals
  const bool moe = arch_.moe.enabled();
  const double dense_layers = all_layers - double(arch_.moe.moe_layers());
  const double e = arch_.weight_bytes_per_param;
  const std::int64_t t = parallel_.tensor;
  const std::int64_t h = arch_.hidden_size;
  const double act = double(T) * double(h) * e;  // one activation tensor [T, hidden]
  Seconds layer{0.0};      // one layer's ops common to every layer (and, for a dense model, its MLP)
  Seconds dense_mlp{0.0};  // MoE models: the MLP of a dense layer
  Seconds* mlp = moe ? &dense_mlp : &layer;
  auto op = [&](const char* name, Flops f, Bytes by, OpCost c) {
    sink.add(name, f, by, c, all_layers);
    layer += c.time;
  };
  auto mlp_op = [&](const char* name, Flops f, Bytes by, OpCost c) {
    sink.add(name, f, by, c, moe ? dense_layers : all_layers);
    *mlp += c.time;
  };
  auto elementwise_op = [&](auto& to, const char* name, double bytes, double flops) {
    to(name, Flops{flops}, Bytes{bytes}, predictor_->elementwise(Bytes{bytes}, Flops{flops}));
  };
  // fp8 weights: fp8 math on GPUs with fp8 tensor cores, each activation quantized per token first (read bf16,
  // write fp8: absmax + scale); elsewhere weight-only (bf16 math, 1-byte weights). As vLLM compiles the model,
  // the quantization of the qkv, gate_up and down inputs is fused into the RMSNorm / SiLU-and-mul before them;
  // the attention output's, before o, is a kernel of its own.
  const bool fp8_weights = arch_.quantization == Quantization::fp8;
  const bool fp8_math = fp8_weights && gpu_.has_fp8();
  auto gemm_shape = [&](const char* name, std::int64_t n, std::int64_t k) {
    return GemmShape{name, T, n, k, e, fp8_weights ? 1.0 : 0.0, fp8_math};
  };
  auto gemm = [&](const char* name, std::int64_t n, std::int64_t k) {
    const GemmShape g = gemm_shape(name, n, k);
    op(name, g.flops(), g.bytes(), predictor_->gemm(g));
  };
  auto mlp_gemm = [&](const char* name, std::int64_t n, std::int64_t k) {
    const GemmShape g = gemm_shape(name, n, k);
    mlp_op(name, g.flops(), g.bytes(), predictor_->gemm(g));
  };
  auto all_reduce = [&](const char* name, auto& to) {
    if (t == 1) return;
    const OpCost c = comm_->all_reduce(Bytes{act});
    to(name, Flops{0.0}, Bytes{act}, OpCost{c.time * (1.0 - parallel_.overlap), Bound::communication});
  };
  const LayerCostContext ctx{arch_,     gpu_,       parallel_, *predictor_,   comm_.get(),
                             routing_,  placement_, reach_,    all2all_.get()};
  elementwise_op(op, "attn_norm", 2.0 * act + double(h) * e, 4.0 * double(T * h));
  if (arch_.mla.enabled()) {
    (void)mla_projection_ops(ctx, T, [&](const char* n, Flops f, Bytes b, OpCost c) { op(n, f, b, c); });
  } else {
    const double qkv_heads = double((attn_.heads_q + attn_.heads_kv) * attn_.head_dim);
    gemm("qkv", qkv_width(), h);
    elementwise_op(op, "rope", 2.0 * double(T) * qkv_heads * e, 6.0 * double(T) * qkv_heads);
    if (arch_.qk_norm) {
      elementwise_op(op, "qk_norm", 2.0 * double(T) * qkv_heads * e, 4.0 * double(T) * qkv_heads);
    }
    if (fp8_math) {
      const double o_in = double(T) * double(arch_.q_dim() / t);
      elementwise_op(op, "o_input_quant", o_in * (e + 1.0), 3.0 * o_in);
    }
    gemm("o", h, arch_.q_dim() / t);
  }
  all_reduce("tp_all_reduce_attn", op);
  elementwise_op(op, "mlp_norm", 3.0 * act + double(h) * e, 5.0 * double(T * h));  // residual add + RMSNorm
  if (dense_layers > 0) {
    mlp_gemm("gate_up", 2 * arch_.intermediate_size / t, h);
    elementwise_op(mlp_op, "act_mul", 3.0 * double(T) * double(arch_.intermediate_size / t) * e,
                   5.0 * double(T) * double(arch_.intermediate_size / t));
    mlp_gemm("down", h, arch_.intermediate_size / t);
    all_reduce("tp_all_reduce_mlp", mlp_op);
  }
  Seconds moe_mlp{0.0};  // the MLP of a MoE layer
  if (moe) {
    const double moe_layers = double(arch_.moe.moe_layers());
    moe_mlp = moe_mlp_ops(ctx, T, tokens,
                          [&](const char* n, Flops f, Bytes b, OpCost c) { sink.add(n, f, b, c, moe_layers); });
  }

  const OpCost embed = predictor_->elementwise(Bytes{2.0 * act}, Flops{0.0});
  sink.add("embedding", Flops{0.0}, Bytes{2.0 * act}, embed, 1.0);
  const std::int64_t p = parallel_.pipeline;
  Times out{layer * L * double(p) + embed.time, layer * L + embed.time};
  if (moe) {
    // Per stage: every layer's common ops, its dense layers' MLPs and its MoE layers' MLPs.
    out = Times{};
    for (const std::int64_t m : moe_per_stage_) {
      const Seconds stage = layer * L + dense_mlp * (L - double(m)) + moe_mlp * double(m);
      out.gpu += stage;
      out.stage = std::max(out.stage, stage);
    }
    out.gpu += embed.time;
    out.stage += embed.time;
  }
  if (p > 1) {
    const OpCost c = comm_->send_recv(Bytes{act});
    sink.add("pp_send_recv", Flops{0.0}, Bytes{act}, OpCost{c.time, Bound::communication}, double(p - 1));
    out.gpu += c.time * double(p - 1);
  }
  return out;
}

// Attention: depends on every sequence's context; full layers over all of it, sliding-window layers over the
// window (one kernel call per kind of layer, as vLLM runs each layer's attention).
template <class Sink>
StepModel::Times StepModel::attention_part(const BatchShape& b, Sink& sink) const {
  const std::int64_t sliding = arch_.sliding_layers();
  const double full_layers = double(arch_.num_layers - sliding);  // the breakdown lists whole-model totals
  Seconds layer{0.0};     // one full-attention layer
  Seconds windowed{0.0};  // one sliding-window layer
  // Data-parallel attention: the caller passes the busiest rank's sequences (busiest_rank), one GPU's work.
  auto add = [&](const char* name, Flops f, Bytes by, OpCost c, double count) { sink.add(name, f, by, c, count); };
  const AttentionShape& prefill_shape = arch_.mla.enabled() ? mla_prefill_ : attn_;
  if (attn_.fp8) {  // Q of every token in the batch quantized to fp8 before the attention kernels
    const double q = double(b.total_tokens()) * double(attn_.heads_q * attn_.head_dim);
    const OpCost c = predictor_->elementwise(Bytes{q * (attn_.act_bytes_per_element + 1.0)}, Flops{3.0 * q});
    add("attn_q_quant", Flops{3.0 * q}, Bytes{q * (attn_.act_bytes_per_element + 1.0)}, c,
             double(arch_.num_layers));
    layer += c.time;
    windowed += c.time;
  }
  if (!b.prefills.empty()) {
    const std::span<const PrefillChunk> chunks(b.prefills);
    if (full_layers > 0) {
      const OpCost c = predictor_->attention_prefill(prefill_shape, chunks);
      add("attention_prefill", prefill_attention_flops(prefill_shape, chunks),
               prefill_attention_bytes(prefill_shape, chunks), c, full_layers);
      layer += c.time;
    }
    if (arch_.mla.enabled()) {
      // Chunks after a prompt's first expand their cached context's latent to K_nope and V (kv_b_proj).
      std::int64_t context = 0;
      for (const auto& ch : chunks) context += ch.context;
      if (context > 0) {
        const MlaArch& m = arch_.mla;
        const GemmShape g{"mla_context_kv_b", context, attn_.heads_q * (m.qk_nope_head_dim + m.v_head_dim),
                          m.kv_lora_rank, arch_.weight_bytes_per_param,
                          arch_.quantization == Quantization::fp8 ? 1.0 : 0.0,
                          arch_.quantization == Quantization::fp8 && gpu_.has_fp8()};
        const OpCost c = predictor_->gemm(g);
        add("mla_context_kv_b", g.flops(), g.bytes(), c, full_layers);
        layer += c.time;
      }
    }
    if (sliding > 0) {
      const OpCost c = predictor_->attention_prefill(attn_sliding_, chunks);
      add("attention_prefill_swa", prefill_attention_flops(attn_sliding_, chunks),
               prefill_attention_bytes(attn_sliding_, chunks), c, double(sliding));
      windowed += c.time;
    }
  }
  if (b.num_decodes > 0) {
    if (full_layers > 0) {
      const OpCost c = predictor_->attention_decode(attn_, b.num_decodes, b.decode_context_tokens);
      add("attention_decode", decode_attention_flops(attn_, b.decode_context_tokens),
               decode_attention_bytes(attn_, b.num_decodes, b.decode_context_tokens), c, full_layers);
      layer += c.time;
    }
    if (sliding > 0) {
      const std::int64_t kv = sliding_decode_tokens(b);
      const OpCost c = predictor_->attention_decode(attn_sliding_, b.num_decodes, kv);
      add("attention_decode_swa", decode_attention_flops(attn_sliding_, kv),
               decode_attention_bytes(attn_sliding_, b.num_decodes, kv), c, double(sliding));
      windowed += c.time;
    }
  }
  const double L = double(layers_per_stage_);
  if (sliding == 0) return {layer * L * double(parallel_.pipeline), layer * L};
  // Per stage: its full layers and its sliding ones; the slowest stage bounds throughput.
  Times out;
  for (const std::int64_t s : sliding_per_stage_) {
    const Seconds stage = layer * (L - double(s)) + windowed * double(s);
    out.gpu += stage;
    out.stage = std::max(out.stage, stage);
  }
  return out;
}

// Once per step for the sampling sequences: final norm, LM head, sampling.
template <class Sink>
StepModel::Times StepModel::head_part(std::int64_t sampled, Sink& sink) const {
  if (sampled == 0) return {};
  const std::int64_t S = (sampled + parallel_.data - 1) / parallel_.data;  // per data-parallel group
  const double e = arch_.weight_bytes_per_param;
  const std::int64_t h = arch_.hidden_size;
  const double s = double(S);
  Seconds total{0.0};
  auto once = [&](const char* name, Flops f, Bytes by, OpCost c) {
    sink.add(name, f, by, c, 1.0);
    total += c.time;
  };
  once("final_norm", Flops{4.0 * s * double(h)}, Bytes{2.0 * s * double(h) * e},
       predictor_->elementwise(Bytes{2.0 * s * double(h) * e}, Flops{4.0 * s * double(h)}));
  const GemmShape head{"lm_head", S, vocab_per_rank(), h, e};
  once("lm_head", head.flops(), head.bytes(), predictor_->gemm(head));
  // The shards' logits are gathered onto one GPU, which samples over the whole vocabulary.
  if (parallel_.tensor > 1) {
    const Bytes shard{s * double(vocab_per_rank()) * e};
    const OpCost c = comm_->gather(shard);
    once("tp_gather_logits", Flops{0.0}, shard * double(parallel_.tensor), OpCost{c.time, Bound::communication});
  }
  const double logits = s * double(arch_.vocab_size) * 4.0;  // fp32 logits: softmax + top-k/p
  once("sampling", Flops{5.0 * logits / 4.0}, Bytes{2.0 * logits},
       predictor_->elementwise(Bytes{2.0 * logits}, Flops{5.0 * logits / 4.0}));
  return {total, total};
}

BatchShape StepModel::busiest_rank(const BatchShape& b) const {
  const std::int64_t d = parallel_.data;
  if (d == 1) return b;
  std::vector<std::int64_t> load(static_cast<std::size_t>(d), 0);
  std::vector<std::int64_t> prefill(static_cast<std::size_t>(d), 0);
  std::vector<std::size_t> rank_of(b.prefills.size(), 0);
  // Chunks, largest first (stable: equal chunks keep their order), each onto the rank with the fewest tokens.
  std::vector<std::size_t> order(b.prefills.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return b.prefills[x].tokens > b.prefills[y].tokens; });
  auto least = [&] { return static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin()); };
  for (const std::size_t i : order) {
    const std::size_t r = least();
    load[r] += b.prefills[i].tokens;
    prefill[r] += b.prefills[i].tokens;
    rank_of[i] = r;
  }
  // Decodes one at a time onto the rank with the fewest tokens (ties: the lower rank), in closed form: every rank
  // below level L - 1 is raised to it, the rest go one each to the ranks at L - 1 in rank order.
  std::vector<std::int64_t> decodes(static_cast<std::size_t>(d), 0);
  if (b.num_decodes > 0) {
    std::vector<std::int64_t> sorted = load;
    std::sort(sorted.begin(), sorted.end());
    // The level: the smallest L with sum_r max(0, L - load_r) >= num_decodes.
    std::int64_t below = 0;  // tokens of the ranks under the level
    std::int64_t level = 0;
    for (std::size_t k = 1; k <= sorted.size(); ++k) {
      below += sorted[k - 1];
      // Filling the k lowest ranks to a common level L takes k L - below decodes; L stays under the next rank's.
      const std::int64_t need = b.num_decodes + below;
      const std::int64_t L = (need + static_cast<std::int64_t>(k) - 1) / static_cast<std::int64_t>(k);
      if (k == sorted.size() || L <= sorted[k]) {
        level = L;
        break;
      }
    }
    std::int64_t left = b.num_decodes;
    for (std::size_t r = 0; r < load.size(); ++r) {  // up to level - 1
      const std::int64_t n = std::max<std::int64_t>(0, level - 1 - load[r]);
      decodes[r] = n;
      left -= n;
    }
    for (std::size_t r = 0; r < load.size() && left > 0; ++r) {  // the last step of the level, lower ranks first
      if (load[r] + decodes[r] == level - 1) {
        ++decodes[r];
        --left;
      }
    }
    for (std::size_t r = 0; r < load.size(); ++r) load[r] += decodes[r];
  }
  std::size_t busiest = 0;
  for (std::size_t r = 1; r < load.size(); ++r) {
    if (load[r] > load[busiest] || (load[r] == load[busiest] && prefill[r] > prefill[busiest])) busiest = r;
  }
  BatchShape out;
  out.window = b.window;
  out.num_sampled = b.num_sampled;
  for (std::size_t i = 0; i < b.prefills.size(); ++i) {
    if (rank_of[i] == busiest) out.prefills.push_back(b.prefills[i]);
  }
  const std::int64_t n = decodes[busiest];
  if (n > 0) {
    const std::int64_t D = b.num_decodes;
    out.num_decodes = n;
    out.decode_context_tokens = (b.decode_context_tokens * n + D / 2) / D;
    out.decode_window_context_tokens = (b.decode_window_context_tokens * n + D / 2) / D;
  }
  return out;
}

template <class Sink>
StepModel::Times StepModel::evaluate(const BatchShape& b, Sink& sink, GraphStep* how) const {
  if (b.total_tokens() == 0) return {};
  // One data-parallel rank: the batch itself, not a copy.
  const BatchShape rank = parallel_.data > 1 ? busiest_rank(b) : BatchShape{};
  const BatchShape& r = parallel_.data > 1 ? rank : b;
  const GraphStep g = graph_step(b.prefills.empty(), r.total_tokens(), b.total_tokens());
  if (how != nullptr) *how = g;
  const Times d = dense_part(g.rank_tokens, g.step_tokens, sink);
  const Times a = attention_part(r, sink);
  const Times h = head_part(b.num_sampled, sink);
  Times out{d.gpu + a.gpu + h.gpu, d.stage + a.stage + h.stage};
  const Seconds host = host_time(g.run, b.num_sampled > 0);
  if (host.v > out.gpu.v) {
    out.stage = std::max(out.stage, host / double(parallel_.pipeline));
    out.gpu = host;
  }
  return out;
}

Seconds StepModel::token_time(std::int64_t tokens) const {
  NullSink sink;
  return dense_part((tokens + parallel_.data - 1) / parallel_.data, tokens, sink).gpu;
}

Seconds StepModel::rank_token_time(std::int64_t rank_tokens, std::int64_t tokens, BoundTimes& bounds) const {
  BoundSink sink{&bounds};
  return dense_part(rank_tokens, tokens, sink).gpu;
}

Seconds StepModel::rank_sampling_time(std::int64_t sampled, BoundTimes& bounds) const {
  BoundSink sink{&bounds};
  return head_part(sampled * parallel_.data, sink).gpu;
}

Seconds StepModel::stage_send_time(std::int64_t tokens) const {
  if (parallel_.pipeline == 1 || tokens == 0) return Seconds{0.0};
  return comm_->send_recv(Bytes{double(tokens) * double(arch_.hidden_size) * arch_.weight_bytes_per_param}).time;
}

Seconds StepModel::sampling_time(std::int64_t sampled) const {
  NullSink sink;
  return head_part(sampled, sink).gpu;
}

Seconds StepModel::attention_time(const BatchShape& batch) const {
  NullSink sink;
  return attention_part(batch, sink).gpu;
}

Seconds StepModel::token_time(std::int64_t tokens, BoundTimes& bounds) const {
  BoundSink sink{&bounds};
  return dense_part((tokens + parallel_.data - 1) / parallel_.data, tokens, sink).gpu;
}

Seconds StepModel::sampling_time(std::int64_t sampled, BoundTimes& bounds) const {
  BoundSink sink{&bounds};
  return head_part(sampled, sink).gpu;
}

Seconds StepModel::attention_time(const BatchShape& batch, BoundTimes& bounds) const {
  BoundSink sink{&bounds};
  return attention_part(batch, sink).gpu;
}

Seconds StepModel::step_time(const BatchShape& batch) const {
  NullSink sink;
  if (batch.empty()) return Seconds{0.0};
  return evaluate(batch, sink).gpu + overhead_.of(batch);
}

StepCost StepModel::breakdown(const BatchShape& batch) const {
  StepCost cost;
  if (batch.empty()) return cost;
  ListSink sink{&cost.ops};
  GraphStep how;
  const Times times = evaluate(batch, sink, &how);
  cost.run = how.run;
  cost.rank_tokens = parallel_.data > 1 ? busiest_rank(batch).total_tokens() : batch.total_tokens();
  cost.padded_tokens = how.rank_tokens;
  cost.host = host_time(how.run, batch.num_sampled > 0);
  // List the ops in execution order within a layer.
  static const std::vector<std::string> order = {
      "attn_norm", "qkv", "mla_qkv_a", "mla_q", "mla_kv_a", "mla_norms", "mla_q_b", "mla_kv_b", "rope", "qk_norm",
      "mla_context_kv_b", "attention_prefill", "attention_prefill_swa", "attention_decode",
      "attention_decode_swa", "o", "tp_all_reduce_attn", "mlp_norm",
      "gate_up", "act_mul", "down", "tp_all_reduce_mlp", "moe_router", "moe_topk", "moe_dispatch", "moe_gate_up",
      "moe_act_mul", "moe_down", "moe_combine", "shared_gate_up", "shared_act_mul", "shared_down",
      "shared_expert_gate", "tp_all_reduce_moe", "embedding", "final_norm", "lm_head", "sampling",
      "pp_send_recv"};
  auto rank = [&](const StepOp& o) { return std::find(order.begin(), order.end(), o.name) - order.begin(); };
  std::stable_sort(cost.ops.begin(), cost.ops.end(), [&](const StepOp& a, const StepOp& b) { return rank(a) < rank(b); });
  cost.gpu = times.gpu;
  cost.stage = times.stage;
  cost.overhead = overhead_.of(batch);
  // A launch-bound step: the GPU waits for the host beyond its kernels' time.
  double kernels = 0;
  for (const StepOp& o : cost.ops) kernels += o.time.v;
  if (cost.host.v > kernels && cost.host.v == cost.gpu.v) {
    cost.ops.push_back(StepOp{"host_launch_wait", Flops{0.0}, Bytes{0.0}, cost.host - Seconds{kernels}, Bound::overhead});
  }
  return cost;
}

}  // namespace servesim
