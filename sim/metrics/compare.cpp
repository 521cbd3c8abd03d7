#include "sim/metrics/compare.h"

#include <algorithm>
#include <cmath>


#include "models/common/error.h"

namespace servesim {

MetricStats stats_of_measured(const std::vector<MeasuredRequest>& reqs) {
  std::vector<double> ttft, tpot, itl, e2el;
  for (const auto& r : reqs) {
    if (r.token_times_s.empty()) continue;
    const double first = r.token_times_s.front(), last = r.token_times_s.back();
    ttft.push_back((first - r.arrival_s) * 1e3);
    e2el.push_back((last - r.arrival_s) * 1e3);
    if (r.token_times_s.size() > 1) tpot.push_back((last - first) * 1e3 / double(r.token_times_s.size() - 1));
    for (std::size_t i = 1; i < r.token_times_s.size(); ++i) {
      itl.push_back((r.token_times_s[i] - r.token_times_s[i - 1]) * 1e3);
    }
  }
  return {{"ttft", stats_of(ttft)}, {"tpot", stats_of(tpot)}, {"itl", stats_of(itl)}, {"e2el", stats_of(e2el)}};
}

MetricStats stats_of_run(const Recorder& rec) {
  std::vector<double> ttft, tpot, e2el;
  for (const auto& r : rec.records()) {
    ttft.push_back(ns_to_ms(r.first_token - r.arrival));
    e2el.push_back(ns_to_ms(r.finish - r.arrival));
    if (r.output_tokens > 1) tpot.push_back(ns_to_ms(r.finish - r.first_token) / double(r.output_tokens - 1));
  }
  std::vector<std::pair<double, std::int64_t>> runs;
  for (const auto& [gap, n] : rec.itl_runs()) runs.emplace_back(double(gap) * 1e-6, n);
  return {{"ttft", stats_of(ttft)}, {"tpot", stats_of(tpot)}, {"itl", stats_of_runs(runs)}, {"e2el", stats_of(e2el)}};
}

double token_time_rms(const Recorder& rec, const std::vector<MeasuredRequest>& measured, double t0) {
  const auto& tokens = rec.token_log();
  double ss = 0;
  std::size_t n = 0;
  for (std::size_t id = 0; id < measured.size(); ++id) {
    const auto& meas = measured[id].token_times_s;
    const std::size_t have = id < tokens.size() ? tokens[id].times.size() : 0;
    for (std::size_t k = 0; k < meas.size(); ++k) {
      // A token the simulation never produced (a run cut short) counts as a large error.
      const double d = k < have ? ns_to_s(tokens[id].times[k]) - (meas[k] - t0) : 1.0;
      ss += d * d;
      ++n;
    }
  }
  return n ? std::sqrt(ss / double(n)) : 0.0;
}

OverheadFit fit_overhead(const Recorder& rec, const std::vector<MeasuredRequest>& measured, const OverheadFit& previous,
                         double group_window_s) {
  const auto& steps = rec.step_log();
  const auto& tokens = rec.token_log();
  // One row per measured inter-token gap whose two tokens the simulation emitted in back-to-back steps of one
  // replica: the gap is that step's duration, its GPU part simulated, the rest overhead.
  // A real engine emits the tokens of one step together: group measured token times within the window, and count
  // each group. A gap is used only where the simulated steps emitted as many tokens as the measured groups --
  // where the replayed schedule agrees with the measured one.
  std::vector<double> all;
  for (const auto& m : measured) all.insert(all.end(), m.token_times_s.begin(), m.token_times_s.end());
  std::sort(all.begin(), all.end());
  std::vector<std::pair<double, std::int64_t>> groups;  // (first time, size)
  for (const double t : all) {
    if (groups.empty() || t - groups.back().first > group_window_s) {
      groups.emplace_back(t, 1);
    } else {
      ++groups.back().second;
    }
  }
  auto group_size = [&](double t) {
    auto it = std::upper_bound(groups.begin(), groups.end(), t,
                               [](double v, const std::pair<double, std::int64_t>& g) { return v < g.first; });
    return it == groups.begin() ? std::int64_t{0} : std::prev(it)->second;
  };
  std::vector<std::int64_t> emitted(steps.size(), 0);
  for (const auto& t : tokens) {
    for (const auto s : t.steps) ++emitted[static_cast<std::size_t>(s)];
  }
  struct Row {
    double y, seqs, tokens;
  };
  std::vector<Row> rows;
  std::size_t back_to_back = 0;  // gaps between tokens of back-to-back simulated steps, matched or not
  for (std::size_t id = 0; id < tokens.size() && id < measured.size(); ++id) {
    const auto& sim = tokens[id];
    const auto& meas = measured[id].token_times_s;
    for (std::size_t k = 1; k < sim.steps.size() && k < meas.size(); ++k) {
      const auto sp = static_cast<std::size_t>(sim.steps[k - 1]), sk = static_cast<std::size_t>(sim.steps[k]);
      const auto& prev = steps[sp];
      const auto& st = steps[sk];
      if (prev.replica != st.replica || prev.end != st.start) continue;
      ++back_to_back;
      if (group_size(meas[k]) != emitted[sk] || group_size(meas[k - 1]) != emitted[sp]) continue;
      const double gpu = ns_to_s(st.end - st.start - st.overhead);
      rows.push_back({meas[k] - meas[k - 1] - gpu, double(st.seqs), double(st.tokens)});
    }
  }
  if (rows.size() < 3) {
    throw InputError("calibrate trace: " + std::to_string(rows.size()) + " of " + std::to_string(back_to_back) +
                     " gaps between back-to-back steps matched the measured token groups; at least 3 are needed (the "
                     "run is too short, or --group-window does not fit the timestamps' jitter)");
  }
  // Two stages, each a robust least-squares line (rows beyond 3 scaled MADs dropped, refitted):
  //  1. decode-only steps (tokens == seqs):  y = per_step + (per_request + per_token) * seqs
  //  2. steps with prefill tokens:           y - stage 1 = per_token * (tokens - seqs)
  // Without enough steps of one kind, the previous terms stand for what it would have fitted.
  auto robust_line = [](const std::vector<std::pair<double, double>>& xy, bool intercept, double& a, double& b) {
    std::vector<char> keep(xy.size(), 1);
    for (int round = 0; round < 6; ++round) {
      double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
      for (std::size_t i = 0; i < xy.size(); ++i) {
        if (!keep[i]) continue;
        const auto [x, y] = xy[i];
        sw += 1;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
      }
      if (intercept) {
        const double den = sw * sxx - sx * sx;
        b = den != 0 ? (sw * sxy - sx * sy) / den : 0.0;
        a = (sy - b * sx) / sw;
      } else {
        a = 0;
        b = sxx != 0 ? sxy / sxx : 0.0;
      }
      std::vector<double> res;
      for (std::size_t i = 0; i < xy.size(); ++i) {
        if (keep[i]) res.push_back(std::abs(xy[i].second - a - b * xy[i].first));
      }
      std::nth_element(res.begin(), res.begin() + static_cast<std::ptrdiff_t>(res.size() / 2), res.end());
      const double limit = std::max(3.0 * 1.4826 * res[res.size() / 2], 1e-9);
      std::size_t kept = 0;
      for (std::size_t i = 0; i < xy.size(); ++i) {
        keep[i] = std::abs(xy[i].second - a - b * xy[i].first) <= limit;
        kept += keep[i];
      }
      if (kept < 3) break;
    }
  };
  std::vector<std::pair<double, double>> decode, prefill;
  for (const Row& r : rows) (r.tokens == r.seqs ? decode : prefill).emplace_back(r.seqs, r.y);
  OverheadFit f = previous;
  f.rows = rows.size();
  f.candidates = back_to_back;
  double a = previous.per_step_s, slope = previous.per_request_s + previous.per_token_s;
  if (decode.size() >= 3) robust_line(decode, true, a, slope);
  f.per_step_s = a;
  if (prefill.size() >= 3) {
    std::vector<std::pair<double, double>> extra;
    for (const Row& r : rows) {
      if (r.tokens != r.seqs) extra.emplace_back(r.tokens - r.seqs, r.y - a - slope * r.seqs);
    }
    double zero = 0, c = previous.per_token_s;
    robust_line(extra, false, zero, c);
    f.per_token_s = c;
  }
  f.per_request_s = slope - f.per_token_s;
  double ss = 0;
  for (const Row& r : rows) {
    const double e = r.y - (f.per_step_s + f.per_request_s * r.seqs + f.per_token_s * r.tokens);
    ss += e * e;
  }
  f.rms_residual_s = std::sqrt(ss / double(rows.size()));
  return f;
}

}  // namespace servesim
