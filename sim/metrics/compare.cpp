#include "sim/metrics/compare.h"

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

}  // namespace servesim
