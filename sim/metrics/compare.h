// Measured vs predicted latency statistics (TTFT, TPOT, ITL, E2EL), for `servesim validate` and the in-sample
// errors of `servesim calibrate trace` (whose fit lives in step_groups.h, step_match.h, overhead_fit.h and
// jitter_fit.h).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "sim/io/measured.h"
#include "sim/metrics/recorder.h"
#include "sim/metrics/summary.h"

namespace servesim {

using MetricStats = std::map<std::string, Stats>;  // "ttft", "tpot", "itl", "e2el" -> stats in ms

[[nodiscard]] MetricStats stats_of_measured(const std::vector<MeasuredRequest>& reqs);
[[nodiscard]] MetricStats stats_of_run(const Recorder& rec);

}  // namespace servesim
