#include "sim/report/html_report.h"

#include "sim/metrics/explain.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "sim/report/report_charts.h"
#include "sim/report/svg_chart.h"

namespace servesim {
namespace {

using report::escape_xml;
using report::format_number;
using report::Rect;
using report::SvgChart;

constexpr int kMargin = 20;
constexpr int kContentWidth = report::kPageWidth - 2 * kMargin;  // 960
constexpr int kGap = 15;
constexpr int kSummaryHeight = 300;
constexpr int kCdfHeight = 280;
constexpr int kTimeseriesHeight = 260;
// The pools region of a disaggregated run: title, the tables' header row and the note below, then one row per pool
// (at least two rows' room: the transfer table beside it has two).
constexpr int kPoolsBaseHeight = 116;
constexpr int kPoolRowHeight = 21;

// Page CSS: fixed widths; every region is absolutely positioned (the layout contract of html_report.h).
constexpr const char* kStyle = R"(
body { margin: 0; background: #ffffff; color: #222222; font: 13px "DejaVu Sans", Verdana, sans-serif; }
.region, .chart { position: absolute; box-sizing: border-box; }
.chart { background: #ffffff; font: 11px "DejaVu Sans", Verdana, sans-serif; fill: #222222; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 15px; margin: 0 0 6px 0; }
.sub { color: #555555; font-size: 12px; }
.tables { display: flex; gap: 16px; }
table { border-collapse: collapse; table-layout: fixed; font-size: 12px; }
td, th { padding: 2px 6px; border-bottom: 1px solid #e6e6e6; white-space: nowrap; overflow: hidden;
         text-overflow: ellipsis; }
th { text-align: left; background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { border: 1px solid #cccccc; background: #fafafa; padding: 10px 14px; font-size: 13px; }
pre { white-space: pre-wrap; font: 12px "DejaVu Sans Mono", monospace; background: #fafafa;
      border: 1px solid #e6e6e6; padding: 10px; margin: 0; }
code { font: 12px "DejaVu Sans Mono", monospace; }
)";

std::string rect_attr(const Rect& r) {
  return fmt::format("{},{},{},{}", format_number(r.x, 0), format_number(r.y, 0), format_number(r.w, 0),
                     format_number(r.h, 0));
}

// The positioned <svg> of a chart at page (left, top).
std::string chart_html(const SvgChart& c, int left, int top) {
  const Rect box{double(left), double(top), double(c.width), double(c.height)};
  const Rect plot{left + c.plot.x, top + c.plot.y, c.plot.w, c.plot.h};
  std::string colors;
  for (const auto& col : c.colors) colors += (colors.empty() ? "" : ",") + col;
  return fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" style=\"left:{}px;top:{}px\" data-rect=\"{}\" data-plot=\"{}\" data-colors=\"{}\">"
      "{}</svg>\n",
      escape_xml(c.id), c.width, c.height, c.width, c.height, left, top, rect_attr(box), rect_attr(plot), colors,
      c.body);
}

std::string region_open(const char* id, const char* cls, int left, int top, int width, int height) {
  return fmt::format(
      "<div id=\"{}\" class=\"region{}{}\" style=\"left:{}px;top:{}px;width:{}px;height:{}px;overflow:hidden\" "
      "data-rect=\"{}\">",
      id, *cls ? " " : "", cls, left, top, width, height,
      rect_attr(Rect{double(left), double(top), double(width), double(height)}));
}

// A summary.json value as table text: numbers with `decimals` (times `scale`), strings, booleans, arrays joined.
std::string value_text(const nlohmann::json* v, int decimals = 2, double scale = 1, const char* suffix = "") {
  if (v == nullptr || v->is_null()) return "n/a";
  if (v->is_boolean()) return v->get<bool>() ? "yes" : "no";
  if (v->is_number_integer() && scale == 1) return escape_xml(v->dump()) + suffix;
  if (v->is_number()) return format_number(v->get<double>() * scale, decimals) + suffix;
  if (v->is_string()) return v->get<std::string>().empty() ? "none" : escape_xml(v->get<std::string>());
  if (v->is_array()) {
    std::string s;
    for (const auto& e : *v) s += (s.empty() ? "" : ", ") + value_text(&e, decimals);
    return s.empty() ? "none" : s;
  }
  return escape_xml(v->dump());
}

const nlohmann::json* at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object()) return nullptr;
    const auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

struct Row {
  const char* label;
  std::string value;
};

std::string kv_table(const char* title, int width, const std::vector<Row>& rows) {
  std::string out = fmt::format(
      "<table style=\"width:{}px\"><colgroup><col style=\"width:{}px\"><col></colgroup><tr><th colspan=\"2\">{}</th>"
      "</tr>",
      width, width * 58 / 100, title);
  for (const auto& r : rows) {
    fmt::format_to(std::back_inserter(out), "<tr><td>{}</td><td class=\"num\">{}</td></tr>", r.label, r.value);
  }
  return out + "</table>";
}

std::string summary_html(const RunDir& run, int top) {
  const nlohmann::json& s = run.summary;
  std::string out = region_open("summary", "", kMargin, top, kContentWidth, kSummaryHeight);
  out += "<h2>Summary</h2><div class=\"tables\"><div>";
  // Latency percentiles (vLLM bench serve's keys).
  out += "<table style=\"width:350px\"><tr><th>ms</th><th>mean</th><th>P50</th><th>P90</th><th>P99</th></tr>";
  for (const auto& [label, key] : {std::pair{"TTFT", "ttft"}, std::pair{"TPOT", "tpot"}, std::pair{"ITL", "itl"},
                                   std::pair{"E2E", "e2el"}}) {
    fmt::format_to(std::back_inserter(out), "<tr><td>{}</td>", label);
    for (const char* stat : {"mean_", "median_", "p90_", "p99_"}) {
      const std::string k = std::string(stat) + key + "_ms";
      const nlohmann::json* v = at(s, {k.c_str()});
      const int decimals = v != nullptr && v->is_number() && v->get<double>() >= 1000 ? 1 : 2;
      out += "<td class=\"num\">" + value_text(v, decimals) + "</td>";
    }
    out += "</tr>";
  }
  out += "</table><p class=\"sub\" style=\"width:350px\">ITL percentiles are over every token gap of the run "
         "(summary.json); requests.csv has no per-token times, so the charts below show the per-request mean ITL, "
         "which is the request's TPOT.</p></div>";

  const auto ss = [&](const char* key) { return at(s, {"servesim", key}); };
  out += kv_table(
      "Run", 285,
      {{"completed / requests", value_text(at(s, {"completed"})) + " / " + value_text(ss("num_requests"))},
       {"rejected", value_text(ss("rejected"))},
       {"duration (s)", value_text(at(s, {"duration"}), 3)},
       {"requests/s", value_text(at(s, {"request_throughput"}), 3)},
       {"output tokens/s", value_text(at(s, {"output_throughput"}), 1)},
       {"preemptions (requests)", value_text(ss("preemptions")) + " (" + value_text(ss("preempted_requests")) + ")"},
       {"queue mean / P99 (ms)", value_text(ss("mean_queue_ms")) + " / " + value_text(ss("p99_queue_ms"))},
       {"KV usage mean / peak", value_text(ss("mean_kv_usage"), 1, 100, " %") + " / " +
                                    value_text(ss("peak_kv_usage"), 1, 100, " %")},
       {"waiting mean / max", value_text(ss("mean_waiting")) + " / " + value_text(ss("max_waiting"))},
       {"busy fraction", value_text(ss("busy_fraction"), 3)},
       {"compute / memory time", value_text(at(s, {"servesim", "time_share", "compute"}), 1, 100, " %") + " / " +
                                      value_text(at(s, {"servesim", "time_share", "memory"}), 1, 100, " %")},
       {"comm. / overhead time",
        value_text(at(s, {"servesim", "time_share", "communication"}), 1, 100, " %") + " / " +
            value_text(at(s, {"servesim", "time_share", "overhead"}), 1, 100, " %")}});

  const auto cfg = [&](const char* key) { return value_text(at(s, {"servesim", "config", key})); };
  out += kv_table("Configuration", 285,
                  {{"model", cfg("model")},
                   {"GPU / topology", cfg("gpu") + " / " + cfg("topology")},
                   {"TP / PP / DP / EP", cfg("tensor_parallel_size") + " / " + cfg("pipeline_parallel_size") + " / " +
                                             cfg("data_parallel_size") + " / " + cfg("expert_parallel_size")},
                   {"replicas", cfg("num_replicas")},
                   {"max_num_seqs", cfg("max_num_seqs")},
                   {"max_num_batched_tokens", cfg("max_num_batched_tokens")},
                   {"chunked prefill", cfg("enable_chunked_prefill")},
                   {"block size / GPU blocks", cfg("block_size") + " / " + cfg("num_gpu_blocks")},
                   {"KV cache dtype", cfg("kv_cache_dtype")},
                   {"scenario", value_text(at(s, {"servesim", "run", "scenario"}))},
                   {"seed", value_text(at(s, {"servesim", "run", "seed"}))},
                   {"--set", value_text(at(s, {"servesim", "run", "sets"}))}});
  return out + "</div></div>\n";
}

// "0-7", "8-11, 13": GPU indices as ranges ("n/a" without a list).
std::string gpu_ranges(const nlohmann::json* v) {
  if (v == nullptr || !v->is_array() || v->empty()) return "n/a";
  std::vector<std::int64_t> g;
  for (const auto& e : *v) {
    if (e.is_number_integer()) g.push_back(e.get<std::int64_t>());
  }
  std::string s;
  for (std::size_t i = 0; i < g.size();) {
    std::size_t j = i;
    while (j + 1 < g.size() && g[j + 1] == g[j] + 1) ++j;
    s += (s.empty() ? "" : ", ") + (j == i ? std::to_string(g[i]) : fmt::format("{}-{}", g[i], g[j]));
    i = j + 1;
  }
  return s;
}

std::size_t pool_count(const RunDir& run) {
  const nlohmann::json* pools = at(run.summary, {"servesim", "config", "pools"});
  return pools != nullptr && pools->is_array() ? pools->size() : 0;
}

int pools_height(const RunDir& run) {
  return kPoolsBaseHeight + kPoolRowHeight * static_cast<int>(std::max<std::size_t>(pool_count(run), 2));
}

// Disaggregated runs: each pool (summary.json "servesim"."config"."pools", its busy fraction from
// "servesim"."disaggregation"."pools") and the KV transfer and decode wait statistics of the hand-offs.
std::string pools_html(const RunDir& run, int top) {
  const nlohmann::json& s = run.summary;
  std::string out = region_open("pools", "", kMargin, top, kContentWidth, pools_height(run));
  out += "<h2>Pools: prefill, decode, KV transfer</h2><div class=\"tables\">";
  out += "<table style=\"width:560px\"><colgroup><col style=\"width:96px\"><col style=\"width:78px\">"
         "<col style=\"width:72px\"><col style=\"width:90px\"><col style=\"width:62px\"><col>"
         "<col style=\"width:64px\"></colgroup><tr><th>pool</th><th>role</th><th>replicas</th><th>GPU</th>"
         "<th>TP / PP</th><th>GPUs</th><th>busy</th></tr>";
  const nlohmann::json* busy = at(s, {"servesim", "disaggregation", "pools"});
  for (std::size_t i = 0; i < pool_count(run); ++i) {
    const nlohmann::json& p = (*at(s, {"servesim", "config", "pools"}))[i];
    const auto f = [&](const char* key) { return value_text(at(p, {key})); };
    const nlohmann::json* b =
        busy != nullptr && busy->is_array() && i < busy->size() ? at((*busy)[i], {"busy_fraction"}) : nullptr;
    fmt::format_to(std::back_inserter(out),
                   "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{} / {}</td>"
                   "<td>{}</td><td class=\"num\">{}</td></tr>",
                   f("name"), f("role"), f("num_replicas"), f("gpu"), f("tensor_parallel_size"),
                   f("pipeline_parallel_size"), gpu_ranges(at(p, {"gpus"})), value_text(b, 1, 100, " %"));
  }
  out += "</table><table style=\"width:384px\"><colgroup><col style=\"width:90px\"></colgroup><tr><th>ms</th>"
         "<th>mean</th><th>P50</th><th>P99</th><th>max</th></tr>";
  for (const auto& [label, key] :
       {std::pair{"KV transfer", "kv_transfer_ms"}, std::pair{"decode wait", "decode_wait_ms"}}) {
    fmt::format_to(std::back_inserter(out), "<tr><td>{}</td>", label);
    for (const char* stat : {"mean", "p50", "p99", "max"}) {
      const nlohmann::json* v = at(s, {"servesim", "disaggregation", key, stat});
      const int decimals = v != nullptr && v->is_number() && v->get<double>() >= 1000 ? 1 : 2;
      out += "<td class=\"num\">" + value_text(v, decimals) + "</td>";
    }
    out += "</tr>";
  }
  const auto d = [&](const char* key) { return value_text(at(s, {"servesim", "disaggregation", key})); };
  out += "</table></div><p class=\"sub\">Transport " + d("transport") + ", mode " + d("kv_transfer_mode") +
         ", decode router " + d("decode_router") + "; " + d("handed_off") + " requests handed off, " + d("received") +
         " received by a decode replica. Busy: time in steps over the run's simulated time, per engine. KV transfer: "
         "from the decode blocks' reservation to the last byte; decode wait: from the first token to that "
         "reservation (requests.csv kv_transfer_ms, decode_wait_ms).</p>";
  return out + "</div>\n";
}

}  // namespace

std::string explain_text_for_report(const RunDir& run) { return explain_run(run).text; }

std::string render_html_report(const RunDir& run, const std::string& explanation) {
  std::string body;
  int y = 16;
  body += fmt::format(
      "<div id=\"header\" class=\"region\" style=\"left:{}px;top:{}px;width:{}px\"><h1>servesim report</h1>"
      "<div class=\"sub\">run directory <code>{}</code> &#183; {} requests in requests.csv</div></div>\n",
      kMargin, y, kContentWidth, escape_xml(run.dir), run.requests.size());
  y += 54;

  body += summary_html(run, y);
  y += kSummaryHeight + kGap;

  const int cdf_w = (kContentWidth - 2 * kGap) / 3;
  int x = kMargin;
  for (const auto& c : report::cdf_charts(run, cdf_w, kCdfHeight)) {
    body += chart_html(c, x, y);
    x += cdf_w + kGap;
  }
  y += kCdfHeight + kGap;

  for (const auto& c : report::breakdown_charts(run, kContentWidth)) {
    body += chart_html(c, kMargin, y);
    y += c.height + kGap;
  }

  if (report::is_disaggregated(run)) {
    body += pools_html(run, y);
    y += pools_height(run) + kGap;
    const int half = (kContentWidth - kGap) / 2;
    x = kMargin;
    for (const auto& c : report::disaggregation_charts(run, half, kCdfHeight)) {
      body += chart_html(c, x, y);
      x += half + kGap;
    }
    y += kCdfHeight + kGap;
  }

  if (run.has_timeseries) {
    for (const auto& c : report::timeseries_charts(run, kContentWidth, kTimeseriesHeight)) {
      body += chart_html(c, kMargin, y);
      y += c.height + kGap;
    }
  } else {
    constexpr int kNoteHeight = 60;
    body += region_open("timeseries-note", "note", kMargin, y, kContentWidth, kNoteHeight);
    body += "<b>KV usage and queue length over time:</b> this run directory has no timeseries.csv. Run with "
            "<code>--timeseries RUN_DIR/timeseries.csv</code> to include these charts.</div>\n";
    y += kNoteHeight + kGap;
  }
  const int regions_bottom = y;

  body += fmt::format("<div id=\"explain\" class=\"region\" style=\"left:{}px;top:{}px;width:{}px\">"
                      "<h2>Why is the tail high?</h2>",
                      kMargin, y, kContentWidth);
  if (explanation.empty()) {
    body += fmt::format("<p>No explanation in this report: <code>servesim explain {}</code> prints it.</p>",
                        escape_xml(run.dir));
  } else {
    body += "<pre>" + escape_xml(explanation) + "</pre>";
  }
  body += "</div>\n";

  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>servesim report: {}</title>\n"
      "<style>{}</style>\n</head>\n<body data-height=\"{}\" style=\"width:{}px\">\n{}</body>\n</html>\n",
      escape_xml(run.dir), kStyle, regions_bottom, report::kPageWidth, body);
}

}  // namespace servesim
