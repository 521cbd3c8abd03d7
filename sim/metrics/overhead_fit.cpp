#include "sim/metrics/overhead_fit.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Dense>
#include <boost/random/uniform_int_distribution.hpp>
#include <fmt/format.h>

#include "models/common/error.h"
#include "sim/core/random.h"
#include "sim/metrics/step_groups.h"
#include "sim/metrics/summary.h"

namespace servesim {
namespace {

using Mat5 = Eigen::Matrix<double, static_cast<int>(kTerms), static_cast<int>(kTerms)>;
using Vec5 = Eigen::Matrix<double, static_cast<int>(kTerms), 1>;
using Active = std::array<bool, kTerms>;

// The median; reorders `v`.
double median_of(std::vector<double>& v) {
  if (v.empty()) return 0.0;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2 == 1) return *mid;
  return 0.5 * (*mid + *std::max_element(v.begin(), mid));
}

// Least squares on the normal equations A z = b over the `active` columns that some row counts (the others 0),
// without the bound: what the rows ask for. Columns scaled to a unit diagonal for the solve.
TermVector unconstrained_fit(const Mat5& a, const Vec5& b, const Active& active) {
  std::vector<Eigen::Index> idx;
  for (std::size_t j = 0; j < kTerms; ++j) {
    const auto i = static_cast<Eigen::Index>(j);
    if (active[j] && a(i, i) > 0) idx.push_back(i);
  }
  TermVector out{};
  if (idx.empty()) return out;
  const Eigen::VectorXd d = a.diagonal()(idx).cwiseSqrt().cwiseInverse();
  const Eigen::MatrixXd sub = d.asDiagonal() * a(idx, idx) * d.asDiagonal();
  const Eigen::VectorXd z = sub.colPivHouseholderQr().solve(d.asDiagonal() * b(idx));
  for (std::size_t r = 0; r < idx.size(); ++r) {
    out[static_cast<std::size_t>(idx[r])] = z(static_cast<Eigen::Index>(r)) * d(static_cast<Eigen::Index>(r));
  }
  return out;
}

// Minimises z' A z - 2 z' b over z >= 0 on the active columns, exactly: the optimum is the unconstrained optimum
// on its own support, so every support is tried (2^5 - 1 small systems) and the best feasible one kept.
Vec5 nnls(const Mat5& a, const Vec5& b, const Active& active) {
  // Columns scaled to a unit diagonal, so that per-step counts and prefill tokens (thousands) compare.
  Vec5 d = Vec5::Zero();
  unsigned usable = 0;
  for (std::size_t j = 0; j < kTerms; ++j) {
    const auto i = static_cast<Eigen::Index>(j);
    if (active[j] && a(i, i) > 0) {
      d(i) = 1.0 / std::sqrt(a(i, i));
      usable |= 1U << j;
    }
  }
  const Mat5 as = d.asDiagonal() * a * d.asDiagonal();
  const Vec5 bs = d.asDiagonal() * b;
  Vec5 best = Vec5::Zero();
  double best_obj = 0.0;  // z = 0
  for (unsigned mask = 1; mask < (1U << kTerms); ++mask) {
    if ((mask & ~usable) != 0) continue;
    std::vector<Eigen::Index> idx;
    for (std::size_t j = 0; j < kTerms; ++j) {
      if (mask & (1U << j)) idx.push_back(static_cast<Eigen::Index>(j));
    }
    const auto m = static_cast<Eigen::Index>(idx.size());
    const Eigen::MatrixXd sub = as(idx, idx);
    const Eigen::VectorXd rhs = bs(idx);
    const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(sub);
    if (qr.rank() < m) continue;
    const Eigen::VectorXd z = qr.solve(rhs);
    if ((z.array() < 0).any()) continue;
    const double obj = z.dot(sub * z) - 2.0 * z.dot(rhs);
    if (obj < best_obj) {
      best_obj = obj;
      best.setZero();
      for (Eigen::Index r = 0; r < m; ++r) best(idx[static_cast<std::size_t>(r)]) = z(r);
    }
  }
  return d.asDiagonal() * best;
}

// Huber IRLS (or, without `huber`, relative least squares) over rows[i] for i in `pick` (a bootstrap resample) or
// all rows. `start`: coefficients to start from (a bootstrap starts at the full fit), else the measured durations
// stand for the predictions of the first, unweighted step. Stops when no coefficient moves by more than `tol`
// times the largest.
struct IrlsResult {
  TermVector beta{};           // the non-negative fit
  TermVector unconstrained{};  // least squares on the same columns and final weights, without the bound
  double scale = 0;            // robust scale of the relative residuals (when asked for)
};

IrlsResult irls(const std::vector<StepRow>& rows, const std::vector<std::size_t>* pick, const Active& active,
                bool huber, const TermVector* start, double tol, bool want_scale) {
  const std::size_t n = pick ? pick->size() : rows.size();
  auto row = [&](std::size_t i) -> const StepRow& { return rows[pick ? (*pick)[i] : i]; };
  std::vector<double> pred(n), rel(n), dev(n), w(n, 1.0);
  Vec5 beta = Vec5::Zero();
  auto predict = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      const StepRow& r = row(i);
      pred[i] = std::max(r.gpu_s + Eigen::Map<const Vec5>(r.x.data()).dot(beta), 1e-12);
    }
  };
  if (start) {
    for (std::size_t j = 0; j < kTerms; ++j) beta(static_cast<Eigen::Index>(j)) = active[j] ? (*start)[j] : 0.0;
    predict();
  } else {
    for (std::size_t i = 0; i < n; ++i) pred[i] = std::max(row(i).measured_s, 1e-12);
  }
  // The robust scale of the relative residuals (fills `rel`).
  auto relative_scale = [&](const std::vector<double>& p) {
    for (std::size_t i = 0; i < n; ++i) rel[i] = (row(i).measured_s - p[i]) / p[i];
    dev = rel;
    const double centre = median_of(dev);
    for (std::size_t i = 0; i < n; ++i) dev[i] = std::abs(rel[i] - centre);
    return std::max(kMadToSigma * median_of(dev), 1e-12);
  };
  double scale = 1;
  Mat5 a;
  Vec5 b;
  for (int iter = 0; iter < 100; ++iter) {
    // Weights: Huber's on the relative residual, over the prediction squared (relative least squares).
    if (huber && (iter > 0 || start)) {
      scale = relative_scale(pred);
      for (std::size_t i = 0; i < n; ++i) {
        const double u = std::abs(rel[i]) / scale;
        w[i] = u <= kHuberC ? 1.0 : kHuberC / u;
      }
    }
    a.setZero();
    b.setZero();
    for (std::size_t i = 0; i < n; ++i) {
      const StepRow& r = row(i);
      const double wi = w[i] / (pred[i] * pred[i]);
      const Vec5 x = Eigen::Map<const Vec5>(r.x.data());
      a.noalias() += wi * x * x.transpose();
      b.noalias() += (wi * r.y()) * x;
    }
    const Vec5 next = nnls(a, b, active);
    const double change = (next - beta).cwiseAbs().maxCoeff();
    beta = next;
    predict();
    if ((iter > 0 || start) && change <= 1e-15 + tol * beta.cwiseAbs().maxCoeff()) break;
  }
  IrlsResult out;
  if (want_scale) out.scale = relative_scale(pred);
  for (std::size_t j = 0; j < kTerms; ++j) out.beta[j] = beta(static_cast<Eigen::Index>(j));
  out.unconstrained = unconstrained_fit(a, b, active);
  return out;
}

constexpr std::size_t kNoPrevious = static_cast<std::size_t>(-1);

// For every row, (its predecessor, itself): the predecessor is the row before when both are one-step rows and
// this step began when that one's tokens were stamped; kNoPrevious otherwise (a chain's first row).
std::vector<std::pair<std::size_t, std::size_t>> successive_pairs(const std::vector<StepRow>& rows) {
  std::vector<std::pair<std::size_t, std::size_t>> items;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const StepRow& b = rows[i];
    const bool chained = i > 0 && rows[i - 1].steps == 1 && b.steps == 1 && !b.idle_start && b.start_s == rows[i - 1].end_s;
    items.emplace_back(chained ? i - 1 : kNoPrevious, i);
  }
  return items;
}

std::size_t count_pairs(const std::vector<std::pair<std::size_t, std::size_t>>& items) {
  return static_cast<std::size_t>(
      std::count_if(items.begin(), items.end(), [](const auto& p) { return p.first != kNoPrevious; }));
}

// Lag-1 correlation of successive steps' relative residuals under `terms` (Pearson), clamped to [0, 0.99].
double residual_correlation(const std::vector<StepRow>& rows,
                            const std::vector<std::pair<std::size_t, std::size_t>>& pairs, const TermVector& terms) {
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  double count = 0;
  for (const auto& [a, b] : pairs) {
    if (a == kNoPrevious) continue;
    ++count;
    const double pa = rows[a].gpu_s + rows[a].overhead(terms), pb = rows[b].gpu_s + rows[b].overhead(terms);
    if (!(pa > 0) || !(pb > 0)) continue;
    const double x = rows[a].measured_s / pa - 1.0, y = rows[b].measured_s / pb - 1.0;
    sx += x;
    sy += y;
    sxx += x * x;
    syy += y * y;
    sxy += x * y;
  }
  const double n = count;
  if (n < 2) return 0.0;
  const double vx = sxx / n - sx / n * sx / n, vy = syy / n - sy / n * sy / n;
  const double r = vx > 0 && vy > 0 ? (sxy / n - sx / n * sy / n) / std::sqrt(vx * vy) : 0.0;
  return std::clamp(r, 0.0, 0.99);
}

// The per-unit terms from quasi-differences of successive steps, Huber IRLS (absolute residuals, scale 1.4826 x MAD)
// with the same exact non-negative solve; then per_step = the mean over `level_rows` (all rows, or a bootstrap's
// pairs' later rows) of (y - x . slopes) per step, so that the model is the rows' mean. `pick` (a bootstrap
// resample of pair indices) or every pair.
IrlsResult difference_fit(const std::vector<StepRow>& rows, const std::vector<std::pair<std::size_t, std::size_t>>& pairs,
                          const std::vector<std::size_t>* pick, const Active& active, double rho) {
  const std::size_t n = pick ? pick->size() : pairs.size();
  std::vector<Vec5> dx(n);
  std::vector<double> dy(n), w(n, 1.0), res(n);
  // Prais-Winsten: a chain's first row enters as a level, scaled by sqrt(1 - rho^2) (0 for first differences).
  const double first = std::sqrt(std::max(0.0, 1.0 - rho * rho));
  for (std::size_t i = 0; i < n; ++i) {
    const auto [a, b] = pairs[pick ? (*pick)[i] : i];
    if (a == kNoPrevious) {
      dx[i] = first * Eigen::Map<const Vec5>(rows[b].x.data());
      dy[i] = first * rows[b].y();
    } else {
      dx[i] = Eigen::Map<const Vec5>(rows[b].x.data()) - rho * Eigen::Map<const Vec5>(rows[a].x.data());
      dy[i] = rows[b].y() - rho * rows[a].y();
    }
  }
  // The per-step column (1 - rho in every pair) stays in the regression, so that the slopes do not absorb it; its
  // value is then taken from the levels below.
  Active slopes = active;
  if (rho > 1.0 - 1e-9) slopes[0] = false;
  Vec5 beta = Vec5::Zero();
  Mat5 a;
  Vec5 b;
  for (int iter = 0; iter < 100; ++iter) {
    a.setZero();
    b.setZero();
    for (std::size_t i = 0; i < n; ++i) {
      a.noalias() += w[i] * dx[i] * dx[i].transpose();
      b.noalias() += (w[i] * dy[i]) * dx[i];
    }
    const Vec5 next = nnls(a, b, slopes);
    const double change = (next - beta).cwiseAbs().maxCoeff();
    beta = next;
    for (std::size_t i = 0; i < n; ++i) res[i] = std::abs(dy[i] - dx[i].dot(beta));
    std::vector<double> dev = res;
    const double scale = std::max(kMadToSigma * median_of(dev), 1e-12);
    for (std::size_t i = 0; i < n; ++i) w[i] = res[i] / scale <= kHuberC ? 1.0 : kHuberC * scale / res[i];
    if (iter > 0 && change <= 1e-15 + 1e-9 * beta.cwiseAbs().maxCoeff()) break;
  }
  IrlsResult out;
  // The unconstrained slopes on the same columns and weights (what the rows ask for without the bound).
  out.unconstrained = unconstrained_fit(a, b, slopes);
  // The level: per_step from the rows' mean.
  beta(0) = 0.0;
  double rest = 0, steps = 0;
  auto add_level = [&](const StepRow& r) {
    rest += r.y() - Eigen::Map<const Vec5>(r.x.data()).dot(beta);
    steps += double(r.steps);
  };
  if (pick) {
    for (const std::size_t p : *pick) add_level(rows[pairs[p].second]);
  } else {
    for (const StepRow& r : rows) add_level(r);
  }
  if (active[0] && steps > 0) {
    out.unconstrained[0] = rest / steps;
    beta(0) = std::max(0.0, rest / steps);
  }
  for (std::size_t j = 0; j < kTerms; ++j) out.beta[j] = beta(static_cast<Eigen::Index>(j));
  return out;
}

}  // namespace

TermVector OverheadFit::values() const {
  TermVector v{};
  for (std::size_t j = 0; j < kTerms; ++j) v[j] = terms[j].value_s;
  return v;
}

const char* status_name(TermEstimate::Status s) {
  switch (s) {
    case TermEstimate::Status::identified: return "identified";
    case TermEstimate::Status::negligible: return "negligible";
    case TermEstimate::Status::not_identified: return "not identified";
  }
  return "?";
}

std::array<bool, kTerms> identifiable_columns(const std::vector<StepRow>& rows, std::array<std::string, kTerms>* why) {
  Active keep{};
  const auto n = static_cast<Eigen::Index>(rows.size());
  // Rows scaled by 1 / measured duration, as the fit weighs them.
  Eigen::MatrixXd x(n, static_cast<Eigen::Index>(kTerms));
  for (Eigen::Index i = 0; i < n; ++i) {
    const StepRow& r = rows[static_cast<std::size_t>(i)];
    for (std::size_t j = 0; j < kTerms; ++j) x(i, static_cast<Eigen::Index>(j)) = r.x[j] / std::max(r.measured_s, 1e-12);
  }
  std::vector<Eigen::Index> kept;
  for (std::size_t j = 0; j < kTerms; ++j) {
    const auto col = static_cast<Eigen::Index>(j);
    const double norm = x.col(col).norm();
    std::string reason;
    if (!(norm > 0)) {
      reason = "no row has any of what it counts";
    } else if (!kept.empty()) {
      Eigen::MatrixXd k(n, static_cast<Eigen::Index>(kept.size()));
      for (std::size_t c = 0; c < kept.size(); ++c) k.col(static_cast<Eigen::Index>(c)) = x.col(kept[c]);
      const Eigen::VectorXd coef = k.colPivHouseholderQr().solve(x.col(col));
      const double rest = (x.col(col) - k * coef).norm() / norm;
      // The combination, e.g. "sampled tokens = decodes + prefill sequences", and the terms that absorb this one.
      static constexpr std::array<const char*, kTerms> kCounts = {"1", "decodes", "prefill sequences",
                                                                  "prefill tokens", "sampled tokens"};
      std::string combo, absorbers;
      for (std::size_t c = 0; c < kept.size(); ++c) {
        const double v = coef(static_cast<Eigen::Index>(c));
        if (std::abs(v) * x.col(kept[c]).norm() <= 1e-3 * norm) continue;  // a rounding-size share
        const auto kc = static_cast<std::size_t>(kept[c]);
        const bool unit = std::abs(std::abs(v) - 1.0) < 1e-3;
        const std::string term = kc == 0 ? fmt::format("{:.3g}", std::abs(v))
                                         : (unit ? "" : fmt::format("{:.3g} x ", std::abs(v))) + kCounts[kc];
        combo += (combo.empty() ? (v < 0 ? "-" : "") : (v < 0 ? " - " : " + ")) + term;
        absorbers += (absorbers.empty() ? "" : ", ") + std::string(kTermNames[kc]);
      }
      if (rest <= kCollinear) {
        reason = fmt::format("{} = {} in every row (absorbed by {})", kCounts[j], combo, absorbers);
      } else if (rest <= kNearlyCollinear) {
        reason = fmt::format("{} = {} in nearly every row (all but {:.2g} % of its norm: too few rows tell them "
                             "apart; absorbed by {})", kCounts[j], combo, 100 * rest, absorbers);
      }
    }
    if (reason.empty()) {
      keep[j] = true;
      kept.push_back(col);
    } else if (why) {
      (*why)[j] = reason;
    }
  }
  return keep;
}

TermVector robust_fit(const std::vector<StepRow>& rows, const std::array<bool, kTerms>& active, double* scale) {
  const IrlsResult r = irls(rows, nullptr, active, true, nullptr, 1e-9, scale != nullptr);
  if (scale) *scale = r.scale;
  return r.beta;
}

OverheadFit fit_overhead(const std::vector<StepRow>& rows, const FitOptions& opts) {
  OverheadFit fit;
  fit.rows = rows.size();
  fit.resamples = opts.resamples;
  std::array<std::string, kTerms> why;
  Active active = identifiable_columns(rows, &why);
  const auto n_active = static_cast<std::size_t>(std::count(active.begin(), active.end(), true));
  if (rows.size() < std::max<std::size_t>(n_active, 1) + 2) {
    throw InputError(fmt::format("calibrate trace: {} matched step gaps are too few to fit {} overhead terms",
                                 rows.size(), n_active));
  }
  for (std::size_t j = 0; j < kTerms; ++j) {
    if (!active[j]) fit.terms[j] = {0, 0, 0, TermEstimate::Status::not_identified, why[j]};
  }
  // Materiality: a term's upper end times its count in a busy row (the 99th percentile over rows), against the
  // mean measured step.
  double mean_measured = 0;
  for (const StepRow& r : rows) mean_measured += r.measured_s / double(rows.size());
  TermVector busy_x{};
  for (std::size_t j = 0; j < kTerms; ++j) {
    std::vector<double> col;
    for (const StepRow& r : rows) col.push_back(r.x[j]);
    std::sort(col.begin(), col.end());
    busy_x[j] = percentile(col, 99);
  }
  RandomEngine rng = make_stream(opts.seed, "calibrate_trace/bootstrap");
  const auto pairs = successive_pairs(rows);
  fit.difference_pairs = count_pairs(pairs);
  fit.by_differences = opts.differences && fit.difference_pairs >= kMinDifferencePairs;
  std::vector<std::size_t> pick(fit.by_differences ? pairs.size() : rows.size());
  for (;;) {
    IrlsResult full = irls(rows, nullptr, active, opts.huber, nullptr, 1e-9, true);
    if (fit.by_differences) {
      // Cochrane-Orcutt: the residuals' lag-1 correlation, the quasi-differenced fit, again until it settles.
      const double scale = full.scale;
      double rho = residual_correlation(rows, pairs, full.beta);
      for (int it = 0; it < 10; ++it) {
        full = difference_fit(rows, pairs, nullptr, active, rho);
        const double next = residual_correlation(rows, pairs, full.beta);
        const bool settled = std::abs(next - rho) < 1e-4;
        rho = next;
        if (settled) break;
      }
      // Persistent phases: first differences (see the header).
      if (rho >= kRandomWalkRho) rho = 1.0;
      full = difference_fit(rows, pairs, nullptr, active, rho);
      full.scale = scale;
      fit.rho = rho;
    }
    const TermVector& beta = full.beta;
    fit.relative_scale = full.scale;
    // The bootstrap: the same stream position for every round would repeat resamples across rounds, which is
    // fine (each round refits a different model); the stream simply continues. With differences the unit
    // resampled is a pair of successive steps.
    std::array<std::vector<double>, kTerms> samples;
    boost::random::uniform_int_distribution<std::size_t> draw(0, pick.size() - 1);
    for (int b = 0; b < opts.resamples; ++b) {
      for (auto& p : pick) p = draw(rng);
      const TermVector bb = fit.by_differences ? difference_fit(rows, pairs, &pick, active, fit.rho).beta
                                               : irls(rows, &pick, active, opts.huber, &beta, 1e-7, false).beta;
      for (std::size_t j = 0; j < kTerms; ++j) samples[j].push_back(bb[j]);
    }
    std::size_t drop = kTerms;
    double drop_effect = -1;
    for (std::size_t j = 0; j < kTerms; ++j) {
      if (!active[j]) continue;
      auto& s = samples[j];
      std::sort(s.begin(), s.end());
      TermEstimate& t = fit.terms[j];
      t.value_s = beta[j];
      t.low_s = s.empty() ? beta[j] : percentile(s, 2.5);
      t.high_s = s.empty() ? beta[j] : percentile(s, 97.5);
      t.status = TermEstimate::Status::identified;
      t.why.clear();
      // What the rows cannot rule out: the interval's upper end, or the negative value they ask for when the
      // bound holds the term at 0 (another term took more than its share).
      const double effect = std::max(t.high_s, -full.unconstrained[j]) * busy_x[j] / mean_measured;
      if (opts.resamples > 0 && !(t.low_s > 0) && effect > drop_effect) {
        drop = j;
        drop_effect = effect;
      }
    }
    if (drop == kTerms) break;
    TermEstimate& t = fit.terms[drop];
    const bool material = drop_effect >= kMaterialShare;
    t.status = material ? TermEstimate::Status::not_identified : TermEstimate::Status::negligible;
    const double asked = full.unconstrained[drop];
    t.why = asked < 0 && -asked > t.high_s
                ? fmt::format("held at 0 by the bound: without it the rows ask for {} (another term absorbs more "
                              "than its share); that would change a busy row's step by {:.2g} %",
                              format_duration(asked), drop_effect * 100)
                : fmt::format("its 95 % interval [{}, {}] includes 0; the upper end would add {:.2g} % to the mean "
                              "step in a busy row",
                              format_duration(t.low_s), format_duration(t.high_s), drop_effect * 100);
    t.value_s = 0;
    active[drop] = false;
    if (std::none_of(active.begin(), active.end(), [](bool a) { return a; })) break;
  }
  return fit;
}

}  // namespace servesim
