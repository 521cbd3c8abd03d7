// End-to-end checks of the simulation against closed-form expectations.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "helpers.h"
#include "sim/cli/run.h"

using namespace servesim;

namespace {

RunOutput run_text(const std::string& tag, const std::string& text) {
  const auto dir = test::temp_dir(tag);
  const std::string path = test::write_file(dir / "s.toml", text);
  const ScenarioLoader loader(path, {});
  return run_scenario(loader);
}

}  // namespace

TEST_CASE("one request of Llama-3-8B on one H100: TPOT and TTFT in the physical range", "[sim]") {
  const auto out = run_text("single", test::base_scenario_text() + R"(
[workload]
num_requests = 1
[workload.arrival]
impl = "poisson"
rate = 1.0
[workload.prompt_tokens]
impl = "fixed"
value = 512
[workload.output_tokens]
impl = "fixed"
value = 64
)");
  const auto& s = out.summary;
  CHECK(s["completed"] == 1);
  // Weights ~16 GB over 3.35 TB/s is a 4.8 ms floor per decode step.
  CHECK(s["mean_tpot_ms"].get<double>() > 4.8);
  CHECK(s["mean_tpot_ms"].get<double>() < 10.0);
  CHECK(s["mean_ttft_ms"].get<double>() > 8.0);
  CHECK(s["mean_ttft_ms"].get<double>() < 60.0);
  // One request: every inter-token gap is one decode step, TPOT equals ITL.
  CHECK(s["mean_itl_ms"].get<double>() == Approx(s["mean_tpot_ms"].get<double>()));
  CHECK(s["servesim"]["steps"] == 64);
}

TEST_CASE("queueing: one server, fixed service, Poisson arrivals match M/D/1", "[sim][queueing]") {
  // max_num_seqs = 1 and output_tokens = 1: each request is one prefill step of a fixed time D, served FCFS.
  // Pollaczek-Khinchine for M/D/1: W = rho D / (2 (1 - rho)), so mean TTFT = W + D.
  const std::string base = test::base_scenario_text() + R"(
[engine]
max_num_seqs = 1
[workload.prompt_tokens]
impl = "fixed"
value = 1024
[workload.output_tokens]
impl = "fixed"
value = 1
)";
  // The service time as the engine sees it: the step of one 1024-token prefill that samples once.
  const auto dir = test::temp_dir("md1");
  const ScenarioLoader probe(
      test::write_file(dir / "p.toml", base + "[workload]\nnum_requests = 1\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"), {});
  BatchShape b;
  b.prefills.push_back({1024, 0});
  b.num_sampled = 1;
  const double D = ns_to_s(to_ns(probe.scenario().step_model->step_time(b)));
  for (const double rho : {0.5, 0.8}) {
    const double rate = rho / D;
    const auto out = run_text("md1", base + fmt::format("[workload]\nnum_requests = 300000\n[workload.arrival]\n"
                                                        "impl = \"poisson\"\nrate = {}\n[sim]\nseed = 7\n", rate));
    const double expected_ms = (rho * D / (2.0 * (1.0 - rho)) + D) * 1e3;
    const double got_ms = out.summary["mean_ttft_ms"].get<double>();
    INFO("rho " << rho << " D " << D * 1e3 << " ms: expected " << expected_ms << " got " << got_ms);
    CHECK(std::abs(got_ms - expected_ms) / expected_ms < 0.03);
  }
}

TEST_CASE("far above capacity the run ends, reports the backlog, and stays under the hardware bound", "[sim]") {
  const auto out = run_text("overload", test::base_scenario_text() + R"(
[workload]
num_requests = 3000
[workload.arrival]
impl = "poisson"
rate = 1000.0
[workload.prompt_tokens]
impl = "fixed"
value = 1000
[workload.output_tokens]
impl = "fixed"
value = 200
)");
  const auto& s = out.summary;
  CHECK(s["completed"] == 3000);
  CHECK(s["servesim"]["backlog_at_last_arrival"].get<std::int64_t>() > 2000);
  CHECK(s["servesim"]["max_waiting"].get<std::int64_t>() > 2000);
  const double bound = s["servesim"]["output_throughput_bound"].get<double>();
  CHECK(s["output_throughput"].get<double>() > 0.0);
  CHECK(s["output_throughput"].get<double>() < bound);
  // Queueing dominates TTFT.
  CHECK(s["p99_ttft_ms"].get<double>() > 10 * s["mean_tpot_ms"].get<double>());
}

TEST_CASE("a horizon stops the run and counts what is unfinished", "[sim]") {
  const auto out = run_text("horizon", test::base_scenario_text() + R"(
[workload]
num_requests = 500
[workload.arrival]
impl = "poisson"
rate = 100.0
[workload.prompt_tokens]
impl = "fixed"
value = 500
[workload.output_tokens]
impl = "fixed"
value = 500
[sim]
horizon = "2s"
)");
  const auto& s = out.summary;
  CHECK(s["completed"].get<std::int64_t>() < 500);
  CHECK(s["servesim"]["unfinished"].get<std::int64_t>() > 0);
  CHECK(s["servesim"]["sim_end_s"].get<double>() <= 2.0);
}

TEST_CASE("KV pressure causes preemptions and recomputation, and every request still completes", "[sim]") {
  const auto out = run_text("preempt", test::base_scenario_text() + R"(
[engine]
gpu_memory_utilization = 0.26
[workload]
num_requests = 400
[workload.arrival]
impl = "poisson"
rate = 200.0
[workload.prompt_tokens]
impl = "fixed"
value = 2000
[workload.output_tokens]
impl = "fixed"
value = 1000
)");
  const auto& s = out.summary;
  CHECK(s["completed"] == 400);
  CHECK(s["servesim"]["preemptions"].get<std::int64_t>() > 0);
  CHECK(s["total_output_tokens"] == 400 * 1000);
}

TEST_CASE("same scenario and seed give byte-identical outputs, another seed differs", "[sim][determinism]") {
  const auto dir = test::temp_dir("det");
  const std::string q = test::scenario_path("quickstart.toml");
  const std::string common = " --set workload.num_requests=300 --out ";
  REQUIRE(test::run_cli("run " + q + common + (dir / "a").string()).code == 0);
  REQUIRE(test::run_cli("run " + q + common + (dir / "b").string()).code == 0);
  REQUIRE(test::run_cli("run " + q + " --seed 2" + common + (dir / "c").string()).code == 0);
  for (const char* f : {"summary.json", "requests.csv"}) {
    const std::string a = test::read_file(dir / "a" / f);
    CHECK(!a.empty());
    CHECK(a == test::read_file(dir / "b" / f));
    CHECK(a != test::read_file(dir / "c" / f));
  }
  CHECK(test::count_lines(test::read_file(dir / "a" / "requests.csv")) == 301);
}

TEST_CASE("requests arriving at the same instant share the first step", "[sim]") {
  const auto dir = test::temp_dir("burst");
  std::string rows = "arrival_s,prompt_tokens,output_tokens\n";
  for (int i = 0; i < 8; ++i) rows += "0,512,4\n";
  test::write_file(dir / "burst.csv", rows);
  const auto out = run_text("burst", test::base_scenario_text() + "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"" +
                                         (dir / "burst.csv").string() + "\"\n");
  // One prefill step of 8 x 512 tokens: every request gets the same TTFT.
  CHECK(out.summary["servesim"]["steps"] == 4);
  CHECK(out.summary["p99_ttft_ms"].get<double>() == Approx(out.summary["mean_ttft_ms"].get<double>()));
}

TEST_CASE("with a horizon, ITL counts finished requests only (as vLLM's benchmark does)", "[sim]") {
  const std::string text = test::base_scenario_text() + R"(
[workload]
num_requests = 200
[workload.arrival]
impl = "poisson"
rate = 50.0
[workload.prompt_tokens]
impl = "fixed"
value = 200
[workload.output_tokens]
impl = "fixed"
value = 300
)";
  const auto cut = run_text("itlcut", text + "[sim]\nhorizon = \"3s\"\n");
  const std::int64_t done = cut.summary["completed"].get<std::int64_t>();
  REQUIRE(done > 0);
  REQUIRE(cut.summary["servesim"]["unfinished"].get<std::int64_t>() > 0);
  std::int64_t gaps = 0;
  for (const auto& [g, n] : cut.recorder.itl_runs()) gaps += n;
  CHECK(gaps == done * 299);
}
