// Measured vs predicted latency statistics (TTFT, TPOT, ITL, E2EL), for `servesim validate`.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "sim/metrics/measured.h"
#include "sim/metrics/recorder.h"
#include "sim/metrics/summary.h"

namespace servesim {

using MetricStats = std::map<std::string, Stats>;  // "ttft", "tpot", "itl", "e2el" -> stats in ms

[[nodiscard]] MetricStats stats_of_measured(const std::vector<MeasuredRequest>& reqs);
[[nodiscard]] MetricStats stats_of_run(const Recorder& rec);

// The per-step engine overhead fitted to a measured run: every measured inter-token gap whose two tokens the
// simulation emitted in back-to-back steps is that step's duration; minus the step's simulated GPU time it is
// overhead, regressed on the step's [1, sequences, tokens] by least squares (Eigen QR).
struct OverheadFit {
  double per_step_s = 0;
  double per_request_s = 0;
  double per_token_s = 0;
  std::size_t rows = 0;        // gaps in the regression
  double rms_residual_s = 0;
  std::size_t candidates = 0;  // gaps between back-to-back simulated steps; rows are those whose token groups matched
};
// RMS difference (seconds) between simulated and measured token times, both relative to the first arrival.
[[nodiscard]] double token_time_rms(const Recorder& rec, const std::vector<MeasuredRequest>& measured, double t0);

// `measured` in arrival order (the simulated request ids); `previous` = the terms the replay ran with.
// Measured token times closer than `group_window_s` to the first token of a group count as one step's tokens.
inline constexpr double kDefaultTokenGroupWindow = 20e-6;
[[nodiscard]] OverheadFit fit_overhead(const Recorder& rec, const std::vector<MeasuredRequest>& measured,
                                       const OverheadFit& previous, double group_window_s = kDefaultTokenGroupWindow);

}  // namespace servesim
