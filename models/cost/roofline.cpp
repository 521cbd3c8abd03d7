#include "models/cost/roofline.h"

#include <algorithm>

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

namespace {

// Query-key pairs of one chunk: sum over its queries j = context+1 .. context+tokens (1-based positions) of
// min(j, window); the full causal sum when the window does not bind.
double chunk_pairs(const PrefillChunk& c, std::int64_t window) {
  const double t = double(c.tokens);
  if (window <= 0 || c.context + c.tokens <= window) return t * (double(c.context) + (t + 1.0) / 2.0);
  const double w = double(window);
  if (c.context + 1 >= window) return t * w;  // every query sees a full window
  // Queries up to position W grow (context+1 .. W), the rest see W keys each.
  const double a = double(c.context + 1);
  return (a + w) * (w - a + 1.0) / 2.0 + w * double(c.context + c.tokens - window);
}

// Keys (and values) one chunk reads: positions max(0, context + 1 - W) .. context + tokens - 1.
double chunk_keys(const PrefillChunk& c, std::int64_t window) {
  const std::int64_t first = window > 0 ? std::max<std::int64_t>(0, c.context + 1 - window) : 0;
  return double(c.context + c.tokens - first);
}

}  // namespace

double prefill_attention_pairs(const AttentionShape& a, std::span<const PrefillChunk> chunks) {
  double pairs = 0.0;
  for (const auto& c : chunks) pairs += chunk_pairs(c, a.window);
  return pairs;
}

namespace {
// Standard attention: K and V of head_dim each (the original formulas, kept bit for bit).
bool plain(const AttentionShape& a) { return a.v_head_dim == 0 && !a.latent_kv; }
// FLOPs per query-key pair and query head: QK^T (2 x head_dim) + PV (2 x v_dim).
double pair_flops_per_head(const AttentionShape& a) { return 2.0 * double(a.head_dim + a.v_dim()); }
}  // namespace

Flops prefill_attention_flops(const AttentionShape& a, std::span<const PrefillChunk> chunks) {
  if (!plain(a)) return Flops{double(a.heads_q) * pair_flops_per_head(a) * prefill_attention_pairs(a, chunks)};
  return Flops{4.0 * double(a.heads_q) * double(a.head_dim) * prefill_attention_pairs(a, chunks)};
}

Bytes prefill_attention_bytes(const AttentionShape& a, std::span<const PrefillChunk> chunks) {
  if (!plain(a)) {
    double q = 0.0, o = 0.0, kv = 0.0;
    for (const auto& c : chunks) {
      q += double(c.tokens) * double(a.heads_q * a.head_dim);
      o += double(c.tokens) * double(a.heads_q * a.v_dim());
      kv += chunk_keys(c, a.window) * double(a.heads_kv * a.kv_elements_per_head());
    }
    return Bytes{q * a.q_bytes_per_element() + o * a.act_bytes_per_element + kv * a.bytes_per_element};
  }
  double q = 0.0, kv = 0.0;  // elements; O has as many as Q
  for (const auto& c : chunks) {
    q += double(c.tokens) * double(a.heads_q * a.head_dim);
    kv += chunk_keys(c, a.window) * double(a.heads_kv * a.head_dim) * 2.0;  // K, V
  }
  return Bytes{q * (a.q_bytes_per_element() + a.act_bytes_per_element) + kv * a.bytes_per_element};
}

Flops decode_attention_flops(const AttentionShape& a, std::int64_t kv_tokens) {
  if (!plain(a)) return Flops{double(a.heads_q) * pair_flops_per_head(a) * double(kv_tokens)};
  return Flops{4.0 * double(a.heads_q) * double(a.head_dim) * double(kv_tokens)};
}

Bytes decode_attention_bytes(const AttentionShape& a, std::int64_t batch, std::int64_t kv_tokens) {
  if (!plain(a)) {
    const double kv = double(kv_tokens) * double(a.heads_kv * a.kv_elements_per_head());
    const double q = double(batch) * double(a.heads_q * a.head_dim);
    const double o = double(batch) * double(a.heads_q * a.v_dim());
    return Bytes{kv * a.bytes_per_element + q * a.q_bytes_per_element() + o * a.act_bytes_per_element};
  }
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

OpCost RooflinePredictor::grouped_gemm(const GroupedGemmShape& g) const {
  if (g.groups <= 0.0) return {};
  const FlopsPerSec rate = g.fp8 && gpu_.has_fp8() ? gpu_.achieved_fp8_flops() : gpu_.achieved_flops();
  OpCost c = roof(g.flops(), rate, g.bytes());
  c.time += gpu_.kernel_launch;
  return c;
}

OpCost RooflinePredictor::elementwise(Bytes bytes, Flops flops) const {
  OpCost c = roof(flops, gpu_.achieved_flops(), bytes);
  c.time += gpu_.kernel_launch;
  return c;
}

}  // namespace servesim
