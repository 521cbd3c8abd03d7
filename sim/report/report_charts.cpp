#include "sim/report/report_charts.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include "sim/report/html_report.h"

namespace servesim::report {
namespace {

struct Component {
  const char* name;
  double RequestRow::*field;
};

// Breakdown components in stacking order; component k is drawn in palette_color(k) in every chart.
// TTFT = the first five; E2E = all ten (requests.csv's breakdown identities).
constexpr Component kComponents[] = {
    {"front end", &RequestRow::front_end_ms},
    {"queue", &RequestRow::queue_ms},
    {"prefill", &RequestRow::prefill_ms},
    {"prefill stall", &RequestRow::prefill_stall_ms},
    {"prefill preempted", &RequestRow::prefill_preempted_ms},
    {"decode", &RequestRow::decode_ms},
    {"decode stall", &RequestRow::decode_stall_ms},
    {"decode preempted", &RequestRow::decode_preempted_ms},
    {"KV transfer", &RequestRow::kv_transfer_ms},
    {"decode wait", &RequestRow::decode_wait_ms},
};
constexpr std::size_t kTtftComponents = 5;
constexpr std::size_t kAllComponents = std::size(kComponents);

const nlohmann::json* number_at(const nlohmann::json& summary, const std::string& key) {
  const auto it = summary.find(key);
  return it != summary.end() && it->is_number() ? &*it : nullptr;
}

// P50 and P99 markers from summary.json's `median_<key>_ms` and `p99_<key>_ms`, when present.
std::vector<Marker> percentile_markers(const nlohmann::json& summary, const std::string& key) {
  std::vector<Marker> m;
  for (const auto& [prefix, label] : {std::pair{"median_", "P50"}, std::pair{"p99_", "P99"}}) {
    if (const auto* v = number_at(summary, prefix + key + "_ms")) {
      const double x = v->get<double>();
      m.push_back(Marker{x, std::string(label) + " " + format_number(x, x < 10 ? 2 : 1) + " ms"});
    }
  }
  return m;
}

bool has_tpot(const RequestRow& r) { return r.output_tokens >= 2; }

// The rows decoded by a decode pool's replica (all rows without "servesim"."config"."pools").
std::vector<const RequestRow*> handed_off(const RunDir& run) {
  std::set<std::int32_t> decode;
  bool listed = false;
  const auto s = run.summary.find("servesim");
  if (s != run.summary.end() && s->is_object() && s->contains("config") && (*s)["config"].is_object()) {
    const auto pools = (*s)["config"].find("pools");
    if (pools != (*s)["config"].end() && pools->is_array()) {
      listed = true;
      std::int32_t next = 0;
      for (const auto& p : *pools) {
        const auto n = p.is_object() && p.contains("num_replicas") && p["num_replicas"].is_number_integer()
                           ? p["num_replicas"].get<std::int32_t>()
                           : 1;
        const bool is_decode = p.is_object() && p.contains("role") && p["role"] == "decode";
        for (std::int32_t i = 0; i < n && next < (1 << 20); ++i, ++next) {
          if (is_decode) decode.insert(next);
        }
      }
    }
  }
  std::vector<const RequestRow*> out;
  for (const auto& r : run.requests) {
    if (!listed || decode.count(r.replica) > 0) out.push_back(&r);
  }
  return out;
}

// P50 and P99 markers from summary.json "servesim"."disaggregation".<key>.p50 / .p99, when present.
std::vector<Marker> disaggregation_markers(const nlohmann::json& summary, const char* key) {
  std::vector<Marker> m;
  const auto s = summary.find("servesim");
  if (s == summary.end() || !s->is_object() || !s->contains("disaggregation")) return m;
  const auto& d = (*s)["disaggregation"];
  if (!d.is_object() || !d.contains(key) || !d[key].is_object()) return m;
  for (const auto& [stat, label] : {std::pair{"p50", "P50"}, std::pair{"p99", "P99"}}) {
    if (const auto* v = number_at(d[key], stat)) {
      const double x = v->get<double>();
      m.push_back(Marker{x, std::string(label) + " " + format_number(x, x < 10 ? 2 : 1) + " ms"});
    }
  }
  return m;
}

SvgChart breakdown(const std::string& id, const std::string& title, const std::string& axis, int width,
                   const std::vector<const RequestRow*>& rows, double RequestRow::*metric, std::size_t first,
                   std::size_t last, bool per_token) {
  std::vector<double> values;
  values.reserve(rows.size());
  for (const auto* r : rows) values.push_back(r->*metric);
  const Cohorts cohorts = latency_cohorts(values);
  StackedBarSpec spec;
  spec.id = id;
  spec.title = title;
  spec.width = width;
  spec.height = last - first > 6 ? 200 : 180;
  spec.unit = per_token ? "ms/token" : "ms";
  spec.axis_label = axis;
  for (std::size_t k = first; k < last; ++k) spec.components.emplace_back(kComponents[k].name, palette_color(k));
  for (const auto& [label, idx] : {std::pair{"P50 cohort", &cohorts.p50}, std::pair{"P99 cohort", &cohorts.p99}}) {
    if (idx->empty()) continue;
    Bar bar{std::string(label) + " (n=" + std::to_string(idx->size()) + ")", std::vector<double>(last - first, 0.0)};
    for (const std::size_t i : *idx) {
      const RequestRow& r = *rows[i];
      const double scale = per_token ? 1.0 / static_cast<double>(r.output_tokens - 1) : 1.0;
      for (std::size_t k = first; k < last; ++k) bar.values[k - first] += r.*(kComponents[k].field) * scale;
    }
    for (double& v : bar.values) v /= static_cast<double>(idx->size());
    spec.bars.push_back(std::move(bar));
  }
  return stacked_bar_chart(spec);
}

// A CDF line chart of `values` (one series in palette colour `color`, none when empty), from 0 to 1.
SvgChart cdf_chart(const char* id, const char* title, const char* x_label, const char* y_label,
                   std::vector<double> values, std::size_t color, std::vector<Marker> markers, int width, int height) {
  LineChartSpec spec;
  spec.id = id;
  spec.title = title;
  spec.width = width;
  spec.height = height;
  spec.x_label = x_label;
  spec.y_label = y_label;
  spec.y_max = 1;
  if (!values.empty()) spec.series.push_back(Series{"", palette_color(color), cdf_points(std::move(values))});
  spec.markers = std::move(markers);
  return line_chart(spec);
}

}  // namespace

std::vector<SvgChart> cdf_charts(const RunDir& run, int width, int height) {
  std::vector<double> ttft, tpot, e2e;
  for (const auto& r : run.requests) {
    ttft.push_back(r.ttft_ms);
    e2e.push_back(r.e2el_ms);
    if (has_tpot(r)) tpot.push_back(r.tpot_ms);
  }
  const auto chart = [&](const char* id, const char* title, const char* x_label, std::vector<double> v,
                         const char* key) {
    return cdf_chart(id, title, x_label, "fraction of requests", std::move(v), 0,
                     percentile_markers(run.summary, key), width, height);
  };
  return {chart("ttft-cdf", "TTFT CDF", "TTFT (ms)", std::move(ttft), "ttft"),
          chart("tpot-cdf", "TPOT CDF (= per-request mean ITL)", "TPOT (ms)", std::move(tpot), "tpot"),
          chart("e2e-cdf", "E2E latency CDF", "E2E latency (ms)", std::move(e2e), "e2el")};
}

bool is_disaggregated(const RunDir& run) {
  const auto s = run.summary.find("servesim");
  return s != run.summary.end() && s->is_object() && s->contains("disaggregation") &&
         (*s)["disaggregation"].is_object();
}

std::vector<SvgChart> disaggregation_charts(const RunDir& run, int width, int height) {
  const std::vector<const RequestRow*> rows = handed_off(run);
  const auto chart = [&](const char* id, const char* title, const char* x_label, double RequestRow::*field,
                         const char* key, std::size_t color) {
    std::vector<double> v;
    v.reserve(rows.size());
    for (const auto* r : rows) v.push_back(r->*field);
    return cdf_chart(id, title, x_label, "fraction of handed-off requests", std::move(v), color,
                     disaggregation_markers(run.summary, key), width, height);
  };
  // The colours of the KV transfer and decode wait components in the breakdown charts (kComponents 8 and 9).
  return {chart("kv-transfer-cdf", "KV transfer CDF (prefill -> decode replica)", "KV transfer (ms)",
                &RequestRow::kv_transfer_ms, "kv_transfer_ms", 8),
          chart("decode-wait-cdf", "Decode wait CDF (for the decode replica's KV blocks)", "decode wait (ms)",
                &RequestRow::decode_wait_ms, "decode_wait_ms", 9)};
}

std::vector<SvgChart> breakdown_charts(const RunDir& run, int width) {
  std::vector<const RequestRow*> all, decoding;
  for (const auto& r : run.requests) {
    all.push_back(&r);
    if (has_tpot(r)) decoding.push_back(&r);
  }
  return {
      breakdown("ttft-breakdown", "TTFT breakdown: P50 vs P99 cohort by TTFT", "mean per request (ms)", width, all,
                &RequestRow::ttft_ms, 0, kTtftComponents, false),
      breakdown("tpot-breakdown", "TPOT breakdown: P50 vs P99 cohort by TPOT (per output token after the first)",
                "mean per request (ms per output token)", width, decoding, &RequestRow::tpot_ms, kTtftComponents,
                kAllComponents, true),
      breakdown("e2e-breakdown", "E2E breakdown: P50 vs P99 cohort by E2E latency", "mean per request (ms)", width,
                all, &RequestRow::e2el_ms, 0, kAllComponents, false),
  };
}

std::vector<SvgChart> timeseries_charts(const RunDir& run, int width, int height) {
  std::set<std::int32_t> replicas;
  for (const auto& t : run.timeseries) replicas.insert(t.replica);
  LineChartSpec kv, queue;
  kv.id = "kv-usage";
  kv.title = "KV-cache usage over time";
  kv.y_label = "KV blocks used (%)";
  kv.y_max = 100;
  queue.id = "queue-length";
  queue.title = "Queue length over time";
  queue.y_label = "waiting requests";
  for (auto* s : {&kv, &queue}) {
    s->width = width;
    s->height = height;
    s->x_label = "time (s)";
  }
  if (replicas.size() <= kMaxReplicaLines) {
    std::size_t i = 0;
    for (const std::int32_t rep : replicas) {
      Series k{"replica " + std::to_string(rep), palette_color(i), {}};
      Series q{k.name, k.color, {}};
      for (const auto& t : run.timeseries) {
        if (t.replica != rep) continue;
        k.points.emplace_back(t.time_s, t.kv_usage * 100);
        q.points.emplace_back(t.time_s, static_cast<double>(t.waiting));
      }
      kv.series.push_back(std::move(k));
      queue.series.push_back(std::move(q));
      ++i;
    }
  } else {
    struct Agg {
      double kv_sum = 0, kv_max = 0, waiting = 0;
      int n = 0;
    };
    std::map<double, Agg> by_time;
    for (const auto& t : run.timeseries) {
      Agg& a = by_time[t.time_s];
      a.kv_sum += t.kv_usage;
      a.kv_max = a.n == 0 ? t.kv_usage : std::max(a.kv_max, t.kv_usage);
      a.waiting += static_cast<double>(t.waiting);
      ++a.n;
    }
    Series mean{"mean of " + std::to_string(replicas.size()) + " replicas", palette_color(0), {}};
    Series max{"max over replicas", palette_color(3), {}};
    Series total{"total over " + std::to_string(replicas.size()) + " replicas", palette_color(0), {}};
    for (const auto& [time, a] : by_time) {
      mean.points.emplace_back(time, a.kv_sum / a.n * 100);
      max.points.emplace_back(time, a.kv_max * 100);
      total.points.emplace_back(time, a.waiting);
    }
    kv.series = {std::move(mean), std::move(max)};
    queue.series = {std::move(total)};
  }
  return {line_chart(kv), line_chart(queue)};
}

Cohorts latency_cohorts(const std::vector<double>& values) {
  const std::size_t n = values.size();
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  Cohorts c;
  if (n == 0) return c;
  // Integer arithmetic: floor(0.45 n), ceil(0.55 n), floor(0.99 n).
  const std::size_t p50_begin = n * 45 / 100;
  const std::size_t p50_end = std::max(p50_begin + 1, (n * 55 + 99) / 100);
  const std::size_t p99_begin = std::min(n * 99 / 100, n - 1);
  c.p50.assign(order.begin() + static_cast<std::ptrdiff_t>(p50_begin),
               order.begin() + static_cast<std::ptrdiff_t>(p50_end));
  c.p99.assign(order.begin() + static_cast<std::ptrdiff_t>(p99_begin), order.end());
  return c;
}

}  // namespace servesim::report
