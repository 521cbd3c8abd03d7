// Timelines of a run: the Chrome trace-event JSON of --trace (sim/metrics/trace_writer.h) and the time series of
// --timeseries (sim/metrics/timeseries_writer.h), from synthetic events and end to end through `servesim run`.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

#include "helpers.h"
#include "sim/io/run_dir.h"
#include "sim/metrics/timeseries_writer.h"
#include "sim/metrics/trace_writer.h"

using namespace servesim;
using nlohmann::json;

namespace {

std::int64_t ns_of(const json& us) { return std::llround(us.get<double>() * 1000.0); }

// The trace's structural rules; returns the first violation ("" when none):
//  - complete events ("X") on one (pid, tid) nest: a span starting inside another ends inside it;
//  - async spans ("b"/"e") of one (pid, cat, id) open and close as a stack, by name; none is left open;
//  - every flow id has exactly one "s" and one "f", the "f" not before the "s", each inside an X span of its track.
std::string trace_violation(const json& trace) {
  if (!trace.contains("traceEvents") || !trace["traceEvents"].is_array()) return "no traceEvents array";
  using Track = std::pair<std::int64_t, std::int64_t>;
  std::map<Track, std::vector<std::pair<std::int64_t, std::int64_t>>> spans;  // [start, end) by track
  std::map<std::tuple<std::int64_t, std::string, std::uint64_t>, std::vector<std::pair<std::int64_t, std::string>>> async;
  struct Flow {
    int starts = 0, ends = 0;
    std::int64_t s_ts = 0, f_ts = 0;
    Track s_track, f_track;
  };
  std::map<std::uint64_t, Flow> flows;
  for (const auto& e : trace["traceEvents"]) {
    const std::string ph = e.at("ph");
    const Track track{e.at("pid").get<std::int64_t>(), e.value("tid", std::int64_t{0})};
    if (ph == "X") {
      const std::int64_t ts = ns_of(e.at("ts"));
      spans[track].emplace_back(ts, ts + ns_of(e.at("dur")));
    } else if (ph == "b" || ph == "e") {
      async[{track.first, e.at("cat").get<std::string>(), e.at("id").get<std::uint64_t>()}].emplace_back(
          ns_of(e.at("ts")), ph + e.at("name").get<std::string>());
    } else if (ph == "s" || ph == "f") {
      Flow& f = flows[e.at("id").get<std::uint64_t>()];
      if (ph == "s") {
        ++f.starts, f.s_ts = ns_of(e.at("ts")), f.s_track = track;
      } else {
        ++f.ends, f.f_ts = ns_of(e.at("ts")), f.f_track = track;
        if (e.value("bp", "") != "e") return "flow end without bp e";
      }
    }
  }
  for (auto& [track, list] : spans) {
    std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second > b.second;
    });
    std::vector<std::int64_t> open;  // ends of the enclosing spans
    for (const auto& [start, end] : list) {
      while (!open.empty() && open.back() <= start) open.pop_back();
      if (!open.empty() && end > open.back() && start != end) {
        return "overlapping spans on pid " + std::to_string(track.first) + " tid " + std::to_string(track.second) +
               " at " + std::to_string(start) + " ns";
      }
      open.push_back(end);
    }
  }
  for (auto& [key, list] : async) {
    std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> stack;
    for (const auto& [ts, what] : list) {
      if (what[0] == 'b') {
        stack.push_back(what.substr(1));
      } else if (stack.empty() || stack.back() != what.substr(1)) {
        return "async end '" + what.substr(1) + "' without its begin (id " + std::to_string(std::get<2>(key)) + ")";
      } else {
        stack.pop_back();
      }
    }
    if (!stack.empty()) return "async span '" + stack.back() + "' not ended (id " + std::to_string(std::get<2>(key)) + ")";
  }
  auto inside = [&spans](const Track& t, std::int64_t ts) {
    const auto it = spans.find(t);
    return it != spans.end() && std::any_of(it->second.begin(), it->second.end(), [ts](const auto& s) {
             return s.first <= ts && ts <= s.second;
           });
  };
  for (const auto& [id, f] : flows) {
    if (f.starts != 1 || f.ends != 1) return "flow " + std::to_string(id) + " does not pair up";
    if (f.f_ts < f.s_ts) return "flow " + std::to_string(id) + " ends before it starts";
    if (!inside(f.s_track, f.s_ts) || !inside(f.f_track, f.f_ts)) return "flow " + std::to_string(id) + " unbound";
  }
  return "";
}

std::size_t count_ph(const json& trace, const std::string& ph, const std::string& name = "") {
  return static_cast<std::size_t>(std::count_if(trace["traceEvents"].begin(), trace["traceEvents"].end(), [&](const json& e) {
    return e.at("ph") == ph && (name.empty() || e.at("name") == name);
  }));
}

StepEvent step(std::int32_t replica, std::int32_t engine, std::int64_t start, std::int64_t end) {
  StepEvent s;
  s.replica = replica;
  s.engine = engine;
  s.start = Ns{start};
  s.end = Ns{end};
  s.prefill_tokens = 100;
  s.prefill_seqs = 1;
  s.decode_seqs = 3;
  s.waiting = 2;
  s.running = 4;
  s.kv_used_blocks = 25;
  s.kv_blocks = 100;
  s.compute_s = 1e-6;
  s.memory_s = 2e-6;
  s.communication_s = 0;
  s.overhead_s = 5e-7;
  return s;
}

RequestRecord record(std::uint64_t id, std::int32_t replica, std::int64_t arrival, std::int64_t finish) {
  RequestRecord r;
  r.id = id;
  r.replica = replica;
  r.prompt_tokens = 100;
  r.output_tokens = 4;
  r.arrival = Ns{arrival};
  r.ready = Ns{arrival + 10};
  r.first_scheduled = Ns{arrival + 20};
  r.first_token = Ns{arrival + 30};
  r.finish = Ns{finish};
  return r;
}

Request request(std::uint64_t id, std::int64_t arrival) { return Request{id, Ns{arrival}, 100, 4}; }

}  // namespace

TEST_CASE("trace: one step and one request, byte for byte", "[trace]") {
  std::ostringstream out;
  TraceWriter w(out, 1);
  w.arrived(Ns{0}, request(7, 0), 0);
  w.step_started(step(0, 0, 1020, 3500));
  w.finished(record(7, 0, 0, 3500));
  w.close();
  const std::string expected =
      "{\"traceEvents\":[\n"
      R"({"name":"process_name","ph":"M","pid":0,"tid":0,"args":{"name":"replica 0"}},)" "\n"
      R"({"name":"process_sort_index","ph":"M","pid":0,"tid":0,"args":{"sort_index":0}},)" "\n"
      R"({"name":"thread_name","ph":"M","pid":0,"tid":0,"args":{"name":"engine 0"}},)" "\n"
      R"({"name":"thread_sort_index","ph":"M","pid":0,"tid":0,"args":{"sort_index":0}},)" "\n"
      R"({"name":"step","cat":"step","ph":"X","pid":0,"tid":0,"ts":1.020,"dur":2.480,"args":{"prefill_tokens":100,)"
      R"("decode_seqs":3,"batch_seqs":4,"waiting":2,"running":4,"bound":"memory","overhead_ms":0.000500,)"
      R"("compute_ms":0.001000,"memory_ms":0.002000,"communication_ms":0.000000}},)" "\n"
      R"({"name":"request 7","cat":"request","ph":"b","id":7,"pid":0,"tid":0,"ts":0.000,"args":{"prompt_tokens":100,)"
      R"("output_tokens":4,"preemptions":0,"ttft_ms":0.000030,"e2el_ms":0.003500}},)" "\n"
      R"({"name":"front end","cat":"request","ph":"b","id":7,"pid":0,"tid":0,"ts":0.000},)" "\n"
      R"({"name":"front end","cat":"request","ph":"e","id":7,"pid":0,"tid":0,"ts":0.010},)" "\n"
      R"({"name":"queue","cat":"request","ph":"b","id":7,"pid":0,"tid":0,"ts":0.010},)" "\n"
      R"({"name":"queue","cat":"request","ph":"e","id":7,"pid":0,"tid":0,"ts":0.020},)" "\n"
      R"({"name":"prefill","cat":"request","ph":"b","id":7,"pid":0,"tid":0,"ts":0.020},)" "\n"
      R"({"name":"prefill","cat":"request","ph":"e","id":7,"pid":0,"tid":0,"ts":0.030},)" "\n"
      R"({"name":"decode","cat":"request","ph":"b","id":7,"pid":0,"tid":0,"ts":0.030},)" "\n"
      R"({"name":"decode","cat":"request","ph":"e","id":7,"pid":0,"tid":0,"ts":3.500},)" "\n"
      R"({"name":"request 7","cat":"request","ph":"e","id":7,"pid":0,"tid":0,"ts":3.500})" "\n"
      "],\"displayTimeUnit\":\"ms\",\"otherData\":{\"sample_every\":\"1\"}}\n";
  CHECK(out.str() == expected);
  const json j = json::parse(out.str());
  CHECK(trace_violation(j).empty());
  CHECK(w.events() == j["traceEvents"].size());
}

TEST_CASE("trace: timestamps are exact microseconds and the bound is the largest kind", "[trace]") {
  std::ostringstream out;
  TraceWriter w(out, 1);
  StepEvent s = step(2, 1, 123'456'789'012, 123'456'789'017);
  s.compute_s = 3e-6;
  s.communication_s = 3e-6;  // a tie goes to the first kind: compute
  s.memory_s = 1e-6;
  w.step_started(s);
  w.close();
  const json j = json::parse(out.str());
  CHECK(out.str().find(R"("ts":123456789.012,"dur":0.005)") != std::string::npos);
  CHECK(TraceWriter::bound_of(s) == std::string("compute"));
  s.overhead_s = 4e-6;
  CHECK(TraceWriter::bound_of(s) == std::string("overhead"));
  // Replica 2 and its engine 1 are named; the communication span (3 us > the 5 ns step) is clamped to the step.
  CHECK(out.str().find(R"("args":{"name":"replica 2"})") != std::string::npos);
  CHECK(out.str().find(R"("args":{"name":"engine 1"})") != std::string::npos);
  CHECK(out.str().find(R"({"name":"communication","cat":"communication","ph":"X","pid":2,"tid":1001,"ts":123456789.012,"dur":0.005})") !=
        std::string::npos);
  CHECK(out.str().find(R"("args":{"name":"communication 1"})") != std::string::npos);
  CHECK(trace_violation(j).empty());
}

TEST_CASE("trace: communication spans end with their step and nest per track", "[trace]") {
  std::ostringstream out;
  TraceWriter w(out, 1);
  for (int i = 0; i < 4; ++i) {
    for (int e = 0; e < 2; ++e) {  // two pipeline engines whose steps overlap
      StepEvent s = step(0, e, 1000 * i + 500 * e, 1000 * i + 500 * e + 1000);
      s.communication_s = 2e-7;
      w.step_started(s);
    }
  }
  w.close();
  const json j = json::parse(out.str());
  CHECK(trace_violation(j).empty());
  CHECK(count_ph(j, "X", "step") == 8);
  CHECK(count_ph(j, "X", "communication") == 8);
  for (const auto& e : j["traceEvents"]) {
    if (e["name"] == "communication") {
      CHECK(ns_of(e["dur"]) == 200);
      CHECK((ns_of(e["ts"]) + 200) % 500 == 0);  // ends where its step ends
    }
  }
  // The checker itself: two overlapping spans on one track are caught.
  json bad = j;
  bad["traceEvents"].push_back({{"ph", "X"}, {"pid", 0}, {"tid", 0}, {"ts", 0.5}, {"dur", 1.0}, {"name", "x"}});
  CHECK_FALSE(trace_violation(bad).empty());
}

TEST_CASE("trace: sampling keeps one request in N and the steps around them", "[trace]") {
  std::ostringstream out;
  TraceWriter w(out, 2);
  w.arrived(Ns{0}, request(1, 0), 0);                      // not kept
  w.step_started(step(0, 0, 0, 100));                      // no kept request in flight: dropped
  w.arrived(Ns{100}, request(2, 100), 0);                  // kept
  w.arrived(Ns{100}, request(4, 100), 1);                  // kept, on replica 1
  w.rejected(Ns{100}, 4, RejectReason::exceeds_kv_cache, [] { return std::string("x"); });
  w.step_started(step(0, 0, 100, 200));                    // kept
  w.step_started(step(1, 0, 100, 200));                    // replica 1's kept request was rejected: dropped
  w.preempted(Ns{200}, 2, 0, 0);                           // kept
  w.preempted(Ns{200}, 1, 0, 0);                           // not kept
  w.step_started(step(0, 0, 200, 300));                    // kept
  w.finished(record(1, 0, 0, 300));                        // not kept
  w.finished(record(2, 0, 100, 300));                      // kept
  w.step_started(step(0, 0, 300, 400));                    // nothing kept in flight: dropped
  w.close();
  const json j = json::parse(out.str());
  CHECK(trace_violation(j).empty());
  std::vector<std::int64_t> steps;
  for (const auto& e : j["traceEvents"]) {
    if (e["name"] == "step") steps.push_back(ns_of(e["ts"]) + 1'000'000 * e["pid"].get<std::int64_t>());
  }
  CHECK(steps == std::vector<std::int64_t>{100, 200});
  CHECK(count_ph(j, "i", "preempt") == 1);
  CHECK(count_ph(j, "b", "request 2") == 1);
  CHECK(count_ph(j, "b", "request 1") == 0);
  CHECK(count_ph(j, "b") == 5);  // request 2: request, front end, queue, prefill, decode
  CHECK(j["otherData"]["sample_every"] == "2");
  CHECK(test::input_error([] {
          std::ostringstream o;
          TraceWriter bad(o, 0);
        }).find("--trace-sample") != std::string::npos);
}

TEST_CASE("trace: KV transfers are flows between replicas on free lanes", "[trace]") {
  std::ostringstream out;
  TraceWriter w(out, 1);
  const TransferEvent a{10, 0, 1, 4096, Ns{1000}, Ns{3000}};
  const TransferEvent b{11, 0, 1, 8192, Ns{2000}, Ns{2500}};
  const TransferEvent c{12, 0, 1, 1024, Ns{4000}, Ns{5000}};
  w.transfer_started(a);
  w.transfer_started(b);  // overlaps a: the second lane of each replica
  w.transfer_ended(b);
  w.transfer_ended(a);
  w.transfer_started(c);  // lane 0 is free again
  w.transfer_ended(c);
  w.close();
  const json j = json::parse(out.str());
  CHECK(trace_violation(j).empty());
  CHECK(count_ph(j, "s") == 3);
  CHECK(count_ph(j, "f") == 3);
  std::map<std::uint64_t, std::int64_t> send_tid;
  for (const auto& e : j["traceEvents"]) {
    if (e["name"] == "kv send") {
      CHECK(e["pid"] == 0);
      send_tid[e["args"]["request"].get<std::uint64_t>()] = e["tid"].get<std::int64_t>();
    }
    if (e["ph"] == "f") CHECK(e["pid"] == 1);
  }
  CHECK(send_tid == std::map<std::uint64_t, std::int64_t>{{10, 2000}, {11, 2001}, {12, 2000}});
  // The checker: a flow without its end is caught.
  json bad = j;
  auto& ev = bad["traceEvents"];
  ev.erase(std::find_if(ev.begin(), ev.end(), [](const json& e) { return e["ph"] == "f"; }));
  CHECK_FALSE(trace_violation(bad).empty());
}

TEST_CASE("timeseries: rows per interval, byte for byte", "[timeseries]") {
  std::ostringstream out;
  TimeseriesWriter w(out, Ns{1000}, 1, 1);
  w.arrived(Ns{0}, request(0, 0), 0);
  w.queued(Ns{100}, 0, 0, 0, 1);
  w.scheduled(Ns{200}, 0, 0, 0);
  StepEvent s = step(0, 0, 200, 1400);  // 800 ns in interval 0, 400 in interval 1
  s.running = 1;
  s.waiting = 0;
  s.communication_s = 6e-7;  // the last 600 ns: 200 in interval 0, 400 in interval 1
  w.step_started(s);
  w.step_ended(s);
  StepEvent s2 = step(0, 0, 1400, 1500);
  s2.running = 1;
  s2.waiting = 0;
  w.step_started(s2);
  w.step_ended(s2);
  w.finished(record(0, 0, 0, 1500));  // running 0 again, its KV freed
  w.finish(Ns{3200});                 // four intervals: the last two repeat the state without steps
  CHECK(w.rows() == 4);
  CHECK(out.str() ==
        "time_s,replica,waiting,running,kv_usage,steps,mean_step_ms,busy_fraction,communication_fraction\n"
        "0.000001000,0,0,1,0.250000,1,0.001200,0.800000,0.200000\n"
        "0.000002000,0,0,0,0.000000,1,0.000100,0.500000,0.400000\n"
        "0.000003000,0,0,0,0.000000,0,0.000000,0.000000,0.000000\n"
        "0.000004000,0,0,0,0.000000,0,0.000000,0.000000,0.000000\n");
}

TEST_CASE("timeseries: replicas and engines, KV usage summed, steps spanning intervals", "[timeseries]") {
  std::ostringstream out;
  TimeseriesWriter w(out, Ns{1'000'000'000}, 2, 2);  // 1 s, 2 replicas of 2 engines
  StepEvent a = step(1, 0, 500'000'000, 2'750'000'000);  // replica 1, engine 0: 0.5 s, 1 s, 0.75 s
  a.kv_used_blocks = 30;
  a.kv_blocks = 100;
  w.step_started(a);
  StepEvent b = step(1, 1, 600'000'000, 700'000'000);
  b.kv_used_blocks = 10;
  b.kv_blocks = 100;
  b.waiting = 5;
  b.running = 1;
  w.step_started(b);
  w.step_ended(b);
  w.step_ended(a);
  w.finish(Ns{2'000'000'000});  // the last event (2.75 s) extends the series to 3 s
  CHECK(out.str() ==
        "time_s,replica,waiting,running,kv_usage,steps,mean_step_ms,busy_fraction,communication_fraction\n"
        "1.000,0,0,0,0.000000,0,0.000000,0.000000,0.000000\n"
        "1.000,1,7,5,0.200000,2,1175.000000,0.300000,0.000000\n"
        "2.000,0,0,0,0.000000,0,0.000000,0.000000,0.000000\n"
        "2.000,1,7,5,0.200000,0,0.000000,0.500000,0.000000\n"
        "3.000,0,0,0,0.000000,0,0.000000,0.000000,0.000000\n"
        "3.000,1,7,5,0.200000,0,0.000000,0.375000,0.000000\n");
  w.step_started(step(5, 0, 0, 1));  // after finish(): ignored
  std::ostringstream other;
  TimeseriesWriter small(other, Ns{1000}, 2, 1);
  CHECK_THROWS_AS(small.step_started(step(2, 0, 0, 1)), std::logic_error);  // no replica 2
  CHECK_THROWS_AS(small.step_started(step(1, 1, 0, 1)), std::logic_error);  // no engine 1
}

TEST_CASE("timeseries: bad intervals and an empty run", "[timeseries]") {
  std::ostringstream out;
  CHECK(test::input_error([&] { TimeseriesWriter w(out, Ns{0}, 1, 1); }).find("--timeseries-interval") !=
        std::string::npos);
  std::ostringstream empty;
  TimeseriesWriter w(empty, Ns{1'000'000'000}, 1, 1);
  w.finish(Ns{0});
  CHECK(empty.str() == std::string(kTimeseriesCsvHeader) + "1.000,0,0,0,0.000000,0,0.000000,0.000000,0.000000\n");
  CHECK_THROWS_AS(TimeseriesWriter(out, Ns{1}, 0, 1), std::logic_error);
}

namespace {

std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::istringstream cs(line);
    std::string cell;
    while (std::getline(cs, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

std::string quickstart_run(const std::filesystem::path& dir, std::int64_t requests, const std::string& extra) {
  return "run " + test::scenario_path("quickstart.toml") + " --set workload.num_requests=" + std::to_string(requests) +
         " --out " + (dir / "out").string() + " " + extra;
}

}  // namespace

TEST_CASE("trace and timeseries end to end: well formed, covering the run, deterministic", "[trace][timeseries]") {
  const auto dir = test::temp_dir("trace-e2e");
  const std::string flags = " --trace-sample 1 --timeseries-interval 0.5";
  // Run a writes its time series into its output directory, where read_run_dir (explain, report) finds it.
  const auto a_csv = dir / "a" / "out" / "timeseries.csv";
  const auto r1 = test::run_cli(quickstart_run(dir / "a", 300, "--trace " + (dir / "a.json").string() +
                                                                 " --timeseries " + a_csv.string() + flags));
  INFO(r1.output);
  REQUIRE(r1.code == 0);
  CHECK(r1.output.find("wrote " + (dir / "a.json").string()) != std::string::npos);
  CHECK(r1.output.find("wrote " + a_csv.string()) != std::string::npos);
  const auto r2 = test::run_cli(quickstart_run(dir / "b", 300, "--trace " + (dir / "b.json").string() +
                                                                 " --timeseries " + (dir / "b.csv").string() + flags));
  REQUIRE(r2.code == 0);
  const std::string trace = test::read_file(dir / "a.json");
  const std::string series = test::read_file(a_csv);
  CHECK(trace == test::read_file(dir / "b.json"));
  CHECK(series == test::read_file(dir / "b.csv"));

  const json summary = json::parse(test::read_file(dir / "a" / "out" / "summary.json"));
  const json& s = summary["servesim"];
  const json j = json::parse(trace);
  CHECK(trace_violation(j).empty());
  const auto steps = s["steps"].get<std::size_t>();
  CHECK(count_ph(j, "X", "step") == steps);
  std::size_t requests = 0;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] == "b" && e["name"].get<std::string>().rfind("request ", 0) == 0) ++requests;
  }
  CHECK(requests == 300 - s["rejected"].get<std::size_t>() - s["unfinished"].get<std::size_t>());
  CHECK(count_ph(j, "M", "process_name") == s["replicas"].get<std::size_t>());

  // One row per replica per 0.5 s up to the run's end; the steps column adds up to the run's steps.
  const auto rows = csv_rows(series);
  REQUIRE(rows.size() > 1);
  CHECK(rows[0].size() == 9);
  const double end_s = s["sim_end_s"].get<double>();
  const auto intervals = static_cast<std::size_t>(std::ceil(end_s / 0.5));
  CHECK(rows.size() - 1 == intervals * s["replicas"].get<std::size_t>());
  CHECK(rows[1][0] == "0.500");
  CHECK(std::stod(rows.back()[0]) >= end_s);
  std::size_t series_steps = 0;
  double busy = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    series_steps += std::stoul(rows[i][5]);
    busy += std::stod(rows[i][7]) * 0.5;
    CHECK(std::stod(rows[i][4]) <= 1.0);
  }
  CHECK(series_steps == steps);
  CHECK(busy == Approx(s["busy_fraction"].get<double>() * end_s).epsilon(1e-3));
  const RunDir run = read_run_dir((dir / "a" / "out").string());
  CHECK(run.has_timeseries);
  CHECK(run.timeseries.size() == rows.size() - 1);
  CHECK(run.timeseries.front().time_s == 0.5);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a sampled trace of a 100,000-request run stays under 50 MB", "[trace]") {
  const auto dir = test::temp_dir("trace-big");
  const auto r = test::run_cli(quickstart_run(dir, 100000, "--trace " + (dir / "t.json").string() + " --trace-sample 2000"));
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto bytes = std::filesystem::file_size(dir / "t.json");
  CHECK(bytes < 50'000'000);
  const json j = json::parse(test::read_file(dir / "t.json"));
  CHECK(trace_violation(j).empty());
  std::size_t requests = 0;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] == "b" && e["name"].get<std::string>().rfind("request ", 0) == 0) ++requests;
  }
  CHECK(requests == 50);  // ids 0, 2000, ..., 98000
  CHECK(count_ph(j, "X", "step") > 1000);
  std::filesystem::remove_all(dir);
}

TEST_CASE("bad trace and timeseries flags, and failed runs, write nothing", "[trace][timeseries]") {
  const auto dir = test::temp_dir("trace-bad");
  const std::string trace = (dir / "t.json").string();
  for (const std::string bad : {"--trace-sample 0", "--trace-sample -3", "--trace-sample 2.5",
                                 "--timeseries-interval 0", "--timeseries-interval -1", "--timeseries-interval x"}) {
    const auto r = test::run_cli(quickstart_run(dir, 10, "--trace " + trace + " " + bad));
    INFO(bad << ": " << r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find(bad.substr(0, bad.find(' '))) != std::string::npos);
  }
  // Every request rejected at admission: the run fails, and neither the trace nor the series is left behind.
  const auto r = test::run_cli(quickstart_run(dir, 10, "--set engine.max_model_len=16 --trace " + trace +
                                                           " --timeseries " + (dir / "t.csv").string()));
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK_FALSE(std::filesystem::exists(trace));
  CHECK_FALSE(std::filesystem::exists(dir / "t.csv"));
  CHECK_FALSE(std::filesystem::exists(dir / "out"));
  std::filesystem::remove_all(dir);
}
