// servesim report: the HTML report of a run directory (sim/report/html_report.h).
#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "helpers.h"
#include "sim/report/html_report.h"
#include "sim/report/svg_chart.h"

namespace servesim {
namespace {

// 100 requests; request i: front end 1 ms, queue i ms, prefill 10 ms (TTFT = 11 + i), output 11 tokens, decode
// (20 + i % 7) ms and decode stall 5 ms (TPOT = (25 + i % 7) / 10). One replica.
RunDir fixture(bool with_timeseries) {
  RunDir run;
  run.dir = "runs/fixture";
  run.summary = {{"completed", 100},       {"median_ttft_ms", 60.5}, {"p99_ttft_ms", 109.0},
                 {"median_tpot_ms", 2.8},  {"p99_tpot_ms", 3.1},     {"median_e2el_ms", 88.0},
                 {"p99_e2el_ms", 140.0},   {"mean_itl_ms", 2.8},
                 {"servesim", {{"num_requests", 100}, {"config", {{"model", "llama-3-8b"}, {"gpu", "h100-sxm"}}}}}};
  for (int i = 0; i < 100; ++i) {
    RequestRow r;
    r.id = static_cast<std::uint64_t>(i);
    r.arrival_s = 0.1 * i;
    r.prompt_tokens = 100;
    r.output_tokens = 11;
    r.front_end_ms = 1;
    r.queue_ms = i;
    r.prefill_ms = 10;
    r.ttft_ms = 11 + i;
    r.decode_ms = 20 + i % 7;
    r.decode_stall_ms = 5;
    r.tpot_ms = (r.decode_ms + r.decode_stall_ms) / 10;
    r.e2el_ms = r.ttft_ms + r.decode_ms + r.decode_stall_ms;
    run.requests.push_back(r);
  }
  if (with_timeseries) {
    run.has_timeseries = true;
    for (int i = 1; i <= 20; ++i) {
      TimeseriesRow t;
      t.time_s = 0.5 * i;
      t.waiting = i % 5;
      t.running = 3;
      t.kv_usage = 0.04 * i;
      run.timeseries.push_back(t);
    }
  }
  return run;
}

// The markup of the element with id `id` up to its closing </svg>.
std::string chart_markup(const std::string& html, const std::string& id) {
  const auto begin = html.find("id=\"" + id + "\"");
  REQUIRE(begin != std::string::npos);
  return html.substr(begin, html.find("</svg>", begin) - begin);
}

struct Box {
  std::string id;
  int x, y, w, h;
};

std::vector<Box> regions(const std::string& html) {
  static const std::regex re(R"re(id="([a-z0-9-]+)"[^>]*data-rect="(\d+),(\d+),(\d+),(\d+)")re");
  std::vector<Box> out;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    out.push_back({m[1], std::stoi(m[2]), std::stoi(m[3]), std::stoi(m[4]), std::stoi(m[5])});
  }
  return out;
}

}  // namespace

TEST_CASE("report cohorts: P50 is the middle tenth, P99 the slowest hundredth", "[report]") {
  std::vector<double> v(200);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 37) % 200);  // a permutation of 0..199
  const auto c = report::latency_cohorts(v);
  REQUIRE(c.p50.size() == 20);
  REQUIRE(c.p99.size() == 2);
  for (const std::size_t i : c.p50) CHECK((v[i] >= 90 && v[i] < 110));
  for (const std::size_t i : c.p99) CHECK(v[i] >= 198);

  const auto one = report::latency_cohorts({5.0});
  CHECK(one.p50 == std::vector<std::size_t>{0});
  CHECK(one.p99 == std::vector<std::size_t>{0});
  CHECK(report::latency_cohorts({}).p99.empty());
  // Ties rank by index: the last of equal values is the slowest.
  CHECK(report::latency_cohorts(std::vector<double>(10, 1.0)).p99 == std::vector<std::size_t>{9});
}

TEST_CASE("report charts: nice ticks and CDF steps", "[report]") {
  CHECK(report::nice_ticks(0, 97, 5) == std::vector<double>{0, 20, 40, 60, 80, 100});
  const auto fifths = report::nice_ticks(0, 1, 5);
  REQUIRE(fifths.size() == 6);
  CHECK(fifths[3] == Approx(0.6));
  CHECK(report::nice_ticks(0, 7200, 8) == std::vector<double>{0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000});
  CHECK(report::nice_ticks(0, 0, 5).back() == 1);
  const auto pts = report::cdf_points({3, 1, 2});
  REQUIRE(pts.size() == 6);
  CHECK(pts.front() == std::pair<double, double>{1, 0});
  CHECK(pts.back() == std::pair<double, double>{3, 1});
  CHECK(report::format_number(-0.0001, 2) == "0.00");
  CHECK(report::escape_xml("<a & \"b\">") == "&lt;a &amp; &quot;b&quot;&gt;");
}

TEST_CASE("report html: self-contained, deterministic, every chart laid out apart", "[report]") {
  const RunDir run = fixture(true);
  const std::string html = render_html_report(run, "line 1\n<tail> & more");
  CHECK(html == render_html_report(run, "line 1\n<tail> & more"));
  for (const char* forbidden : {"<script", "src=", "href=", "url(", "@import", "<link", "<iframe"}) {
    INFO(forbidden);
    CHECK(html.find(forbidden) == std::string::npos);
  }
  CHECK(html.find("<pre>line 1\n&lt;tail&gt; &amp; more</pre>") != std::string::npos);

  const std::vector<Box> boxes = regions(html);
  std::vector<std::string> ids;
  for (const auto& b : boxes) ids.push_back(b.id);
  CHECK(ids == std::vector<std::string>{"summary", "ttft-cdf", "tpot-cdf", "e2e-cdf", "ttft-breakdown",
                                        "tpot-breakdown", "e2e-breakdown", "kv-usage", "queue-length"});
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    INFO(boxes[i].id);
    CHECK(boxes[i].x >= 0);
    CHECK(boxes[i].x + boxes[i].w <= report::kPageWidth);
    for (std::size_t j = i + 1; j < boxes.size(); ++j) {
      const bool apart = boxes[i].x + boxes[i].w <= boxes[j].x || boxes[j].x + boxes[j].w <= boxes[i].x ||
                         boxes[i].y + boxes[i].h <= boxes[j].y || boxes[j].y + boxes[j].h <= boxes[i].y;
      CHECK(apart);
    }
  }
  // Every chart lists the colours its data marks were drawn in.
  for (const char* id : {"ttft-cdf", "tpot-cdf", "e2e-cdf", "kv-usage", "queue-length"}) {
    INFO(id);
    CHECK(chart_markup(html, id).find("data-colors=\"#1f77b4\"") != std::string::npos);
  }
  CHECK(html.find("timeseries-note") == std::string::npos);
}

TEST_CASE("report html: the breakdown bars add up to each cohort's mean", "[report]") {
  const std::string html = render_html_report(fixture(false), "");
  // TTFT cohorts: ranks 45..54 (mean TTFT 11 + 49.5) and rank 99 (TTFT 110).
  const std::string ttft = chart_markup(html, "ttft-breakdown");
  CHECK(ttft.find(">P50 cohort (n=10)<") != std::string::npos);
  CHECK(ttft.find(">60.5 ms<") != std::string::npos);
  CHECK(ttft.find(">P99 cohort (n=1)<") != std::string::npos);
  CHECK(ttft.find(">110.0 ms<") != std::string::npos);
  // Front end, queue and prefill are drawn; the stalls and preemption are 0.
  CHECK(ttft.find("data-colors=\"#1f77b4,#ff7f0e,#2ca02c\"") != std::string::npos);
  // TPOT per output token after the first: the slowest request has decode 26 + stall 5 over 10 tokens.
  const std::string tpot = chart_markup(html, "tpot-breakdown");
  CHECK(tpot.find(">3.10 ms/token<") != std::string::npos);
  // Without timeseries.csv: a note in place of the charts.
  CHECK(html.find("id=\"timeseries-note\"") != std::string::npos);
  CHECK(html.find("--timeseries RUN_DIR/timeseries.csv") != std::string::npos);
  CHECK(html.find("id=\"kv-usage\"") == std::string::npos);
}

TEST_CASE("report html: a disaggregated run has a pools section and the KV transfer and decode wait CDFs",
          "[report]") {
  // The fixture as three pools in replica order: prefill (replica 0, GPUs 0-3), decode (replica 1, GPUs 8-11) and
  // an aggregated one (replica 2, GPU 12). Requests 0-89 were handed off and decoded by replica 1 (KV transfer
  // 2 + i % 5 ms, decode wait i % 3 ms); 90-99 ran on the aggregated replica, with a KV transfer of 1000 ms that
  // no handed-off request has (requests.csv never holds such a row: it marks rows the CDFs must leave out).
  RunDir run = fixture(false);
  const auto pool = [](const char* name, const char* role, std::vector<int> gpus) {
    return nlohmann::json{{"name", name}, {"role", role}, {"num_replicas", 1}, {"gpu", "h100-sxm"},
                          {"tensor_parallel_size", gpus.size()}, {"pipeline_parallel_size", 1}, {"gpus", gpus}};
  };
  run.summary["servesim"]["config"]["pools"] = {pool("prefill", "prefill", {0, 1, 2, 3}),
                                                pool("decode", "decode", {8, 9, 10, 11}),
                                                pool("agg", "aggregated", {12})};
  run.summary["servesim"]["disaggregation"] = {
      {"kv_transfer_mode", "after_prefill"}, {"transport", "auto"}, {"decode_router", "least_loaded"},
      {"handed_off", 90}, {"received", 90},
      {"kv_transfer_ms", {{"mean", 4.0}, {"p50", 4.0}, {"p99", 6.0}, {"max", 6.0}}},
      {"decode_wait_ms", {{"mean", 1.0}, {"p50", 1.0}, {"p99", 2.0}, {"max", 2.0}}},
      {"pools", {{{"busy_fraction", 0.5}}, {{"busy_fraction", 0.9}}, {{"busy_fraction", 0.25}}}}};
  for (auto& r : run.requests) {
    const bool handed = r.id < 90;
    r.replica = handed ? 1 : 2;
    r.kv_transfer_ms = handed ? 2.0 + double(r.id % 5) : 1000.0;
    r.decode_wait_ms = handed ? double(r.id % 3) : 0.0;
  }
  const std::string html = render_html_report(run, "");
  std::vector<std::string> ids;
  for (const auto& b : regions(html)) ids.push_back(b.id);
  CHECK(ids == std::vector<std::string>{"summary", "ttft-cdf", "tpot-cdf", "e2e-cdf", "ttft-breakdown",
                                        "tpot-breakdown", "e2e-breakdown", "pools", "kv-transfer-cdf",
                                        "decode-wait-cdf", "timeseries-note"});
  const auto begin = html.find("id=\"pools\"");
  const std::string pools = html.substr(begin, html.find("id=\"kv-transfer-cdf\"") - begin);
  CHECK(pools.find("<td>decode</td><td>decode</td><td class=\"num\">1</td><td>h100-sxm</td><td class=\"num\">4 / 1"
                   "</td><td>8-11</td><td class=\"num\">90.0 %</td>") != std::string::npos);
  CHECK(pools.find("<td>agg</td><td>aggregated</td>") != std::string::npos);
  CHECK(pools.find("<td>12</td><td class=\"num\">25.0 %</td>") != std::string::npos);
  CHECK(pools.find("<tr><td>KV transfer</td><td class=\"num\">4.00</td><td class=\"num\">4.00</td>"
                   "<td class=\"num\">6.00</td><td class=\"num\">6.00</td></tr>") != std::string::npos);
  CHECK(pools.find("90 requests handed off") != std::string::npos);
  // The CDFs: the breakdown's colours of KV transfer and decode wait, the summary's P50 / P99 markers, and only the
  // handed-off rows (an x axis up to 1000 would mean the aggregated rows' transfers were drawn).
  const std::string kv = chart_markup(html, "kv-transfer-cdf");
  CHECK(kv.find("data-colors=\"#17becf\"") != std::string::npos);
  CHECK(kv.find(">P50 4.00 ms<") != std::string::npos);
  CHECK(kv.find(">P99 6.00 ms<") != std::string::npos);
  CHECK(kv.find(">1000<") == std::string::npos);
  CHECK(kv.find(">6<") != std::string::npos);
  const std::string wait = chart_markup(html, "decode-wait-cdf");
  CHECK(wait.find("data-colors=\"#393b79\"") != std::string::npos);
  CHECK(wait.find(">P99 2.00 ms<") != std::string::npos);
  CHECK(html == render_html_report(run, ""));
}

TEST_CASE("servesim report: a missing run directory is an input error and writes nothing", "[report][cli]") {
  const auto dir = test::temp_dir("report");
  const auto out = dir / "report.html";
  const auto r = test::run_command(std::string(SERVESIM_BINARY) + " report " + (dir / "missing").string() + " -o " +
                                   out.string());
  CHECK(r.code == 2);
  CHECK(r.output.find("missing") != std::string::npos);
  CHECK(!std::filesystem::exists(out));
  std::filesystem::remove_all(dir);
}

TEST_CASE("servesim report: renders a run directory end to end", "[report][cli]") {
  const auto dir = test::temp_dir("report-run");
  const std::string bin = SERVESIM_BINARY;
  const auto run = test::run_command(bin + " run " + test::scenario_path("quickstart.toml") +
                                     " --set workload.num_requests=60 --out " + (dir / "run").string());
  REQUIRE(run.code == 0);
  const auto r = test::run_command(bin + " report " + (dir / "run").string() + " -o " + (dir / "r.html").string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  const std::string html = test::read_file(dir / "r.html");
  for (const char* id : {"summary", "ttft-cdf", "tpot-cdf", "e2e-cdf", "ttft-breakdown", "e2e-breakdown"}) {
    INFO(id);
    CHECK(html.find(std::string("id=\"") + id + "\"") != std::string::npos);
  }
  // Same run directory, same bytes.
  REQUIRE(test::run_command(bin + " report " + (dir / "run").string() + " -o " + (dir / "s.html").string()).code == 0);
  CHECK(test::read_file(dir / "s.html") == html);
  std::filesystem::remove_all(dir);
}

}  // namespace servesim
