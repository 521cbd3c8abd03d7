// The charts of the HTML report built from a run directory (sim/report/html_report.h lists them).
#pragma once
#include <vector>

#include "sim/io/run_dir.h"
#include "sim/report/svg_chart.h"

namespace servesim::report {

// Empirical CDFs of TTFT, TPOT (requests with at least 2 output tokens) and E2E latency, in ms; `width` x `height`
// px each. Ids ttft-cdf, tpot-cdf, e2e-cdf.
[[nodiscard]] std::vector<SvgChart> cdf_charts(const RunDir& run, int width, int height);

// Mean breakdown of the P50 cohort vs the P99 cohort (latency_cohorts), as stacked bars `width` px wide:
//   ttft-breakdown  cohorts by TTFT; front end, queue, prefill, prefill stall, prefill preempted (ms)
//   tpot-breakdown  cohorts by TPOT over requests with >= 2 output tokens; decode, decode stall, decode preempted,
//                   KV transfer, decode wait divided by (output tokens - 1) (ms per token; they sum to TPOT)
//   e2e-breakdown   cohorts by E2E; all ten components (ms; they sum to E2E)
[[nodiscard]] std::vector<SvgChart> breakdown_charts(const RunDir& run, int width);

// Whether `run` is disaggregated: its summary.json has "servesim"."disaggregation" (prefill and decode pools).
[[nodiscard]] bool is_disaggregated(const RunDir& run);

// Disaggregated runs: empirical CDFs of kv_transfer_ms and decode_wait_ms (ms) over the requests handed from a
// prefill to a decode replica - the rows of requests.csv whose replica (the decoding one) belongs to a decode pool
// (summary.json "servesim"."config"."pools", replicas numbered over the pools in order; every row when absent) -
// with P50 and P99 markers from "servesim"."disaggregation" kv_transfer_ms / decode_wait_ms; `width` x `height` px
// each. Ids kv-transfer-cdf, decode-wait-cdf.
[[nodiscard]] std::vector<SvgChart> disaggregation_charts(const RunDir& run, int width, int height);

// KV usage (%) and waiting requests over time from run.timeseries (ids kv-usage, queue-length); `width` x `height`
// px each. Requires run.has_timeseries.
[[nodiscard]] std::vector<SvgChart> timeseries_charts(const RunDir& run, int width, int height);

}  // namespace servesim::report
