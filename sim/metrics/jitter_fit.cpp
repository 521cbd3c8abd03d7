#include "sim/metrics/jitter_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <boost/math/special_functions/erf.hpp>
#include <fmt/format.h>

#include "sim/metrics/summary.h"

namespace servesim {
namespace {

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
double normal_quantile(double u) { return -std::sqrt(2.0) * boost::math::erfc_inv(2.0 * u); }

// Kolmogorov-Smirnov distance between the sorted sample and a continuous CDF.
template <class Cdf>
double ks_distance(const std::vector<double>& sorted, Cdf cdf) {
  const double n = double(sorted.size());
  double d = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const double f = cdf(sorted[i]);
    d = std::max({d, std::abs(double(i + 1) / n - f), std::abs(double(i) / n - f)});
  }
  return d;
}

// The CDF the simulator samples from a quantile table: linear interpolation between equally spaced probabilities.
double table_cdf(const std::vector<double>& q, double x) {
  if (x < q.front()) return 0.0;  // right-continuous: P(X <= x), with a jump where quantiles repeat
  if (x >= q.back()) return 1.0;
  const double step = 1.0 / double(q.size() - 1);
  const auto it = std::upper_bound(q.begin(), q.end(), x);
  const auto i = static_cast<std::size_t>(it - q.begin()) - 1;
  const double span = q[i + 1] - q[i];
  return step * (double(i) + (span > 0 ? (x - q[i]) / span : 1.0));
}

}  // namespace

Stalls find_stalls(const std::vector<StepRow>& rows, const TermVector& terms) {
  Stalls out;
  out.stall.assign(rows.size(), false);
  out.cutoff_ratio = std::numeric_limits<double>::infinity();
  std::vector<double> one_step;
  for (const StepRow& r : rows) {
    if (r.steps == 1 && r.measured_s > 0) one_step.push_back(std::log(r.measured_s / (r.gpu_s + r.overhead(terms))));
  }
  if (one_step.size() < kMinJitterRows) return out;
  std::sort(one_step.begin(), one_step.end());
  const double q1 = percentile(one_step, 25), q3 = percentile(one_step, 75);
  out.cutoff_ratio = std::max(std::exp(q3 + kTukeyFarOut * (q3 - q1)), 1.0 + kMinStallExcess);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double pred = rows[i].gpu_s + rows[i].overhead(terms);
    out.stall[i] = rows[i].measured_s > out.cutoff_ratio * pred && rows[i].measured_s > pred;
    out.count += out.stall[i];
  }
  return out;
}

JitterFit fit_jitter(const std::vector<StepRow>& rows, const TermVector& terms, const Stalls& stalls) {
  JitterFit fit;
  fit.stall_cutoff = stalls.cutoff_ratio;
  std::vector<double> normal, stall_logs;
  std::vector<std::size_t> normal_rows;  // row index of each entry of `normal`
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const StepRow& r = rows[i];
    fit.steps += static_cast<std::size_t>(r.steps);
    const double pred = r.gpu_s + r.overhead(terms);
    if (stalls.stall[i]) {
      stall_logs.push_back(std::log(r.measured_s - pred));
    } else if (r.steps == 1 && r.measured_s > 0 && pred > 0) {
      normal.push_back(std::log(r.measured_s / pred));
      normal_rows.push_back(i);
    }
  }
  fit.rows = normal.size();
  if (fit.rows < kMinJitterRows) {
    fit.note = fmt::format("{} one-step rows (< {}): no jitter fitted", fit.rows, kMinJitterRows);
    return fit;
  }
  fit.stalls = stall_logs.size();
  if (!stall_logs.empty()) {
    const double n = double(stall_logs.size());
    const double mean = std::accumulate(stall_logs.begin(), stall_logs.end(), 0.0) / n;
    double ss = 0;
    for (const double v : stall_logs) ss += (v - mean) * (v - mean);
    fit.spec.stall_probability = n / double(fit.steps);
    fit.spec.stall_median = Seconds{std::exp(mean)};
    fit.spec.stall_sigma = std::min(stall_logs.size() > 1 ? std::sqrt(ss / (n - 1.0)) : 0.0, 3.0);
  }
  // Jitter of the rest: factors f = r / mean(r).
  double mean_ratio = 0;
  for (const double l : normal) mean_ratio += std::exp(l) / double(normal.size());
  fit.mean_ratio = mean_ratio;
  std::vector<double> log_f;
  for (const double l : normal) log_f.push_back(l - std::log(mean_ratio));
  std::sort(log_f.begin(), log_f.end());
  const double sigma = std::min((percentile(log_f, 75) - percentile(log_f, 25)) / kNormalIqr, 3.0);
  fit.lognormal_sigma = sigma;
  fit.ks_lognormal = ks_distance(log_f, [&](double l) {
    return sigma > 0 ? normal_cdf((l + 0.5 * sigma * sigma) / sigma) : (l >= 0 ? 1.0 : 0.0);
  });
  // The empirical table, normalised so that the distribution the simulator interpolates has mean 1 (trapezoids).
  std::vector<double> f;
  for (const double l : log_f) f.push_back(std::exp(l));
  for (std::size_t k = 0; k < kJitterQuantiles; ++k) {
    fit.table.push_back(percentile(f, 100.0 * double(k) / double(kJitterQuantiles - 1)));
  }
  double table_mean = 0;
  for (std::size_t k = 0; k + 1 < kJitterQuantiles; ++k) {
    table_mean += 0.5 * (fit.table[k] + fit.table[k + 1]) / double(kJitterQuantiles - 1);
  }
  for (double& q : fit.table) q /= table_mean;
  fit.ks_empirical = ks_distance(f, [&](double x) { return table_cdf(fit.table, x); });
  fit.ks_critical = kKsCritical1pct / std::sqrt(double(log_f.size()));
  const bool empirical = fit.ks_lognormal > fit.ks_critical && fit.ks_empirical < fit.ks_lognormal;
  if (empirical) {
    fit.spec.kind = StepJitterSpec::Kind::empirical;
    fit.spec.factors = fit.table;
    fit.note = fmt::format("empirical: the lognormal's KS distance {:.4f} exceeds the 1 % critical value {:.4f}; "
                           "the table's is {:.4f}", fit.ks_lognormal, fit.ks_critical, fit.ks_empirical);
  } else {
    fit.spec.kind = StepJitterSpec::Kind::lognormal;
    fit.spec.sigma = sigma;
    fit.note = fmt::format("lognormal: KS distance {:.4f} {} the 1 % critical value {:.4f} (table: {:.4f})",
                           fit.ks_lognormal, fit.ks_lognormal <= fit.ks_critical ? "within" : "above, but the table is no closer than",
                           fit.ks_critical, fit.ks_empirical);
  }
  // Persistence: the lag-1 correlation of the normal scores of successive steps (rows whose step began when the
  // previous row's ended). Rank-based scores, Phi^-1((rank + 0.5) / n), serve both forms of the marginal.
  std::vector<std::size_t> order(normal.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return normal[a] < normal[b]; });
  std::vector<double> score(normal.size());
  for (std::size_t k = 0; k < order.size(); ++k) {
    score[order[k]] = normal_quantile((double(k) + 0.5) / double(order.size()));
  }
  double sxy = 0, sxx = 0, syy = 0, sx = 0, sy = 0;
  for (std::size_t k = 1; k < normal_rows.size(); ++k) {
    const StepRow& prev = rows[normal_rows[k - 1]];
    const StepRow& cur = rows[normal_rows[k]];
    if (cur.idle_start || cur.start_s != prev.end_s) continue;
    const double x = score[k - 1], y = score[k];
    ++fit.correlation_pairs;
    sx += x;
    sy += y;
    sxx += x * x;
    syy += y * y;
    sxy += x * y;
  }
  if (fit.correlation_pairs >= kMinJitterRows) {
    const double n = double(fit.correlation_pairs);
    const double cov = sxy / n - sx / n * sy / n;
    const double vx = sxx / n - sx / n * sx / n, vy = syy / n - sy / n * sy / n;
    const double rho = vx > 0 && vy > 0 ? cov / std::sqrt(vx * vy) : 0.0;
    fit.spec.correlation = std::clamp(rho, 0.0, kMaxCorrelation);
    fit.note += fmt::format("; successive steps' scores correlate at {:.3f} over {} pairs", rho, fit.correlation_pairs);
  }
  return fit;
}

}  // namespace servesim
