#include "models/cost/calibrated.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace servesim {
namespace {

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
  // GEMMs by (N, K, dtype); one roofline fit per precision.
  std::map<GemmKey, std::vector<MeasuredCurve::Point>> gemm_pts;
  std::vector<FitPoint> all, all_fp8;
  for (const auto& g : profile_->gemm) {
    const bool fp8 = g.dtype == "fp8_e4m3";
    if (!fp8 && g.dtype != "bf16") continue;
    const GemmShape shape{"", g.m, g.n, g.k, 2.0, fp8 ? 1.0 : 0.0, fp8};
    const MeasuredCurve::Point p{double(g.m), g.median_us * 1e-6, shape.flops().v, shape.bytes().v};
    gemm_pts[{g.n, g.k, g.dtype}].push_back(p);
    gemm_names_[{g.n, g.k, g.dtype}] = g.op;
    (fp8 ? all_fp8 : all).push_back({p.flops, p.bytes, p.time_s});
  }
  // Grouped GEMMs by (N, K, dtype) and group count: each row one point of its count's curve over rows per group.
  std::map<GemmKey, std::map<std::int64_t, std::vector<MeasuredCurve::Point>>> grouped_pts;
  for (const auto& g : profile_->grouped_gemm) {
    const bool fp8 = g.dtype == "fp8_e4m3";
    if (!fp8 && g.dtype != "bf16") continue;
    const double m = double(g.m);
    const GroupedGemmShape shape{"", double(g.groups), double(g.groups) * m, m, g.n, g.k, 2.0, fp8 ? 1.0 : 0.0, fp8};
    grouped_pts[{g.n, g.k, g.dtype}][g.groups].push_back({m, g.median_us * 1e-6, shape.flops().v, shape.bytes().v});
  }
  for (auto& [key, by_groups] : grouped_pts) {
    for (auto& [groups, pts] : by_groups) grouped_[key][groups] = MeasuredCurve(std::move(pts));
  }
  // Every fitted bandwidth is capped at the datasheet HBM bandwidth (fit.h).
  const double cap = gpu_.memory_bandwidth.v;
  gemm_fit_ = fit_roofline(all, seed, cap);
  const double fp8_ratio = gpu_.has_fp8() ? gpu_.fp8_peak.v / gpu_.bf16_peak.v : 1.0;
  gemm_fp8_fit_ = gemm_fit_;
  gemm_fp8_fit_.flops_per_s *= fp8_ratio;
  if (!all_fp8.empty()) gemm_fp8_fit_ = fit_roofline(all_fp8, gemm_fp8_fit_, cap);
  for (auto& [key, pts] : gemm_pts) gemm_[key] = MeasuredCurve(std::move(pts));

  // Attention.
  std::map<HeadKey, std::vector<MeasuredCurve::Point>> pre;
  std::map<HeadKey, std::map<std::int64_t, std::vector<MeasuredCurve::Point>>> dec;
  std::vector<FitPoint> pre_all, dec_all;
  for (const auto& a : profile_->attention) {
    if (a.dtype != "bf16") continue;
    const HeadKey key{a.hq, a.hkv, a.head_dim};
    const AttentionShape shape{a.hq, a.hkv, a.head_dim, 2.0};
    const double t = a.median_us * 1e-6;
    if (a.op == "prefill") {
      std::vector<PrefillChunk> chunks(static_cast<std::size_t>(a.batch), PrefillChunk{a.q_len, a.ctx_len});
      const MeasuredCurve::Point p{prefill_attention_pairs(shape, chunks), t, prefill_attention_flops(shape, chunks).v,
                                   prefill_attention_bytes(shape, chunks).v};
      pre[key].push_back(p);
      pre_all.push_back({p.flops, p.bytes, t});
    } else if (!a.mixed.empty()) {
      mixed_decode_.push_back(a);  // several lengths in one batch: not a point of the uniform-batch lines
    } else {
      const auto p = decode_point(shape, a.batch, double(a.kv_total), t);
      dec[key][a.batch].push_back(p);
      dec_all.push_back({p.flops, p.bytes, t});
      decode_[key].shape = shape;
    }
  }
  const RooflineFit attn_seed{seed.latency_s, seed.flops_per_s * kAttentionComputeShare, seed.bytes_per_s};
  prefill_fit_ = fit_roofline(pre_all, attn_seed, cap);
  decode_fit_ = fit_roofline(dec_all, attn_seed, cap);
  for (auto& [key, pts] : pre) prefill_[key] = MeasuredCurve(std::move(pts));
  for (auto& [key, lines] : dec) {
    for (auto& [b, pts] : lines) decode_[key].by_batch[b] = MeasuredCurve(std::move(pts));
  }

  // Device copies: bytes moved = 2 x copy size (read + write).
  std::vector<FitPoint> copies;
  for (const auto& m : profile_->memory) {
    if (m.op == "d2d" && m.bytes > 0) copies.push_back({0.0, 2.0 * m.bytes, m.median_us * 1e-6});
  }
  copy_fit_ = copies.empty() ? RooflineFit{seed.latency_s, 0.0, seed.bytes_per_s} : fit_roofline(copies, seed, cap);
}

OpCost CalibratedPredictor::gemm(const GemmShape& g) const {
  const Bound bound = roofline_.gemm(g).bound;
  const RooflineFit& fit = g.fp8 ? gemm_fp8_fit_ : gemm_fit_;
  const double flops = g.flops().v, bytes = g.bytes().v;
  // Measured in this precision: the curve itself.
  const bool plain_bf16 = !g.fp8 && g.w_bytes_per_element() == g.bytes_per_element;
  const auto own = gemm_.find({g.n, g.k, g.fp8 ? "fp8_e4m3" : "bf16"});
  if (own != gemm_.end() && (g.fp8 || plain_bf16)) return {Seconds{own->second.at(double(g.m), flops, bytes, fit)}, bound};
  // Otherwise the bf16 measurement of the shape, scaled by the fitted rooflines' ratio.
  const auto base = gemm_.find({g.n, g.k, "bf16"});
  if (base == gemm_.end()) return {Seconds{fit.predict(flops, bytes)}, bound};
  const double bf16_bytes = GemmShape{g.op, g.m, g.n, g.k, 2.0}.bytes().v;
  const double t = base->second.at(double(g.m), flops, bf16_bytes, gemm_fit_);
  return {Seconds{t * fit.predict(flops, bytes) / gemm_fit_.predict(flops, bf16_bytes)}, bound};
}

double CalibratedPredictor::grouped_time(const std::map<std::int64_t, MeasuredCurve>& curves,
                                         const GroupedGemmShape& g, const RooflineFit& fit) const {
  // The shape with `groups` groups of g's rows per group, and its measured (or extended) time.
  const auto shape_at = [&](double groups) {
    GroupedGemmShape s = g;
    s.groups = groups;
    s.rows = groups * g.rows_per_group;
    return s;
  };
  const auto time_at = [&](const std::pair<const std::int64_t, MeasuredCurve>& c) {
    const GroupedGemmShape s = shape_at(double(c.first));
    return c.second.at(g.rows_per_group, s.flops().v, s.bytes().v, fit);
  };
  const auto hi = curves.lower_bound(static_cast<std::int64_t>(std::ceil(g.groups)));
  if (hi != curves.end() && double(hi->first) == g.groups) return time_at(*hi);
  // Outside the measured group counts: the nearest one's time, scaled by the fit's ratio of the two shapes.
  const auto scaled = [&](const std::pair<const std::int64_t, MeasuredCurve>& c) {
    const GroupedGemmShape s = shape_at(double(c.first));
    return time_at(c) * fit.predict(g.flops().v, g.bytes().v) / fit.predict(s.flops().v, s.bytes().v);
  };
  if (hi == curves.begin()) return scaled(*hi);
  if (hi == curves.end()) return scaled(*std::prev(hi));
  const auto lo = std::prev(hi);
  const double t0 = time_at(*lo), t1 = time_at(*hi);
  const double u = std::log(g.groups / double(lo->first)) / std::log(double(hi->first) / double(lo->first));
  return std::exp(std::log(t0) + u * (std::log(t1) - std::log(t0)));
}

OpCost CalibratedPredictor::grouped_gemm(const GroupedGemmShape& g) const {
  if (g.groups <= 0.0) return {};
  const Bound bound = roofline_.grouped_gemm(g).bound;
  const RooflineFit& fit = g.fp8 ? gemm_fp8_fit_ : gemm_fit_;
  const double flops = g.flops().v, bytes = g.bytes().v;
  // Measured in this precision: the curves themselves.
  const double w = g.weight_bytes_per_element > 0 ? g.weight_bytes_per_element : g.bytes_per_element;
  const bool plain_bf16 = !g.fp8 && w == g.bytes_per_element;
  const auto own = grouped_.find({g.n, g.k, g.fp8 ? "fp8_e4m3" : "bf16"});
  if (own != grouped_.end() && (g.fp8 || plain_bf16)) return {Seconds{grouped_time(own->second, g, fit)}, bound};
  // Otherwise the bf16 measurement of the shape, scaled by the fitted rooflines' ratio (as gemm()).
  const auto base = grouped_.find({g.n, g.k, "bf16"});
  if (base == grouped_.end()) return {Seconds{fit.predict(flops, bytes)}, bound};
  GroupedGemmShape bf16 = g;
  bf16.weight_bytes_per_element = 0.0;
  bf16.fp8 = false;
  const double t = grouped_time(base->second, bf16, gemm_fit_);
  return {Seconds{t * fit.predict(flops, bytes) / gemm_fit_.predict(flops, bf16.bytes().v)}, bound};
}

template <class Map>
typename Map::const_iterator CalibratedPredictor::layout_for(const Map& m, const HeadKey& key) {
  const auto exact = m.find(key);
  if (exact != m.end()) return exact;
  const auto [hq, hkv, dim] = key;
  auto best = m.end();
  double best_d = 0;
  for (auto it = m.begin(); it != m.end(); ++it) {
    const auto [mq, mkv, mdim] = it->first;
    if (mdim != dim) continue;
    // Nearest GQA group size first (it decides how K/V tiles are reused), then nearest query-head count.
    const double d = 1e3 * std::abs(std::log(double(hq * mkv) / double(mq * hkv))) +
                     std::abs(std::log(double(hq) / double(mq)));
    if (best == m.end() || d < best_d) {
      best = it;
      best_d = d;
    }
  }
  return best;
}

double CalibratedPredictor::prefill_time(const MeasuredCurve& curve, const AttentionShape& measured,
                                         double pairs) const {
  // Work equivalent: a causal prefill with the same query-key pairs, so the fitted shape uses its bytes.
  const auto eq = equivalent_chunk(pairs);
  const double flops = 4.0 * double(measured.heads_q) * double(measured.head_dim) * pairs;
  return curve.at(pairs, flops, prefill_attention_bytes(measured, eq).v, prefill_fit_);
}

std::optional<double> CalibratedPredictor::prefill_on(const std::map<HeadKey, MeasuredCurve>& layouts,
                                                     const AttentionShape& a, double pairs) const {
  const auto it = layout_for(layouts, {a.heads_q, a.heads_kv, a.head_dim});
  if (it == layouts.end()) return std::nullopt;
  // On another layout: the same attention FLOPs, i.e. query-key pairs scaled by the query-head ratio.
  const auto [mq, mkv, mdim] = it->first;
  const AttentionShape measured{mq, mkv, mdim, 2.0};  // the profile's attention rows are bf16
  const double scaled = pairs * double(a.heads_q) / double(mq);
  const double t = prefill_time(it->second, measured, scaled);
  if (!a.fp8 || !gpu_.has_fp8()) return t;
  // fp8 attention: the bf16 measurement scaled by the fitted roofline at the datasheet fp8/bf16 rate ratio.
  RooflineFit fp8 = prefill_fit_;
  fp8.flops_per_s *= gpu_.fp8_peak.v / gpu_.bf16_peak.v;
  const auto eq = equivalent_chunk(scaled);
  AttentionShape measured_fp8 = measured;
  measured_fp8.fp8 = true;
  const double flops = 4.0 * double(mq) * double(mdim) * scaled;
  return t * fp8.predict(flops, prefill_attention_bytes(measured_fp8, eq).v) /
         prefill_fit_.predict(flops, prefill_attention_bytes(measured, eq).v);
}

std::optional<double> CalibratedPredictor::decode_on(const std::map<HeadKey, DecodeLines>& layouts,
                                                    const AttentionShape& a, std::int64_t batch, double kv_tokens) const {
  const auto it = layout_for(layouts, {a.heads_q, a.heads_kv, a.head_dim});
  if (it == layouts.end()) return std::nullopt;
  // On another layout or KV dtype: the same KV bytes, i.e. cached tokens scaled by the KV-head and byte ratios.
  const auto& m = it->second.shape;
  return decode_time(it->second, batch,
                     kv_tokens * double(a.heads_kv) * a.bytes_per_element / (double(m.heads_kv) * m.bytes_per_element));
}

OpCost CalibratedPredictor::attention_prefill(const AttentionShape& a, std::span<const PrefillChunk> chunks) const {
  if (chunks.empty()) return {};
  const OpCost roof = roofline_.attention_prefill(a, chunks);
  // A sliding-window chunk as the causal prefill of equal work (its query-key pairs). MLA shapes (V narrower than
  // K, or a latent KV) have no measured layout: the fitted roofline.
  const bool standard = a.v_head_dim == 0 && !a.latent_kv;
  if (const auto t = standard ? prefill_on(prefill_, a, prefill_attention_pairs(a, chunks)) : std::nullopt) {
    return {Seconds{*t}, roof.bound};
  }
  return {Seconds{prefill_fit_.predict(prefill_attention_flops(a, chunks).v, prefill_attention_bytes(a, chunks).v)},
          roof.bound};
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
  const bool standard = a.v_head_dim == 0 && !a.latent_kv;
  if (const auto t = standard ? decode_on(decode_, a, batch, double(kv_tokens)) : std::nullopt) {
    return {Seconds{*t}, roof.bound};
  }
  return {Seconds{decode_fit_.predict(decode_attention_flops(a, kv_tokens).v,
                                      decode_attention_bytes(a, batch, kv_tokens).v)},
          roof.bound};
}

OpCost CalibratedPredictor::elementwise(Bytes bytes, Flops flops) const {
  const OpCost roof = roofline_.elementwise(bytes, flops);
  if (copy_fit_.bytes_per_s <= 0) return roof;
  const double t = gpu_.kernel_launch.v + bytes.v / copy_fit_.bytes_per_s;
  return {Seconds{t}, roof.bound};
}

double CalibratedPredictor::mixed_decode_time(const AttentionSample& a) const {
  const AttentionShape shape{a.hq, a.hkv, a.head_dim, 2.0};
  if (a.mixed_mode == "pad") {
    // One call on the batch padded to its longest sequence (the key mask hides the padding, the reads remain).
    std::int64_t longest = 0;
    for (const auto& g : a.mixed) longest = std::max(longest, g.cached_tokens);
    return attention_decode(shape, a.batch, a.batch * longest).time.v;
  }
  // "groups": one call per length, back to back.
  double t = 0;
  for (const auto& g : a.mixed) t += attention_decode(shape, g.sequences, g.sequences * g.cached_tokens).time.v;
  return t;
}

FamilyReport::Point CalibratedPredictor::describe_gemm(const GemmKey& key, double m) const {
  const auto& [n, k, dtype] = key;
  for (const auto& g : profile_->gemm) {
    if (g.n == n && g.k == k && g.dtype == dtype && double(g.m) == m) {
      return {fmt::format("M={}", g.m), 0.0, 100.0 * (g.max_us - g.min_us) / g.median_us};
    }
  }
  return {fmt::format("M={}", m), 0.0, 0.0};
}

FamilyReport::Point CalibratedPredictor::describe_attention(const std::string& op, const HeadKey& key,
                                                            std::int64_t batch, double x) const {
  const auto [hq, hkv, dim] = key;
  for (const auto& a : profile_->attention) {
    if (a.op != op || a.hq != hq || a.hkv != hkv || a.head_dim != dim || !a.mixed.empty()) continue;
    const double spread = 100.0 * (a.max_us - a.min_us) / a.median_us;
    if (op == "prefill") {
      const std::vector<PrefillChunk> chunks(static_cast<std::size_t>(a.batch), PrefillChunk{a.q_len, a.ctx_len});
      if (prefill_attention_pairs(AttentionShape{hq, hkv, dim, 2.0}, chunks) == x) {
        return {fmt::format("{}/{} S={}", hq, hkv, a.q_len), 0.0, spread};
      }
    } else if (a.batch == batch && double(a.kv_total) == x) {
      return {fmt::format("{}/{} B={} L={}", hq, hkv, a.batch, a.ctx_len), 0.0, spread};
    }
  }
  return {fmt::format("{}/{} x={}", hq, hkv, x), 0.0, 0.0};
}

std::vector<FamilyReport> CalibratedPredictor::report() const {
  std::vector<FamilyReport> out;
  using Scored = std::vector<FamilyReport::Point>;
  auto rel = [](double pred, double meas) { return 100.0 * std::abs(pred - meas) / meas; };
  auto finish = [](FamilyReport& r, Scored pts) {
    r.points = pts.size();
    double sum = 0;
    std::vector<double> spreads;
    for (const auto& p : pts) {
      sum += p.loo_err_pct;
      r.loo_max = std::max(r.loo_max, p.loo_err_pct);
      spreads.push_back(p.spread_pct);
    }
    r.loo_mape = pts.empty() ? 0.0 : sum / double(pts.size());
    if (!spreads.empty()) {
      std::sort(spreads.begin(), spreads.end());
      const std::size_t n = spreads.size();
      r.spread_pct = n % 2 ? spreads[n / 2] : 0.5 * (spreads[n / 2 - 1] + spreads[n / 2]);
    }
    std::stable_sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) { return a.loo_err_pct > b.loo_err_pct; });
    pts.resize(std::min<std::size_t>(pts.size(), 3));
    r.worst = std::move(pts);
  };

  // GEMM: per shape and precision, each point predicted from the others of its shape.
  Scored all, all_fp8;
  for (const auto& [key, curve] : gemm_) {
    const std::string& op = gemm_names_.at(key);
    const std::string& dtype = std::get<2>(key);
    const bool fp8 = dtype != "bf16";
    const RooflineFit& fit = fp8 ? gemm_fp8_fit_ : gemm_fit_;
    // Two shapes with one op name (profiles of two models without tags) are told apart by N x K.
    bool shared = false;
    for (const auto& [other, name] : gemm_names_) shared = shared || (name == op && other != key && std::get<2>(other) == dtype);
    const std::string label = shared ? fmt::format("{} {}x{}", op, std::get<0>(key), std::get<1>(key)) : op;
    Scored pts;
    for (std::size_t i = 0; i < curve.points().size(); ++i) {
      const auto& p = curve.points()[i];
      auto d = describe_gemm(key, p.x);
      d.loo_err_pct = rel(curve.without(i).at(p.x, p.flops, p.bytes, fit), p.time_s);
      pts.push_back(d);
    }
    for (auto d : pts) {
      d.label = label + " " + d.label;
      (fp8 ? all_fp8 : all).push_back(d);
    }
    FamilyReport r{"gemm:" + label + (fp8 ? " " + dtype : ""), 0, 0, 0, fit, 0, {}};
    finish(r, pts);
    out.push_back(r);
  }
  if (!all_fp8.empty()) {
    FamilyReport g8{"gemm fp8_e4m3", 0, 0, 0, gemm_fp8_fit_, 0, {}};
    finish(g8, all_fp8);
    out.insert(out.begin(), g8);
  }
  FamilyReport g{"gemm", 0, 0, 0, gemm_fit_, 0, {}};
  finish(g, all);
  out.insert(out.begin(), g);

  // Grouped GEMMs (MoE experts), each row of grouped_gemm.csv: from the other rows of its group count's curve
  // (leave-one-out), and from the other group counts only (what grouped_gemm() does for a count the profile lacks:
  // log-log across counts).
  Scored within, across;
  for (const auto& row : profile_->grouped_gemm) {
    const bool fp8 = row.dtype == "fp8_e4m3";
    if (!fp8 && row.dtype != "bf16") continue;
    const auto shape_it = grouped_.find({row.n, row.k, row.dtype});
    if (shape_it == grouped_.end()) continue;
    const RooflineFit& fit = fp8 ? gemm_fp8_fit_ : gemm_fit_;
    const double m = double(row.m);
    const GroupedGemmShape shape{"", double(row.groups), double(row.groups) * m, m, row.n, row.k, 2.0,
                                 fp8 ? 1.0 : 0.0, fp8};
    const double measured = row.median_us * 1e-6;
    const FamilyReport::Point base{fmt::format("{} G={} M={}{}", row.op, row.groups, row.m, fp8 ? " fp8" : ""), 0.0,
                                   100.0 * (row.max_us - row.min_us) / row.median_us};
    const MeasuredCurve& curve = shape_it->second.at(row.groups);
    for (std::size_t i = 0; i < curve.points().size() && curve.points().size() > 1; ++i) {
      if (curve.points()[i].x != m) continue;
      FamilyReport::Point d = base;
      d.loo_err_pct = rel(curve.without(i).at(m, shape.flops().v, shape.bytes().v, fit), measured);
      within.push_back(d);
      break;
    }
    if (shape_it->second.size() > 1) {
      auto others = shape_it->second;
      others.erase(row.groups);
      FamilyReport::Point d = base;
      d.loo_err_pct = rel(grouped_time(others, shape, fit), measured);
      across.push_back(d);
    }
  }
  if (!within.empty()) {
    FamilyReport r{"grouped_gemm", 0, 0, 0, gemm_fit_, 0, {}};
    finish(r, within);
    out.push_back(r);
  }
  if (!across.empty()) {
    FamilyReport r{"grouped_gemm (other group counts)", 0, 0, 0, gemm_fit_, 0, {}};
    finish(r, across);
    out.push_back(r);
  }

  Scored pre;
  for (const auto& [key, curve] : prefill_) {
    const auto [mq, mkv, mdim] = key;
    const AttentionShape shape{mq, mkv, mdim, 2.0};
    for (std::size_t i = 0; i < curve.points().size(); ++i) {
      const auto& p = curve.points()[i];
      auto d = describe_attention("prefill", key, 1, p.x);
      d.loo_err_pct = rel(prefill_time(curve.without(i), shape, p.x), p.time_s);
      pre.push_back(d);
    }
  }
  FamilyReport pr{"attention_prefill", 0, 0, 0, prefill_fit_, 0, {}};
  finish(pr, pre);
  out.push_back(pr);

  Scored dec;
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
        auto d = describe_attention("decode", key, b, p.x);
        d.loo_err_pct = rel(decode_time(minus, b, p.x), p.time_s);
        dec.push_back(d);
      }
    }
  }
  FamilyReport dr{"attention_decode", 0, 0, 0, decode_fit_, 0, {}};
  finish(dr, dec);
  out.push_back(dr);

  // Mixed-length decode batches: predicted from the uniform-batch lines as they were timed (out of sample).
  if (!mixed_decode_.empty()) {
    Scored mix;
    for (const auto& a : mixed_decode_) {
      std::string groups;
      for (const auto& g : a.mixed) groups += fmt::format("{}{}x{}", groups.empty() ? "" : "+", g.sequences, g.cached_tokens);
      mix.push_back({fmt::format("{}/{} {}", a.hq, a.hkv, groups), rel(mixed_decode_time(a), a.median_us * 1e-6),
                     100.0 * (a.max_us - a.min_us) / a.median_us});
    }
    FamilyReport r{"attention_decode (mixed batches)", 0, 0, 0, decode_fit_, 0, {}};
    finish(r, mix);
    out.push_back(r);
  }

  // Layout transfer: every point of one head layout predicted from the other layouts only (what a model whose
  // layout the profile lacks gets).
  auto shape_of = [](const HeadKey& k) { return AttentionShape{std::get<0>(k), std::get<1>(k), std::get<2>(k), 2.0}; };
  if (prefill_.size() > 1) {
    Scored tr;
    for (const auto& [key, curve] : prefill_) {
      auto others = prefill_;
      others.erase(key);
      for (const auto& p : curve.points()) {
        const auto t = prefill_on(others, shape_of(key), p.x);
        if (!t) continue;
        auto d = describe_attention("prefill", key, 1, p.x);
        d.loo_err_pct = rel(*t, p.time_s);
        tr.push_back(d);
      }
    }
    FamilyReport r{"attention_prefill (other layout)", 0, 0, 0, prefill_fit_, 0, {}};
    finish(r, tr);
    out.push_back(r);
  }
  if (decode_.size() > 1) {
    Scored tr;
    for (const auto& [key, lines] : decode_) {
      auto others = decode_;
      others.erase(key);
      for (const auto& [b, curve] : lines.by_batch) {
        for (const auto& p : curve.points()) {
          const auto t = decode_on(others, shape_of(key), b, p.x);
          if (!t) continue;
          auto d = describe_attention("decode", key, b, p.x);
          d.loo_err_pct = rel(*t, p.time_s);
          tr.push_back(d);
        }
      }
    }
    FamilyReport r{"attention_decode (other layout)", 0, 0, 0, decode_fit_, 0, {}};
    finish(r, tr);
    out.push_back(r);
  }

  Scored copies;
  for (const auto& m : profile_->memory) {
    if (m.op == "d2d" && m.bytes > 0) {
      copies.push_back({fmt::format("d2d {} B", m.bytes), rel(copy_fit_.predict(0.0, 2.0 * m.bytes), m.median_us * 1e-6),
                        100.0 * (m.max_us - m.min_us) / m.median_us});
    }
  }
  FamilyReport mr{"memory_copy (fit, in-sample)", 0, 0, 0, copy_fit_, 0, {}};
  finish(mr, copies);
  out.push_back(mr);
  return out;
}

}  // namespace servesim
