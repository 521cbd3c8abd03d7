// The engine-overhead fit of `servesim calibrate trace`: the five EngineOverhead terms (models/cost/step_model.h)
// from regression rows (step_match.h), robust, non-negative, with bootstrap intervals, and honest about what the
// rows cannot tell apart.
//
//  - Loss: Huber's, on residuals relative to the predicted step time (the engine's variability is multiplicative,
//    sim/engine/step_jitter.h), minimised by iteratively reweighted least squares. Tuning constant 1.345 (95 %
//    efficiency under normal errors; Holland & Welsch 1977), scale 1.4826 x the median absolute deviation of the
//    relative residuals (the normal-consistent MAD). Stalls get small weights instead of dragging the terms.
//    FitOptions::huber = false gives relative least squares instead, for the mean model once the stalls the
//    robust fit located are set aside (the Huber fit of skewed jitter sits between its median and its mean).
//  - Slow phases. A real engine's step time drifts between phases of tens of steps (the measured online run of
//    calibrate/data/runs/h200-transformers-cb: about 75 ms and about 120 ms at the same batch), and a run's
//    busiest stretch may fall in a slow phase by chance; a fit on the levels then credits the phase to the
//    per-sequence terms, which extrapolate it to every larger batch (the issue that motivated this: 1.6-2.4 ms
//    per sequence on that run). So, when a run has kMinDifferencePairs pairs of successive one-step rows, the
//    errors are treated as an AR(1) process, as Cochrane and Orcutt (1949) do for regressions on time series:
//    rho = the lag-1 correlation of successive steps' relative residuals, and the terms are fitted (Huber,
//    absolute residuals) to the quasi-differences y_t - rho y_{t-1} = (x_t - rho x_{t-1}) . terms, rho and
//    the fit iterated until rho settles; the first row of each chain of successive steps (an idle start, a
//    multi-step row) enters as a level scaled by sqrt(1 - rho^2) (Prais and Winsten 1954). A phase that spans both steps cancels as rho -> 1; with independent
//    jitter (rho ~ 0) this is the levels fit. Quasi-differencing keeps (1 - rho) of every phase's level shift,
//    which still biases the per-unit terms when the phases happen to line up with the load; for errors this
//    persistent (rho >= kRandomWalkRho) the usual remedy for near-unit-root errors applies: rho = 1, first
//    differences (on the measured online run rho comes out 0.86 and the first differences give a per-sequence
//    cost whose interval includes 0, where the quasi-differences at 0.86 still give 1.65 ms). per_step is then the mean of y - x . slopes per step over all
//    rows (least squares with the slopes fixed), so the model remains the rows' mean; the phases themselves are
//    the jitter's persistence (jitter_fit.h). The bootstrap resamples the transformed rows, rho fixed.
//  - Every coefficient >= 0: each reweighted step solves the non-negative least-squares problem exactly, by
//    trying every support of the (at most five) columns and keeping the best feasible one (Eigen, pivoted QR).
//  - Intervals: the 2.5th and 97.5th percentiles of the coefficients refitted to `resamples` bootstrap resamples
//    of the rows (a fixed-seed Boost.Random stream: the same rows give the same bytes).
//  - Identification, in two stages; a term that fails is set to 0 and the others refitted without it:
//      1. a column that is zero in every row, or a linear combination of the columns before it in
//         EngineOverhead's order (e.g. sampled = decodes + prefill sequences whenever every prompt ends in the step
//         that started it) up to kNearlyCollinear of its norm, is "not identified" (with the rows weighted as the
//         fit weighs them): its coefficient would be set by the few rows that tell the columns apart;
//      2. a term whose 95 % interval reaches 0 is "not identified" when the interval's upper end -- or the
//         negative value the rows ask for when the bound holds the term at 0 (another term took more than its
//         share) -- times the term's count in a busy row (the 99th percentile over rows) would change the mean
//         measured step by 1 % or more: the rows cannot tell a material value from none. Otherwise it is
//         "negligible". One term is dropped at a time (the most material), then refitted and resampled, until
//         every remaining interval excludes 0.
// `calibrate trace` uses robust_fit() (Huber, no intervals) to locate the stalls, then fit_overhead() with least
// squares on the other rows for the mean model it writes.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/metrics/step_match.h"

namespace servesim {

// Residual lag-1 correlation from which the errors are taken as a random walk (first differences).
inline constexpr double kRandomWalkRho = 0.8;
// Fewer successive pairs of one-step rows: the per-unit terms come from the levels.
inline constexpr std::size_t kMinDifferencePairs = 30;
// Huber's tuning constant (relative-residual units of the robust scale) and the normal-consistent MAD factor.
inline constexpr double kHuberC = 1.345;
inline constexpr double kMadToSigma = 1.4826;
// Stage 2's materiality threshold: the share of the mean measured step an unidentified term may hide.
inline constexpr double kMaterialShare = 0.01;
// Stage 1: the share of a column's norm that the earlier columns do not explain, below which it is collinear with
// them (rounding) or nearly so (0.03: an uncentred R^2 above 0.999, a variance inflation factor above ~1000, where
// the usual warning level is 10).
inline constexpr double kCollinear = 1e-9;
inline constexpr double kNearlyCollinear = 0.03;

struct TermEstimate {
  enum class Status { identified, negligible, not_identified };
  double value_s = 0;  // the fitted term (0 unless identified), seconds per unit
  double low_s = 0;    // 95 % bootstrap interval (of the last fit that still had the term)
  double high_s = 0;
  Status status = Status::identified;
  std::string why;     // for a term set to 0
};

struct OverheadFit {
  std::array<TermEstimate, kTerms> terms;
  std::size_t rows = 0;
  int resamples = 0;
  double relative_scale = 0;  // robust scale of the relative residuals of the final fit
  bool by_differences = false;      // the per-unit terms came from successive steps' differences
  std::size_t difference_pairs = 0;  // successive one-step rows available
  double rho = 0;                    // lag-1 correlation of successive steps' relative residuals (quasi-differences)
  [[nodiscard]] TermVector values() const;
};

struct FitOptions {
  // The per-unit terms (decodes, prefill sequences, prefill tokens, sampled tokens) from the differences of
  // successive steps, per_step from the rows' mean level (see fit_overhead). Off: every term from the levels.
  bool differences = true;
  // Huber's loss (robust: the first fit, which locates the stalls), or least squares (the mean model, refitted
  // without the stalls: the simulator multiplies it by a jitter factor of mean 1, so it must be the mean).
  bool huber = true;
  int resamples = 200;
  std::uint64_t seed = 1;  // of the bootstrap stream "calibrate_trace/bootstrap"
};

// Columns stage 1 keeps; `why` (optional) says why the others go.
[[nodiscard]] std::array<bool, kTerms> identifiable_columns(const std::vector<StepRow>& rows,
                                                            std::array<std::string, kTerms>* why = nullptr);

// One robust non-negative fit over the `active` columns (the others 0). `scale`: the final robust scale.
[[nodiscard]] TermVector robust_fit(const std::vector<StepRow>& rows, const std::array<bool, kTerms>& active,
                                    double* scale = nullptr);

// The procedure above (intervals and identification) with FitOptions' loss. Throws InputError when there are too
// few rows for the columns.
[[nodiscard]] OverheadFit fit_overhead(const std::vector<StepRow>& rows, const FitOptions& opts = {});

[[nodiscard]] const char* status_name(TermEstimate::Status s);

}  // namespace servesim
