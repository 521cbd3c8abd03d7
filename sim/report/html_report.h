// servesim report: one self-contained HTML file for a run directory (sim/io/run_dir.h). No scripts, no external
// resources: the charts are inline SVG. The same run directory and explanation give the same bytes.
//
// Contents, top to bottom (a fixed single-column page 1000 px wide):
//   summary        latency table (mean/P50/P90/P99/std of TTFT, TPOT, ITL, E2E from summary.json), the run's
//                  figures (throughput, preemptions, queueing, KV usage, time shares) and its configuration
//   ttft-cdf, tpot-cdf, e2e-cdf
//                  empirical CDFs over the completed requests of requests.csv, with P50/P99 markers. requests.csv
//                  holds no per-token times: the per-request mean ITL, (E2E - TTFT) / (output tokens - 1), is the
//                  request's TPOT, so the TPOT CDF is that of the per-request mean ITL (the report says so)
//   ttft-breakdown, tpot-breakdown, e2e-breakdown
//                  stacked bars: the mean of each breakdown component over the P50 cohort and over the P99 cohort
//                  of the metric (latency_cohorts); TPOT's components are per output token after the first
//   pools, kv-transfer-cdf, decode-wait-cdf
//                  disaggregated runs only (summary.json "servesim"."disaggregation"; a report of any other run is
//                  byte for byte what it was before pools existed): a table of the pools (name, role, replicas,
//                  GPU, TP / PP, GPUs, busy fraction) beside the KV transfer and decode wait mean / P50 / P99 / max,
//                  then the CDFs of kv_transfer_ms and decode_wait_ms over the handed-off requests
//                  (report_charts.h disaggregation_charts)
//   kv-usage, queue-length
//                  from timeseries.csv: KV-cache usage (%) and waiting requests per replica over time (more than
//                  kMaxReplicaLines replicas: their mean and max, and the total waiting). Without timeseries.csv a
//                  note (id timeseries-note) says to run with --timeseries RUN_DIR/timeseries.csv
//   explain        the explanation text, preformatted (after every chart; its height follows the text)
//
// Layout contract for screenshot checks (tests/report/check_report.py): every region above except `explain` is an
// element positioned absolutely on the page, carrying
//   data-rect="LEFT,TOP,WIDTH,HEIGHT"   its box in CSS pixels from the page's top-left corner,
//   data-plot="LEFT,TOP,WIDTH,HEIGHT"   (charts) the plot area, page pixels, where only data marks and grid lie,
//   data-colors="#rrggbb,..."           (charts) the colours of the data marks drawn in the plot area, each at
//                                       least kMinMarkPx (sim/report/svg_chart.h) long,
// and <body data-height="H">: the page's height down to the end of the last region.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "sim/io/run_dir.h"

namespace servesim {

// The explanation shown in the report: `servesim explain`'s text for `run` (sim/metrics/explain.h explain_run).
[[nodiscard]] std::string explain_text_for_report(const RunDir& run);

// The report of `run` as one HTML document. `explanation` is shown verbatim (escaped) in a <pre> block.
[[nodiscard]] std::string render_html_report(const RunDir& run, const std::string& explanation);

namespace report {

inline constexpr int kPageWidth = 1000;
inline constexpr std::size_t kMaxReplicaLines = 8;

// Cohorts of a latency metric, as indices into `values`. Ranking: ascending value, ties by index. With n values,
// the P50 cohort is ranks [floor(0.45 n), ceil(0.55 n)) (the middle ~10 %, at least one request) and the P99
// cohort ranks [floor(0.99 n), n) (the slowest ~1 %, at least one request). Both are empty when n = 0.
struct Cohorts {
  std::vector<std::size_t> p50, p99;
};
[[nodiscard]] Cohorts latency_cohorts(const std::vector<double>& values);

}  // namespace report
}  // namespace servesim
