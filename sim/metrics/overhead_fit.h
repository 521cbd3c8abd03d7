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
  [[nodiscard]] TermVector values() const;
};

struct FitOptions {
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
