// Step-time variability fitted from the residuals of the overhead fit (for `servesim calibrate trace`), in the
// form sim/engine/step_jitter.h simulates: step time = (gpu + overhead) x factor + stall.
//
// r = measured / predicted step time of a row under a fitted mean model.
//  - Stalls (find_stalls): rows whose ln r is above Tukey's far-out fence, Q3 + 3 IQR of the one-step rows' ln r
//    (Tukey 1977; about 4.7 sigma above the median for normal jitter, so a false stall is a 1-in-10^5 event),
//    and at least 1 + kMinStallExcess.
//    stall_probability = stall rows / steps in all rows; a stall's duration is measured - predicted;
//    stall_median and stall_sigma are the lognormal maximum-likelihood fit of the durations (exp of the mean
//    log, sample sd of the logs).
//  - Jitter: the ratios of the other one-step rows (rows that sum several steps average their jitter out),
//    divided by their mean (the factor has mean 1, so the mean model stays the mean; `mean_ratio` says how far
//    the model is from the rows' mean). Lognormal sigma = IQR(ln r) / 1.349 (1.349 = the IQR of a standard
//    normal: robust to what the fence left in). An empirical table of kJitterQuantiles quantiles (equally spaced
//    probabilities, renormalised to mean 1 as the simulator interpolates it) is chosen instead when the
//    lognormal fails a Kolmogorov-Smirnov test at the 1 % level (distance above 1.63 / sqrt(rows), Smirnov's
//    asymptotic critical value) and the table is closer.
//  - Persistence: a real engine's slow phases last several steps (the measured online run of
//    calibrate/data/runs/h200-transformers-cb alternates phases of about 75 and 120 ms steps, tens of steps
//    each). `correlation` is the lag-1 Pearson correlation of the rank-based normal scores of successive steps'
//    ratios (one-step rows whose step began when the previous row's ended), clamped to [0, kMaxCorrelation];
//    the simulator reproduces it with an AR(1) of the scores (sim/engine/step_jitter.h), which is what makes a
//    request's TPOT vary as much as measured (independent factors average out over its steps).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "sim/engine/step_jitter.h"
#include "sim/metrics/step_match.h"

namespace servesim {

inline constexpr double kTukeyFarOut = 3.0;       // IQRs above Q3 (Tukey's far-out fence)
inline constexpr double kNormalIqr = 1.349;       // IQR of N(0, 1)
inline constexpr double kKsCritical1pct = 1.63;   // Smirnov: sqrt(n) x KS distance exceeds this with prob. 1 %
inline constexpr std::size_t kJitterQuantiles = 21;  // empirical table: probabilities 0, 0.05, ..., 1
inline constexpr std::size_t kMinJitterRows = 20;    // fewer one-step rows (or successive pairs): no jitter
                                                     // (no correlation) is fitted
inline constexpr double kMaxCorrelation = 0.99;      // an AR(1) closer to 1 would never leave its first phase
// A stall adds at least this share of its step's predicted time, whatever the fence: without jitter (a replay of
// the simulator's own output) the fence shrinks to the timestamps' rounding, which is no stall.
inline constexpr double kMinStallExcess = 0.1;

struct JitterFit {
  StepJitterSpec spec;               // what FIT.toml gets
  double lognormal_sigma = 0;        // the lognormal candidate's sigma (reported whichever is chosen)
  std::vector<double> table;         // the empirical candidate's quantiles (mean 1)
  double ks_lognormal = 0;
  double ks_empirical = 0;
  double ks_critical = 0;
  double mean_ratio = 0;             // mean measured / predicted over the non-stall rows
  double stall_cutoff = 0;           // ratios above this are stalls
  std::size_t rows = 0;              // one-step rows behind the jitter
  std::size_t steps = 0;             // steps in all rows (the stall probability's denominator)
  std::size_t stalls = 0;
  std::size_t correlation_pairs = 0;  // successive one-step rows behind spec.correlation
  std::string note;                  // why the chosen form (or why none)
};

struct Stalls {
  double cutoff_ratio = 0;  // measured / predicted above this is a stall (infinity: too few one-step rows)
  std::vector<bool> stall;  // per row
  std::size_t count = 0;
};
[[nodiscard]] Stalls find_stalls(const std::vector<StepRow>& rows, const TermVector& terms);

// `stalls` from find_stalls on the same rows (with the model that located them).
[[nodiscard]] JitterFit fit_jitter(const std::vector<StepRow>& rows, const TermVector& terms, const Stalls& stalls);

}  // namespace servesim
