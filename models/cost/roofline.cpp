#include "models/cost/roofline.h"

namespace servesim {

const char* to_string(Bound b) {
  switch (b) {
    case Bound::memory: return "memory";
    case Bound::compute: return "compute";
    case Bound::communication: return "communication";
    case Bound::overhead: return "overhead";
  }
  return "?";
}

Flops prefill_attention_flops(const AttentionShape& a, std::span<const PrefillChunk> chunks) {
  double pairs = 0.0;
  for (const auto& c : chunks) {
    const double t = double(c.tokens);
    pairs += t * (double(c.context) + (t + 1.0) / 2.0);
  }
  return Flops{4.0 * double(a.heads_q) * double(a.head_dim) * pairs};
}

Bytes prefill_attention_bytes(const AttentionShape& a, std::span<const PrefillChunk> chunks) {
  double q = 0.0, kv = 0.0;  // elements; O has as many as Q
  for (const auto& c : chunks) {
    q += double(c.tokens) * double(a.heads_q * a.head_dim);
    kv += double(c.context + c.tokens) * double(a.heads_kv * a.head_dim) * 2.0;  // K, V
  }
  return Bytes{q * (a.q_bytes_per_element() + a.act_bytes_per_element) + kv * a.bytes_per_element};
}

Flops decode_attention_flops(const AttentionShape& a, std::int64_t kv_tokens) {
  return Flops{4.0 * double(a.heads_q) * double(a.head_dim) * double(kv_tokens)};
}

Bytes decode_attention_bytes(const AttentionShape& a, std::int64_t batch, std::int64_t kv_tokens) {
  const double kv = double(kv_tokens) * double(a.heads_kv * a.head_dim) * 2.0;
  const double q = double(batch) * double(a.heads_q * a.head_dim);  // O has as many
  return Bytes{kv * a.bytes_per_element + q * (a.q_bytes_per_element() + a.act_bytes_per_element)};
}

OpCost RooflinePredictor::roof(Flops flops, FlopsPerSec rate, Bytes bytes) const {
  const Seconds tc = flops / rate;
  const Seconds tm = bytes / gpu_.achieved_bandwidth();
  return tc > tm ? OpCost{tc, Bound::compute} : OpCost{tm, Bound::memory};
}

OpCost RooflinePredictor::gemm(const GemmShape& g) const {
  const FlopsPerSec rate = g.fp8 && gpu_.has_fp8() ? gpu_.achieved_fp8_flops() : gpu_.achieved_flops();
  OpCost c = roof(g.flops(), rate, g.bytes());
  c.time += gpu_.kernel_launch;
  return c;
}

FlopsPerSec RooflinePredictor::attention_rate(const AttentionShape& a) const {
  return (a.fp8 && gpu_.has_fp8() ? gpu_.achieved_fp8_flops() : gpu_.achieved_flops()) * kAttentionComputeShare;
}

OpCost RooflinePredictor::attention_prefill(const AttentionShape& a, std::span<const PrefillChunk> chunks) const {
  if (chunks.empty()) return {};
  OpCost c = roof(prefill_attention_flops(a, chunks), attention_rate(a), prefill_attention_bytes(a, chunks));
  c.time += gpu_.kernel_launch;
  return c;
}

OpCost RooflinePredictor::attention_decode(const AttentionShape& a, std::int64_t batch,
                                           std::int64_t kv_tokens) const {
  if (batch == 0) return {};
  OpCost c = roof(decode_attention_flops(a, kv_tokens), attention_rate(a), decode_attention_bytes(a, batch, kv_tokens));
  c.time += gpu_.kernel_launch;
  return c;
}

OpCost RooflinePredictor::elementwise(Bytes bytes, Flops flops) const {
  OpCost c = roof(flops, gpu_.achieved_flops(), bytes);
  c.time += gpu_.kernel_launch;
  return c;
}

}  // namespace servesim
