#include "models/cost/step_model.h"

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
  layers_per_stage_ = arch_.num_layers / p;
}

Bytes StepModel::weight_bytes_per_gpu() const {
  // Layer weights split over TP and PP; embedding and LM head split over TP (vocab-parallel) and held by the
  // first / last stage: counted fully here as the bound for the GPU that holds them.
  const double t = double(parallel_.tensor);
  const double layers = double(layers_per_stage_) * arch_.layer_params() / t;
  const double embed = double(arch_.vocab_size * arch_.hidden_size) / t;
  const double head = arch_.tie_word_embeddings ? 0.0 : embed;
  return Bytes{(layers + embed + head) * arch_.weight_bytes_per_param};
}

Bytes StepModel::kv_bytes_per_token_per_gpu() const {
  return Bytes{2.0 * double(layers_per_stage_ * attn_.heads_kv * attn_.head_dim) * arch_.kv_bytes_per_element};
}

template <class Sink>
StepModel::Times StepModel::evaluate(const BatchShape& b, Sink& sink) const {
  const std::int64_t T = b.total_tokens();
  if (T == 0) return {};
  const double L = double(layers_per_stage_);
  const double all_layers = double(arch_.num_layers);  // the breakdown lists whole-model totals
  const double e = arch_.weight_bytes_per_param;
  const std::int64_t t = parallel_.tensor;
  const std::int64_t h = arch_.hidden_size;
  const double act = double(T) * double(h) * e;  // one activation tensor [T, hidden]
  Seconds layer{0.0};
  Seconds comm_total{0.0};
  auto op = [&](const char* name, Flops f, Bytes by, OpCost c) {
    sink.add(name, f, by, c, all_layers);
    layer += c.time;
  };
  auto gemm = [&](const char* name, std::int64_t n, std::int64_t k) {
    const GemmShape g{name, T, n, k, e};
    op(name, g.flops(), g.bytes(), predictor_->gemm(g));
  };
  auto elementwise = [&](const char* name, double bytes, double flops) {
    op(name, Flops{flops}, Bytes{bytes}, predictor_->elementwise(Bytes{bytes}, Flops{flops}));
  };
  auto all_reduce = [&](const char* name) {
    if (t == 1) return;
    const OpCost c = comm_->all_reduce(Bytes{act});
    const Seconds exposed = c.time * (1.0 - parallel_.overlap);
    sink.add(name, Flops{0.0}, Bytes{act}, OpCost{exposed, Bound::communication}, all_layers);
    comm_total += exposed;
  };

  elementwise("attn_norm", 2.0 * act + double(h) * e, 4.0 * double(T * h));
  gemm("qkv", (arch_.q_dim() + 2 * arch_.kv_dim()) / t, h);
  elementwise("rope", 2.0 * double(T) * double((attn_.heads_q + attn_.heads_kv) * attn_.head_dim) * e,
              6.0 * double(T) * double((attn_.heads_q + attn_.heads_kv) * attn_.head_dim));
  if (!b.prefills.empty()) {
    const std::span<const PrefillChunk> chunks(b.prefills);
    op("attention_prefill", prefill_attention_flops(attn_, chunks), prefill_attention_bytes(attn_, chunks),
       predictor_->attention_prefill(attn_, chunks));
  }
  if (b.num_decodes > 0) {
    op("attention_decode", decode_attention_flops(attn_, b.decode_context_tokens),
       decode_attention_bytes(attn_, b.num_decodes, b.decode_context_tokens),
       predictor_->attention_decode(attn_, b.num_decodes, b.decode_context_tokens));
  }
  gemm("o", h, arch_.q_dim() / t);
  all_reduce("tp_all_reduce_attn");
  elementwise("mlp_norm", 3.0 * act + double(h) * e, 5.0 * double(T * h));  // residual add + RMSNorm
  gemm("gate_up", 2 * arch_.intermediate_size / t, h);
  elementwise("act_mul", 3.0 * double(T) * double(arch_.intermediate_size / t) * e,
              5.0 * double(T) * double(arch_.intermediate_size / t));
  gemm("down", h, arch_.intermediate_size / t);
  all_reduce("tp_all_reduce_mlp");

  const Seconds layers = layer * L + comm_total * L;  // one stage's layers
  Seconds once_total{0.0};
  // Once per step: embedding gather, final norm, LM head over the sampling tokens, sampling.
  auto once = [&](const char* name, Flops f, Bytes by, OpCost c) {
    sink.add(name, f, by, c, 1.0);
    once_total += c.time;
  };
  once("embedding", Flops{0.0}, Bytes{2.0 * act}, predictor_->elementwise(Bytes{2.0 * act}, Flops{0.0}));
  if (b.num_sampled > 0) {
    const double s = double(b.num_sampled);
    once("final_norm", Flops{4.0 * s * double(h)}, Bytes{2.0 * s * double(h) * e},
         predictor_->elementwise(Bytes{2.0 * s * double(h) * e}, Flops{4.0 * s * double(h)}));
    const GemmShape head{"lm_head", b.num_sampled, arch_.vocab_size / t, h, e};
    once("lm_head", head.flops(), head.bytes(), predictor_->gemm(head));
    const double logits = s * double(arch_.vocab_size / t) * 4.0;  // fp32 logits: softmax + top-k/p
    once("sampling", Flops{5.0 * logits / 4.0}, Bytes{2.0 * logits},
         predictor_->elementwise(Bytes{2.0 * logits}, Flops{5.0 * logits / 4.0}));
  }
  const std::int64_t p = parallel_.pipeline;
  Seconds gpu = layers * double(p) + once_total;
  if (p > 1) {
    const OpCost c = comm_->send_recv(Bytes{act});
    sink.add("pp_send_recv", Flops{0.0}, Bytes{act}, OpCost{c.time, Bound::communication}, double(p - 1));
    gpu += c.time * double(p - 1);
  }
  return Times{gpu, layers + once_total};
}

Seconds StepModel::step_time(const BatchShape& batch) const {
  NullSink sink;
  if (batch.empty()) return Seconds{0.0};
  return evaluate(batch, sink).gpu + overhead_.of(batch.num_seqs(), batch.total_tokens());
}

StepCost StepModel::breakdown(const BatchShape& batch) const {
  StepCost cost;
  if (batch.empty()) return cost;
  ListSink sink{&cost.ops};
  const Times times = evaluate(batch, sink);
  cost.gpu = times.gpu;
  cost.stage = times.stage;
  cost.overhead = overhead_.of(batch.num_seqs(), batch.total_tokens());
  return cost;
}

}  // namespace servesim
