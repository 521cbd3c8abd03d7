// servesim explain: reading a run directory back (read_run_dir), the cohort comparison, the four planted
// scenarios of scenarios/explain/ each diagnosed with its cause and its lever verified, and the fallback.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "helpers.h"
#include "sim/io/run_dir.h"
#include "sim/metrics/explain.h"

using namespace servesim;

namespace {

const std::string kHeader12 =
    "id,replica,arrival_s,prompt_tokens,output_tokens,first_token_s,finish_s,ttft_ms,tpot_ms,e2el_ms,queue_ms,"
    "preemptions\n";
const std::string kHeaderFull =
    "id,replica,arrival_s,prompt_tokens,output_tokens,first_token_s,finish_s,ttft_ms,tpot_ms,e2el_ms,queue_ms,"
    "preemptions,front_end_ms,prefill_ms,prefill_stall_ms,prefill_preempted_ms,decode_ms,decode_stall_ms,"
    "decode_preempted_ms,preempted_ms,kv_transfer_ms,decode_wait_ms,compute_share,memory_share,"
    "communication_share,overhead_share\n";

std::filesystem::path run_dir_with(const std::string& requests, const std::string& summary = "{\"servesim\": {}}") {
  const auto dir = test::temp_dir("explain");
  test::write_file(dir / "summary.json", summary);
  test::write_file(dir / "requests.csv", requests);
  return dir;
}

// A request row of requests.csv with the breakdown: TTFT = front_end + queue + prefill (no stalls), TPOT =
// decode / (out - 1).
struct Synth {
  double queue = 0, prefill = 10, decode = 100, front_end = 1, decode_preempted = 0, communication = 0;
  std::int64_t out = 11;
};
RequestRow synth_row(std::uint64_t id, double arrival_s, const Synth& s) {
  RequestRow r;
  r.id = id;
  r.arrival_s = arrival_s;
  r.prompt_tokens = 100;
  r.output_tokens = s.out;
  r.front_end_ms = s.front_end;
  r.queue_ms = s.queue;
  r.prefill_ms = s.prefill;
  r.ttft_ms = s.front_end + s.queue + s.prefill;
  r.decode_ms = s.decode;
  r.decode_preempted_ms = s.decode_preempted;
  r.tpot_ms = (s.decode + s.decode_preempted) / double(s.out - 1);
  r.e2el_ms = r.ttft_ms + s.decode + s.decode_preempted;
  r.communication_share = s.communication;
  r.compute_share = 0.5;
  return r;
}

// A run of the planted scenario `name` (scenarios/explain/NAME.toml) through the CLI, read back and explained.
struct Planted {
  RunDir run;
  Explanation e;
};
Planted run_explained(const std::string& scenario, const std::string& args = "") {
  const auto dir = test::temp_dir("explain-run") / "out";
  const auto r = test::run_cli("run " + scenario + args + " --out " + dir.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  Planted p{read_run_dir(dir.string()), {}};
  p.e = explain_run(p.run);
  return p;
}
Planted run_planted(const std::string& name) { return run_explained(test::scenario_path("explain/" + name + ".toml")); }

void check_verified(const Planted& p) {
  const Verification v = verify_lever(p.e, run_recipe(p.run.summary));
  INFO(p.e.text);
  INFO("before " << v.before_p99_ms << " after " << v.after_p99_ms);
  CHECK(v.metric == p.e.metric);
  // The re-run as it was reproduces the run directory's P99 (same scenario and seed).
  CHECK(v.before_p99_ms == Approx(p.run.summary.at("p99_" + v.metric + "_ms").get<double>()).epsilon(1e-9));
  CHECK(v.after_p99_ms < 0.8 * v.before_p99_ms);
}

}  // namespace

TEST_CASE("read_run_dir reads summary.json and requests.csv by header name", "[explain]") {
  // Columns in another order, an unknown extra column, a CRLF line ending and a trailing empty line.
  const auto dir = run_dir_with(
      "ttft_ms,id,replica,arrival_s,prompt_tokens,output_tokens,first_token_s,finish_s,tpot_ms,e2el_ms,queue_ms,"
      "preemptions,future_column,prefill_ms,decode_wait_ms,communication_share\r\n"
      "12.5,7,1,0.25,100,20,0.2625,1.25,52.0,1000.0,2.5,3,x,10.000001,4.5,0.3125\r\n"
      "\n",
      R"({"p99_ttft_ms": 12.5, "servesim": {"busy_fraction": 0.5}})");
  const RunDir run = read_run_dir(dir.string());
  CHECK(run.dir == dir.string());
  CHECK(run.summary["p99_ttft_ms"].get<double>() == 12.5);
  CHECK_FALSE(run.has_timeseries);
  CHECK(run.timeseries.empty());
  REQUIRE(run.requests.size() == 1);
  const RequestRow& r = run.requests[0];
  CHECK(r.id == 7);
  CHECK(r.replica == 1);
  CHECK(r.arrival_s == 0.25);
  CHECK(r.prompt_tokens == 100);
  CHECK(r.output_tokens == 20);
  CHECK(r.first_token_s == 0.2625);
  CHECK(r.finish_s == 1.25);
  CHECK(r.ttft_ms == 12.5);
  CHECK(r.tpot_ms == 52.0);
  CHECK(r.e2el_ms == 1000.0);
  CHECK(r.queue_ms == 2.5);
  CHECK(r.preemptions == 3);
  CHECK(r.prefill_ms == 10.000001);
  CHECK(r.decode_wait_ms == 4.5);
  CHECK(r.communication_share == 0.3125);
  CHECK(r.decode_ms == 0);  // absent column: an older run directory still loads
}

TEST_CASE("read_run_dir round-trips every breakdown column and timeseries.csv", "[explain]") {
  std::string row;
  for (int i = 0; i < 26; ++i) {  // 1,2,3.5,4,5,6.5,...: integer columns whole, the others with a fraction
    const bool integer = i < 2 || i == 3 || i == 4 || i == 11;
    row += (i ? "," : "") + std::to_string(i + 1) + (integer ? "" : ".5");
  }
  const auto dir = run_dir_with(kHeaderFull + row + "\n");
  test::write_file(dir / "timeseries.csv",
                   "time_s,replica,waiting,running,kv_usage,steps,mean_step_ms,busy_fraction,communication_fraction\n"
                   "1.0,0,3,40,0.75,90,10.5,0.95,0.125\n2.0,0,0,12,0.25,50,8,0.4,0.1\n");
  const RunDir run = read_run_dir(dir.string());
  REQUIRE(run.requests.size() == 1);
  const RequestRow& r = run.requests[0];
  CHECK(r.id == 1);
  CHECK(r.replica == 2);
  CHECK(r.arrival_s == 3.5);
  CHECK(r.prompt_tokens == 4);
  CHECK(r.output_tokens == 5);
  CHECK(r.preemptions == 12);
  const std::vector<double> tail = {r.front_end_ms,   r.prefill_ms,      r.prefill_stall_ms,    r.prefill_preempted_ms,
                                    r.decode_ms,      r.decode_stall_ms, r.decode_preempted_ms, r.preempted_ms,
                                    r.kv_transfer_ms, r.decode_wait_ms,  r.compute_share,       r.memory_share,
                                    r.communication_share, r.overhead_share};
  for (std::size_t i = 0; i < tail.size(); ++i) CHECK(tail[i] == double(13 + i) + 0.5);
  REQUIRE(run.has_timeseries);
  REQUIRE(run.timeseries.size() == 2);
  CHECK(run.timeseries[0].time_s == 1.0);
  CHECK(run.timeseries[0].waiting == 3);
  CHECK(run.timeseries[0].running == 40);
  CHECK(run.timeseries[0].kv_usage == 0.75);
  CHECK(run.timeseries[0].steps == 90);
  CHECK(run.timeseries[0].mean_step_ms == 10.5);
  CHECK(run.timeseries[0].busy_fraction == 0.95);
  CHECK(run.timeseries[0].communication_fraction == 0.125);
  CHECK(run.timeseries[1].mean_step_ms == 8);
}

TEST_CASE("read_run_dir names the file and line of bad input", "[explain]") {
  const std::string good = "1,0,0.5,10,5,0.6,1.0,100,50,500,1,0\n";
  SECTION("missing files") {
    const auto dir = test::temp_dir("explain-missing");
    CHECK_THAT(test::input_error([&] { (void)read_run_dir(dir.string()); }),
               Catch::Contains((dir / "summary.json").string()) && Catch::Contains("not found"));
    test::write_file(dir / "summary.json", "{}");
    CHECK_THAT(test::input_error([&] { (void)read_run_dir(dir.string()); }),
               Catch::Contains((dir / "requests.csv").string()) && Catch::Contains("not found"));
  }
  SECTION("summary.json that is not a JSON object") {
    const auto dir = run_dir_with(kHeader12 + good, "{\"a\": ");
    CHECK_THAT(test::input_error([&] { (void)read_run_dir(dir.string()); }),
               Catch::StartsWith((dir / "summary.json").string() + ": not valid JSON"));
    test::write_file(dir / "summary.json", "[1]");
    CHECK(test::input_error([&] { (void)read_run_dir(dir.string()); }) ==
          (dir / "summary.json").string() + ": expected a JSON object");
  }
  SECTION("a header without a required column") {
    const auto dir = run_dir_with("id,replica,arrival_s\n1,0,0.5\n");
    CHECK(test::input_error([&] { (void)read_run_dir(dir.string()); }) ==
          (dir / "requests.csv").string() + ":1: header has no column 'prompt_tokens' (not a requests.csv file)");
  }
  SECTION("a repeated column") {
    const auto dir = run_dir_with("id,id," + kHeader12.substr(3) + good);
    CHECK(test::input_error([&] { (void)read_run_dir(dir.string()); }) ==
          (dir / "requests.csv").string() + ":1: column 'id' appears twice");
  }
  SECTION("a field that is not a number") {
    const auto dir = run_dir_with(kHeader12 + good + "2,0,0.5,10,5,0.6,1.0,1e,50,500,1,0\n");
    CHECK(test::input_error([&] { (void)read_run_dir(dir.string()); }) ==
          (dir / "requests.csv").string() + ":3: column 'ttft_ms': '1e' is not a number");
  }
  SECTION("an integer column with a fraction, a negative id, a non-finite time") {
    auto dir = run_dir_with(kHeader12 + "1,0,0.5,10.5,5,0.6,1.0,100,50,500,1,0\n");
    CHECK(test::input_error([&] { (void)read_run_dir(dir.string()); }) ==
          (dir / "requests.csv").string() + ":2: column 'prompt_tokens': '10.5' is not an integer");
    dir = run_dir_with(kHeader12 + "-1,0,0.5,10,5,0.6,1.0,100,50,500,1,0\n");
    CHECK(test::input_error([&] { (void)read_run_dir(dir.string()); }) ==
          (dir / "requests.csv").string() + ":2: column 'id': '-1' is not a non-negative integer");
    dir = run_dir_with(kHeader12 + "1,0,0.5,10,5,0.6,1.0,inf,50,500,1,0\n");
    CHECK(test::input_error([&] { (void)read_run_dir(dir.string()); }) ==
          (dir / "requests.csv").string() + ":2: column 'ttft_ms': 'inf' is not finite");
  }
  SECTION("a row with another number of fields") {
    const auto dir = run_dir_with(kHeader12 + good + "1,0,0.5\n");
    CHECK(test::input_error([&] { (void)read_run_dir(dir.string()); }) ==
          (dir / "requests.csv").string() + ":3: 3 fields, the header has 12");
  }
  SECTION("a bad timeseries.csv") {
    const auto dir = run_dir_with(kHeader12 + good);
    test::write_file(dir / "timeseries.csv", "time_s,replica\n1,0\n");
    CHECK_THAT(test::input_error([&] { (void)read_run_dir(dir.string()); }),
               Catch::StartsWith((dir / "timeseries.csv").string() + ":1: header has no column 'waiting'"));
  }
}

TEST_CASE("explain compares the P99 cohort with the median cohort", "[explain]") {
  // 100 requests; TTFT's queue grows with the id (0..99 ms), everything else constant.
  std::vector<RequestRow> rows;
  for (int i = 0; i < 100; ++i) rows.push_back(synth_row(i, 0.1 * i, Synth{.queue = double(i)}));
  nlohmann::json summary = {
      {"servesim", {{"busy_fraction", 0.95}, {"max_waiting", 40}, {"replicas", 1}, {"mean_step_ms", 5.0}}},
      {"request_throughput", 5.0}};
  const Explanation e = explain_requests(summary, rows);
  // P99 of TTFT = 11 + 98.01 ms: the cohort is the one request with queue 99; the median band (45th-55th
  // percentile, 11 + 44.55 .. 11 + 54.45) holds queues 45..54.
  CHECK(e.ttft.requests == 100);
  CHECK(e.ttft.p99 == Approx(11 + 98.01));
  CHECK(e.ttft.median == Approx(11 + 49.5));
  CHECK(e.ttft.p99_count == 1);
  CHECK(e.ttft.median_count == 10);
  CHECK(e.ttft.p99_mean == Approx(110.0));
  CHECK(e.ttft.median_mean == Approx(60.5));
  CHECK(e.ttft.top().name == "queue");
  CHECK(e.ttft.top().growth_ms == Approx(99 - 49.5));
  CHECK(e.ttft.top().share == Approx(1.0));
  CHECK(e.ttft.components[0].growth_ms == Approx(0.0));  // front_end
  // Arrivals at 10/s, completions at 5/s: replicas for 80% utilisation = ceil(1 x 10 / 5 / 0.8) = 3.
  CHECK(e.numbers.arrival_rate == Approx(10.0));
  CHECK(e.cause == Cause::queueing);
  CHECK(e.metric == "ttft");
  CHECK(e.component == "queue");
  CHECK(e.lever_sets == std::vector<std::string>{"cluster.replicas=3"});
  CHECK(e.metric_p99_ms == Approx(e.ttft.p99));
  CHECK_THAT(e.text, Catch::Contains("Diagnosis: queueing") && Catch::Contains("--set cluster.replicas=3"));
  CHECK(e.to_json()["cause"] == "queueing");
  CHECK(e.to_json()["ttft"]["dominant"] == "queue");
  // A P99 cohort queue of 99 ms is under 10 steps of 20 ms: the scheduling granularity, not a backlog.
  summary["servesim"]["mean_step_ms"] = 20.0;
  CHECK(explain_requests(summary, rows).cause == Cause::none);
}

TEST_CASE("explain falls back to no single dominant cause", "[explain]") {
  std::vector<RequestRow> rows;
  const nlohmann::json summary = {{"servesim", {{"busy_fraction", 0.5}}}};
  SECTION("a tight tail") {
    // TTFT 20..22 ms and TPOT 10..11 ms: the P99 cohort is within 1.50x of the median cohort.
    for (int i = 0; i < 200; ++i) {
      rows.push_back(synth_row(i, 0.1 * i, Synth{.queue = 8.0 + (i % 3), .decode = 100.0 + (i % 10)}));
    }
    const Explanation e = explain_requests(summary, rows);
    CHECK(e.cause == Cause::none);
    CHECK(e.metric.empty());
    CHECK(e.lever_sets.empty());
    CHECK_THAT(e.cause_text, Catch::StartsWith("No single dominant cause") && Catch::Contains("within 1.50x"));
    CHECK_THAT(test::input_error([&] { (void)verify_lever(e, RunRecipe{"x.toml", {}, {}, {}}); }),
               Catch::Contains("no lever"));
  }
  SECTION("growth spread over components") {
    // The tail grows equally in queue, prefill and front end: none has half of the growth.
    for (int i = 0; i < 200; ++i) {
      const double x = i >= 197 ? 100.0 : 0.0;
      rows.push_back(synth_row(i, 0.1 * i, Synth{.queue = x, .prefill = 10 + x, .front_end = 1 + x}));
    }
    const Explanation e = explain_requests(summary, rows);
    CHECK(e.ttft.top().share == Approx(1.0 / 3.0));
    CHECK(e.cause == Cause::none);
    CHECK_THAT(e.cause_text, Catch::Contains("less than half of it"));
  }
  SECTION("an older run directory without the breakdown") {
    for (int i = 0; i < 100; ++i) {
      RequestRow r;
      r.id = i;
      r.ttft_ms = r.queue_ms = i;
      r.output_tokens = 1;
      rows.push_back(r);
    }
    const Explanation e = explain_requests(summary, rows);
    CHECK(e.cause == Cause::none);
    CHECK_THAT(e.cause_text, Catch::Contains("no per-request breakdown"));
  }
}

TEST_CASE("explain: a healthy quickstart run has no single dominant cause", "[explain]") {
  const Planted p = run_explained(test::scenario_path("quickstart.toml"),
                                  " --set workload.num_requests=1000 --set workload.arrival.rate=4");
  INFO(p.e.text);
  CHECK(p.e.cause == Cause::none);
  CHECK(p.e.lever_sets.empty());
  CHECK_THAT(p.e.text, Catch::Contains("Diagnosis: No single dominant cause"));
}

TEST_CASE("explain diagnoses preemption from synthetic rows", "[explain]") {
  // Three tail requests spend 200 ms preempted in decode; the KV cache runs full.
  std::vector<RequestRow> rows;
  for (int i = 0; i < 200; ++i) {
    rows.push_back(synth_row(i, 0.1 * i, Synth{.decode_preempted = i >= 197 ? 200.0 : 0.0}));
  }
  nlohmann::json summary = {{"servesim",
                             {{"preemptions", 3},
                              {"preempted_requests", 3},
                              {"peak_kv_usage", 1.0},
                              {"config", {{"kv_cache_dtype", "auto"}, {"tensor_parallel_size", 2}}}}}};
  Explanation e = explain_requests(summary, rows);
  CHECK(e.cause == Cause::preemption);
  CHECK(e.metric == "tpot");
  CHECK(e.component == "decode_preempted");
  CHECK(e.tpot.top().growth_ms == Approx(20.0));
  CHECK(e.lever_sets == std::vector<std::string>{"engine.kv_cache_dtype=\"fp8\""});
  CHECK_THAT(e.text, Catch::Contains("--set 'engine.kv_cache_dtype=\"fp8\"'"));
  // Already fp8: more GPUs per replica instead.
  summary["servesim"]["config"]["kv_cache_dtype"] = "fp8";
  e = explain_requests(summary, rows);
  CHECK(e.lever_sets == std::vector<std::string>{"parallel.tensor_parallel_size=4"});
  // Without preemptions in summary.json the same rows are not a preemption diagnosis.
  summary["servesim"]["preemptions"] = 0;
  CHECK(explain_requests(summary, rows).cause != Cause::preemption);
}

TEST_CASE("run_recipe reads the scenario a run came from", "[explain]") {
  const auto s = nlohmann::json::parse(
      R"({"servesim": {"run": {"scenario": "a.toml", "sets": ["engine.max_num_seqs=8"], "seed": 7}}})");
  const RunRecipe r = run_recipe(s);
  CHECK(r.scenario == "a.toml");
  CHECK(r.sets == std::vector<std::string>{"engine.max_num_seqs=8"});
  CHECK(r.seed == std::optional<std::uint64_t>{7});
  CHECK_THAT(test::input_error([] { (void)run_recipe(nlohmann::json::object()); }), Catch::Contains("\"run\""));
}

TEST_CASE("explain: overload is queueing, and more replicas cut the TTFT P99", "[explain]") {
  const Planted p = run_planted("overload");
  INFO(p.e.text);
  CHECK(p.e.cause == Cause::queueing);
  CHECK(p.e.metric == "ttft");
  CHECK(p.e.component == "queue");
  CHECK(p.e.ttft.top().share >= 0.5);
  REQUIRE(p.e.lever_sets.size() == 1);
  CHECK_THAT(p.e.lever_sets[0], Catch::StartsWith("cluster.replicas="));
  check_verified(p);
}

TEST_CASE("explain: a KV cache too small is preemption, and fp8 KV cuts the P99", "[explain]") {
  const Planted p = run_planted("kv-too-small");
  INFO(p.e.text);
  CHECK(p.e.cause == Cause::preemption);
  CHECK(p.e.numbers.preemptions > 0);
  CHECK((p.e.component == "decode_preempted" || p.e.component == "prefill_preempted"));
  CHECK(p.e.lever_sets == std::vector<std::string>{"engine.kv_cache_dtype=\"fp8\""});
  check_verified(p);
}

TEST_CASE("explain: TP 8 over PCIe is communication-bound, and TP 4 x 2 replicas cut the TPOT P99", "[explain]") {
  const Planted p = run_planted("tp8-pcie");
  INFO(p.e.text);
  CHECK(p.e.cause == Cause::communication);
  CHECK(p.e.metric == "tpot");
  CHECK(p.e.tpot.p99_communication_share >= 0.3);
  CHECK(p.e.lever_sets == std::vector<std::string>{"parallel.tensor_parallel_size=4", "cluster.replicas=2"});
  check_verified(p);
}

TEST_CASE("explain: long prompts under a large token budget interfere with decodes, a smaller budget cuts TPOT P99",
          "[explain]") {
  const Planted p = run_planted("prefill-interference");
  INFO(p.e.text);
  CHECK(p.e.cause == Cause::prefill_interference);
  CHECK(p.e.metric == "tpot");
  CHECK(p.e.component == "decode");
  CHECK(p.e.lever_sets == std::vector<std::string>{"engine.max_num_batched_tokens=2048"});
  check_verified(p);
}

TEST_CASE("servesim explain prints the diagnosis, verifies its lever and refuses a missing run directory",
          "[explain]") {
  const auto dir = test::temp_dir("explain-cli") / "out";
  REQUIRE(test::run_cli("run " + test::scenario_path("explain/overload.toml") + " --out " + dir.string()).code == 0);
  auto r = test::run_cli("explain " + dir.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("Diagnosis: queueing") && Catch::Contains("--set cluster.replicas="));
  CHECK_THAT(r.output, !Catch::Contains("Verify:"));
  r = test::run_cli("explain " + dir.string() + " --verify --json --scenario " +
                    test::scenario_path("explain/overload.toml"));
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.output);
  CHECK(j["cause"] == "queueing");
  CHECK(j["metric"] == "ttft");
  CHECK(j["verify"]["metric"] == "ttft");
  CHECK(j["verify"]["before_p99_ms"].get<double>() == Approx(j["metric_p99_ms"].get<double>()).epsilon(1e-9));
  CHECK(j["verify"]["after_p99_ms"].get<double>() < j["verify"]["before_p99_ms"].get<double>());
  CHECK(j["verify"]["improved"] == true);
  r = test::run_cli("explain " + (dir.parent_path() / "missing").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("summary.json") && Catch::Contains("not found"));
}

TEST_CASE("read_run_dir refuses a requests.csv cut at a line boundary", "[explain]") {
  const auto dir = test::temp_dir("run-dir-cut");
  const std::string out = (dir / "o").string();
  REQUIRE(test::run_cli("run " + test::scenario_path("quickstart.toml") + " --set workload.num_requests=20 --out " +
                        out)
              .code == 0);
  CHECK(read_run_dir(out).requests.size() == 20);
  const std::string csv = test::read_file(dir / "o" / "requests.csv");
  const auto last = csv.rfind('\n', csv.size() - 2);
  test::write_file(dir / "o" / "requests.csv", csv.substr(0, last + 1));  // 19 whole rows
  CHECK_THAT(test::input_error([&] { (void)read_run_dir(out); }),
             Catch::Contains("requests.csv: 19 rows, but summary.json says 20 requests completed"));
  std::filesystem::remove_all(dir);
}
