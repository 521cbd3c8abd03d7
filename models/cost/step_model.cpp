#include "models/cost/step_model.h"

#include <algorithm>
#include <string>

#include "models/common/error.h"

namespace servesim {
namespace {

struct NullSink {
  void add(const char*, Flops, Bytes, OpCost, double) {}
};

struct ListSink {
  std::vector<StepOp>* ops;
  void add(const char* name, Flops flops, Bytes bytes, OpCost c, double times) {
    if (c.time.v == 0.0 && flops.v == 0.0 && bytes.v == 0.0) return;
    ops->push_back(StepOp{name, flops * times, bytes * times, c.time * times, c.bound});
  }
};

}  // namespace

StepModel::StepModel(ModelArch arch, GpuSpec gpu, ParallelConfig parallel,
                     std::shared_ptr<const OpPredictor> predictor, EngineOverhead overhead,
                     std::shared_ptr<const GroupComm> comm)
    : arch_(std::move(arch)),
      gpu_(std::move(gpu)),
      parallel_(parallel),
      predictor_(std::move(predictor)),
      overhead_(overhead),
      comm_(std::move(comm)) {
  const auto t = parallel_.tensor;
  const auto p = parallel_.pipeline;
  if (t < 1 || p < 1) throw InputError("parallel: tensor_parallel_size and pipeline_parallel_size must be >= 1");
  if (arch_.num_heads % t != 0) {
    throw InputError("parallel.tensor_parallel_size: " + std::to_string(arch_.num_heads) +
                     " attention heads of " + arch_.name + " do not divide by tensor_parallel_size " +
                     std::to_string(t));
  }
  if (arch_.num_kv_heads % t != 0 && t % arch_.num_kv_heads != 0) {
    throw InputError("parallel.tensor_parallel_size: " + std::to_string(arch_.num_kv_heads) +
                     " KV heads of " + arch_.name + " neither divide by nor divide tensor_parallel_size " +
                     std::to_string(t));
  }
  if (arch_.intermediate_size % t != 0) {
    throw InputError("parallel.tensor_parallel_size: intermediate_size " + std::to_string(arch_.intermediate_size) +
                     " does not divide by " + std::to_string(t));
  }
  if (arch_.num_layers % p != 0) {
    throw InputError("parallel.pipeline_parallel_size: " + std::to_string(arch_.num_layers) +
                     " layers do not divide into " + std::to_string(p) + " stages");
  }
  if ((t > 1 || p > 1) && !comm_) throw InputError("parallel: a multi-GPU replica needs a communication model");
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
    first_layer += n;
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
  const double other = (arch_.qkv_bias ? qkv_out : 0.0) + 2.0 * h;  // biases and norms
  const double stage_layers = double(pp_stage_layers(arch_.num_layers, p)[static_cast<std::size_t>(stage)]);
  const double layers = stage_layers * (linear * arch_.linear_bytes_per_param() + other * arch_.weight_bytes_per_param);
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
  return Bytes{2.0 * double(layers * attn_.heads_kv * attn_.head_dim) * arch_.kv_bytes_per_element};
}

// Token-count part: every per-layer op whose shape depends only on the step's token count (norms, GEMMs,
// RoPE, activation, TP all-reduces), the embedding gather, and the pipeline sends.
template <class Sink>
StepModel::Times StepModel::dense_part(std::int64_t T, Sink& sink) const {
  if (T == 0) return {};
  const double L = double(layers_per_stage_);
  const double all_layers = double(arch_.num_layers);  // the breakdown lists whole-model totals
  const double e = arch_.weight_bytes_per_param;
  const std::int64_t t = parallel_.tensor;
  const std::int64_t h = arch_.hidden_size;
  const double act = double(T) * double(h) * e;  // one activation tensor [T, hidden]
  Seconds layer{0.0};
  auto op = [&](const char* name, Flops f, Bytes by, OpCost c) {
    sink.add(name, f, by, c, all_layers);
    layer += c.time;
  };
  auto elementwise = [&](const char* name, double bytes, double flops) {
    op(name, Flops{flops}, Bytes{bytes}, predictor_->elementwise(Bytes{bytes}, Flops{flops}));
  };
  // fp8 weights: fp8 math on GPUs with fp8 tensor cores, each activation quantized per token first (read bf16,
  // write fp8: absmax + scale); elsewhere weight-only (bf16 math, 1-byte weights). As vLLM compiles the model,
  // the quantization of the qkv, gate_up and down inputs is fused into the RMSNorm / SiLU-and-mul before them;
  // the attention output's, before o, is a kernel of its own.
  const bool fp8_weights = arch_.quantization == Quantization::fp8;
  const bool fp8_math = fp8_weights && gpu_.has_fp8();
  auto gemm = [&](const char* name, std::int64_t n, std::int64_t k) {
    const GemmShape g{name, T, n, k, e, fp8_weights ? 1.0 : 0.0, fp8_math};
    op(name, g.flops(), g.bytes(), predictor_->gemm(g));
  };
  auto all_reduce = [&](const char* name) {
    if (t == 1) return;
    const OpCost c = comm_->all_reduce(Bytes{act});
    op(name, Flops{0.0}, Bytes{act}, OpCost{c.time * (1.0 - parallel_.overlap), Bound::communication});
  };
  const double qkv_heads = double((attn_.heads_q + attn_.heads_kv) * attn_.head_dim);
  elementwise("attn_norm", 2.0 * act + double(h) * e, 4.0 * double(T * h));
  gemm("qkv", qkv_width(), h);
  elementwise("rope", 2.0 * double(T) * qkv_heads * e, 6.0 * double(T) * qkv_heads);
  if (fp8_math) {
    const double o_in = double(T) * double(arch_.q_dim() / t);
    elementwise("o_input_quant", o_in * (e + 1.0), 3.0 * o_in);
  }
  gemm("o", h, arch_.q_dim() / t);
  all_reduce("tp_all_reduce_attn");
  elementwise("mlp_norm", 3.0 * act + double(h) * e, 5.0 * double(T * h));  // residual add + RMSNorm
  gemm("gate_up", 2 * arch_.intermediate_size / t, h);
  elementwise("act_mul", 3.0 * double(T) * double(arch_.intermediate_size / t) * e,
              5.0 * double(T) * double(arch_.intermediate_size / t));
  gemm("down", h, arch_.intermediate_size / t);
  all_reduce("tp_all_reduce_mlp");

  const OpCost embed = predictor_->elementwise(Bytes{2.0 * act}, Flops{0.0});
  sink.add("embedding", Flops{0.0}, Bytes{2.0 * act}, embed, 1.0);
  const std::int64_t p = parallel_.pipeline;
  Times out{layer * L * double(p) + embed.time, layer * L + embed.time};
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
  if (attn_.fp8) {  // Q of every token in the batch quantized to fp8 before the attention kernels
    const double q = double(b.total_tokens()) * double(attn_.heads_q * attn_.head_dim);
    const OpCost c = predictor_->elementwise(Bytes{q * (attn_.act_bytes_per_element + 1.0)}, Flops{3.0 * q});
    sink.add("attn_q_quant", Flops{3.0 * q}, Bytes{q * (attn_.act_bytes_per_element + 1.0)}, c,
             double(arch_.num_layers));
    layer += c.time;
    windowed += c.time;
  }
  if (!b.prefills.empty()) {
    const std::span<const PrefillChunk> chunks(b.prefills);
    if (full_layers > 0) {
      const OpCost c = predictor_->attention_prefill(attn_, chunks);
      sink.add("attention_prefill", prefill_attention_flops(attn_, chunks), prefill_attention_bytes(attn_, chunks), c,
               full_layers);
      layer += c.time;
    }
    if (sliding > 0) {
      const OpCost c = predictor_->attention_prefill(attn_sliding_, chunks);
      sink.add("attention_prefill_swa", prefill_attention_flops(attn_sliding_, chunks),
               prefill_attention_bytes(attn_sliding_, chunks), c, double(sliding));
      windowed += c.time;
    }
  }
  if (b.num_decodes > 0) {
    if (full_layers > 0) {
      const OpCost c = predictor_->attention_decode(attn_, b.num_decodes, b.decode_context_tokens);
      sink.add("attention_decode", decode_attention_flops(attn_, b.decode_context_tokens),
               decode_attention_bytes(attn_, b.num_decodes, b.decode_context_tokens), c, full_layers);
      layer += c.time;
    }
    if (sliding > 0) {
      const std::int64_t kv = sliding_decode_tokens(b);
      const OpCost c = predictor_->attention_decode(attn_sliding_, b.num_decodes, kv);
      sink.add("attention_decode_swa", decode_attention_flops(attn_sliding_, kv),
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
StepModel::Times StepModel::head_part(std::int64_t S, Sink& sink) const {
  if (S == 0) return {};
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

template <class Sink>
StepModel::Times StepModel::evaluate(const BatchShape& b, Sink& sink) const {
  if (b.total_tokens() == 0) return {};
  const Times d = dense_part(b.total_tokens(), sink);
  const Times a = attention_part(b, sink);
  const Times h = head_part(b.num_sampled, sink);
  return {d.gpu + a.gpu + h.gpu, d.stage + a.stage + h.stage};
}

Seconds StepModel::token_time(std::int64_t tokens) const {
  NullSink sink;
  return dense_part(tokens, sink).gpu;
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

Seconds StepModel::step_time(const BatchShape& batch) const {
  NullSink sink;
  if (batch.empty()) return Seconds{0.0};
  return evaluate(batch, sink).gpu + overhead_.of(batch);
}

StepCost StepModel::breakdown(const BatchShape& batch) const {
  StepCost cost;
  if (batch.empty()) return cost;
  ListSink sink{&cost.ops};
  const Times times = evaluate(batch, sink);
  // List the ops in execution order within a layer.
  static const std::vector<std::string> order = {
      "attn_norm", "qkv", "rope", "attention_prefill", "attention_prefill_swa", "attention_decode",
      "attention_decode_swa", "o", "tp_all_reduce_attn", "mlp_norm",
      "gate_up", "act_mul", "down", "tp_all_reduce_mlp", "embedding", "final_norm", "lm_head", "sampling",
      "pp_send_recv"};
  auto rank = [&](const StepOp& o) { return std::find(order.begin(), order.end(), o.name) - order.begin(); };
  std::stable_sort(cost.ops.begin(), cost.ops.end(), [&](const StepOp& a, const StepOp& b) { return rank(a) < rank(b); });
  cost.gpu = times.gpu;
  cost.stage = times.stage;
  cost.overhead = overhead_.of(batch);
  return cost;
}

}  // namespace servesim
