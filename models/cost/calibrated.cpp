#include "models/cost/calibrated.h"

#include <algorithm>
#include <cmath>

namespace servesim {
namespace {

double pairs_of(std::span<const PrefillChunk> chunks) {
  double p = 0;
  for (const auto& c : chunks) p += double(c.tokens) * (double(c.context) + (double(c.tokens) + 1.0) / 2.0);
  return p;
}

MeasuredCurve::Point gemm_point(std::int64_t m, std::int64_t n, std::int64_t k, double t) {
  const GemmShape g{"", m, n, k, 2.0};
  return {double(m), t, g.flops().v, g.bytes().v};
}

// Prefill of one causal sequence with `pairs` query-key pairs: the chunk of S tokens with S(S+1)/2 pairs.
std::vector<PrefillChunk> equivalent_chunk(double pairs) {
  const double s = (-1.0 + std::sqrt(1.0 + 8.0 * pairs)) / 2.0;
  return {PrefillChunk{std::max<std::int64_t>(1, std::llround(s)), 0}};
}

}  // namespace

MeasuredCurve::Point CalibratedPredictor::decode_point(const AttentionShape& a, std::int64_t batch, double kv,
                                                       double t) {
  const auto kv_tokens = static_cast<std::int64_t>(kv);
  return {kv, t, decode_attention_flops(a, kv_tokens).v, decode_attention_bytes(a, batch, kv_tokens).v};
}

CalibratedPredictor::CalibratedPredictor(GpuSpec gpu, std::shared_ptr<const CalibrationProfile> profile)
    : gpu_(std::move(gpu)), profile_(std::move(profile)), roofline_(gpu_) {
  const RooflineFit seed{gpu_.kernel_launch.v, gpu_.achieved_flops().v, gpu_.achieved_bandwidth().v};
  // GEMMs (bf16) by (N, K).
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<MeasuredCurve::Point>> gemm_pts;
  std::vector<FitPoint> all;
  for (const auto& g : profile_->gemm) {
    if (g.dtype != "bf16") continue;
    auto p = gemm_point(g.m, g.n, g.k, g.median_us * 1e-6);
    gemm_pts[{g.n, g.k}].push_back(p);
    gemm_names_[{g.n, g.k}] = g.op;
    all.push_back({p.flops, p.bytes, p.time_s});
  }
  gemm_fit_ = fit_roofline(all, seed);
  for (auto& [key, pts] : gemm_pts) gemm_[key] = MeasuredCurve(std::move(pts));

  // Attention.
  std::map<HeadKey, std::vector<MeasuredCurve::Point>> pre;
  std::map<HeadKey, std::map<std::int64_t, std::vector<MeasuredCurve::Point>>> dec;
  std::vector<FitPoint> pre_all, dec_all;
  for (const auto& a : profile_->attention) {
    const HeadKey key{a.hq, a.hkv, a.head_dim};
    const AttentionShape shape{a.hq, a.hkv, a.head_dim, 2.0};
    const double t = a.median_us * 1e-6;
    if (a.op == "prefill") {
      std::vector<PrefillChunk> chunks(static_cast<std::size_t>(a.batch), PrefillChunk{a.q_len, a.ctx_len});
      const MeasuredCurve::Point p{pairs_of(chunks), t, prefill_attention_flops(shape, chunks).v,
                                   prefill_attention_bytes(shape, chunks).v};
      pre[key].push_back(p);
      pre_all.push_back({p.flops, p.bytes, t});
    } else {
      const auto p = decode_point(shape, a.batch, double(a.kv_total), t);
      dec[key][a.batch].push_back(p);
      dec_all.push_back({p.flops, p.bytes, t});
      decode_[key].shape = shape;
    }
  }
  const RooflineFit attn_seed{seed.latency_s, seed.flops_per_s * kAttentionComputeShare, seed.bytes_per_s};
  prefill_fit_ = fit_roofline(pre_all, attn_seed);
  decode_fit_ = fit_roofline(dec_all, attn_seed);
  for (auto& [key, pts] : pre) prefill_[key] = MeasuredCurve(std::move(pts));
  for (auto& [key, lines] : dec) {
    for (auto& [b, pts] : lines) decode_[key].by_batch[b] = MeasuredCurve(std::move(pts));
  }

  // Device copies: bytes moved = 2 x copy size (read + write).
  std::vector<FitPoint> copies;
  for (const auto& m : profile_->memory) {
    if (m.op == "d2d" && m.bytes > 0) copies.push_back({0.0, 2.0 * m.bytes, m.median_us * 1e-6});
  }
  copy_fit_ = copies.empty() ? RooflineFit{seed.latency_s, 0.0, seed.bytes_per_s} : fit_roofline(copies, seed);
}

OpCost CalibratedPredictor::gemm(const GemmShape& g) const {
  const Bound bound = roofline_.roof(g.flops(), gpu_.achieved_flops(), g.bytes()).bound;
  const auto it = gemm_.find({g.n, g.k});
  const double t = it == gemm_.end() ? gemm_fit_.predict(g.flops().v, g.bytes().v)
                                     : it->second.at(double(g.m), g.flops().v, g.bytes().v, gemm_fit_);
  return {Seconds{t}, bound};
}

OpCost CalibratedPredictor::attention_prefill(const AttentionShape& a, std::span<const PrefillChunk> chunks) const {
  if (chunks.empty()) return {};
  const OpCost roof = roofline_.attention_prefill(a, chunks);
  const auto it = prefill_.find({a.heads_q, a.heads_kv, a.head_dim});
  const double flops = prefill_attention_flops(a, chunks).v;
  const double bytes = prefill_attention_bytes(a, chunks).v;
  if (it == prefill_.end()) return {Seconds{prefill_fit_.predict(flops, bytes)}, roof.bound};
  // Work equivalent: a causal prefill with the same query-key pairs, so the fitted shape uses its bytes.
  const double pairs = pairs_of(chunks);
  const auto eq = equivalent_chunk(pairs);
  return {Seconds{it->second.at(pairs, flops, prefill_attention_bytes(a, eq).v, prefill_fit_)}, roof.bound};
}

double CalibratedPredictor::decode_time(const DecodeLines& lines, std::int64_t batch, double kv_total) const {
  const auto& shape = lines.shape;
  auto on_line = [&](std::int64_t b, const MeasuredCurve& curve) {
    // The same mean context length on line b.
    const double kv = kv_total * double(b) / double(batch);
    const auto p = decode_point(shape, b, kv, 0.0);
    const double t_line = curve.at(kv, p.flops, p.bytes, decode_fit_);
    if (b == batch) return t_line;
    const auto q = decode_point(shape, batch, kv_total, 0.0);
    return t_line * decode_fit_.predict(q.flops, q.bytes) / decode_fit_.predict(p.flops, p.bytes);
  };
  const auto& m = lines.by_batch;
  auto hi = m.lower_bound(batch);
  if (hi != m.end() && hi->first == batch) return on_line(batch, hi->second);
  if (hi == m.begin()) return on_line(hi->first, hi->second);
  if (hi == m.end()) {
    const auto last = std::prev(m.end());
    return on_line(last->first, last->second);
  }
  const auto lo = std::prev(hi);
  const double tl = on_line(lo->first, lo->second);
  const double th = on_line(hi->first, hi->second);
  const double f = (std::log(double(batch)) - std::log(double(lo->first))) /
                   (std::log(double(hi->first)) - std::log(double(lo->first)));
  return std::exp(std::log(tl) + f * (std::log(th) - std::log(tl)));
}

OpCost CalibratedPredictor::attention_decode(const AttentionShape& a, std::int64_t batch,
                                             std::int64_t kv_tokens) const {
  if (batch == 0) return {};
  const OpCost roof = roofline_.attention_decode(a, batch, kv_tokens);
  const auto it = decode_.find({a.heads_q, a.heads_kv, a.head_dim});
  if (it == decode_.end()) {
    return {Seconds{decode_fit_.predict(decode_attention_flops(a, kv_tokens).v,
                                        decode_attention_bytes(a, batch, kv_tokens).v)},
            roof.bound};
  }
  return {Seconds{decode_time(it->second, batch, double(kv_tokens))}, roof.bound};
}

OpCost CalibratedPredictor::elementwise(Bytes bytes, Flops flops) const {
  const OpCost roof = roofline_.elementwise(bytes, flops);
  if (copy_fit_.bytes_per_s <= 0) return roof;
  const double t = gpu_.kernel_launch.v + bytes.v / copy_fit_.bytes_per_s;
  return {Seconds{t}, roof.bound};
}

std::vector<FamilyReport> CalibratedPredictor::report() const {
  std::vector<FamilyReport> out;
  auto finish = [](FamilyReport& r, const std::vector<double>& errs) {
    r.points = errs.size();
    double sum = 0;
    for (const double e : errs) {
      sum += e;
      r.loo_max = std::max(r.loo_max, e);
    }
    r.loo_mape = errs.empty() ? 0.0 : sum / double(errs.size());
  };
  auto rel = [](double pred, double meas) { return 100.0 * std::abs(pred - meas) / meas; };

  // GEMM: per shape, each point predicted from the others of its shape.
  std::vector<double> all_errs;
  for (const auto& [key, curve] : gemm_) {
    std::vector<double> errs;
    for (std::size_t i = 0; i < curve.points().size(); ++i) {
      const auto& p = curve.points()[i];
      errs.push_back(rel(curve.without(i).at(p.x, p.flops, p.bytes, gemm_fit_), p.time_s));
    }
    all_errs.insert(all_errs.end(), errs.begin(), errs.end());
    FamilyReport r{"gemm:" + gemm_names_.at(key), 0, 0, 0, gemm_fit_};
    finish(r, errs);
    out.push_back(r);
  }
  FamilyReport g{"gemm", 0, 0, 0, gemm_fit_};
  finish(g, all_errs);
  out.insert(out.begin(), g);

  std::vector<double> pre_errs;
  for (const auto& [key, curve] : prefill_) {
    for (std::size_t i = 0; i < curve.points().size(); ++i) {
      const auto& p = curve.points()[i];
      pre_errs.push_back(rel(curve.without(i).at(p.x, p.flops, p.bytes, prefill_fit_), p.time_s));
    }
  }
  FamilyReport pr{"attention_prefill", 0, 0, 0, prefill_fit_};
  finish(pr, pre_errs);
  out.push_back(pr);

  std::vector<double> dec_errs;
  for (const auto& [key, lines] : decode_) {
    for (const auto& [b, curve] : lines.by_batch) {
      for (std::size_t i = 0; i < curve.points().size(); ++i) {
        DecodeLines minus = lines;
        if (curve.points().size() == 1) {
          minus.by_batch.erase(b);
        } else {
          minus.by_batch[b] = curve.without(i);
        }
        if (minus.by_batch.empty()) continue;
        const auto& p = curve.points()[i];
        dec_errs.push_back(rel(decode_time(minus, b, p.x), p.time_s));
      }
    }
  }
  FamilyReport dr{"attention_decode", 0, 0, 0, decode_fit_};
  finish(dr, dec_errs);
  out.push_back(dr);

  std::vector<double> copy_errs;
  for (const auto& m : profile_->memory) {
    if (m.op == "d2d" && m.bytes > 0) copy_errs.push_back(rel(copy_fit_.predict(0.0, 2.0 * m.bytes), m.median_us * 1e-6));
  }
  FamilyReport mr{"memory_copy (fit, in-sample)", 0, 0, 0, copy_fit_};
  finish(mr, copy_errs);
  out.push_back(mr);
  return out;
}

}  // namespace servesim
