// Issue 10, kinds 1, 5, 6 and 7: quantities past the documented limits (models/common/units.h), silent acceptance,
// misleading messages and path resolution. Every failing case ends the CLI with exit code 2, one line
// "servesim: error: ..." naming the key or file:line, and no output files.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "helpers.h"
#include "models/common/config.h"
#include "models/common/units.h"
#include "sim/cli/commands.h"
#include "sim/core/simulator.h"
#include "sim/metrics/validation.h"

using namespace servesim;

namespace {

std::string workload(const std::string& arrival = "impl = \"poisson\"\nrate = 5.0\n", const std::string& prompt = "100",
                     const std::string& output = "10", const std::string& num = "10") {
  return "[workload]\nnum_requests = " + num + "\n[workload.arrival]\n" + arrival +
         "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = " + prompt +
         "\n[workload.output_tokens]\nimpl = \"fixed\"\nvalue = " + output + "\n";
}

// Runs `servesim CMD` (CMD may name {out}, replaced by an output path in a fresh directory) and checks the
// one-line error contains every string in `expect` and that nothing was written.
void expect_cli_error(const std::string& tag, const std::string& cmd, const std::vector<std::string>& expect,
                      const std::vector<std::string>& absent = {}) {
  const auto dir = test::temp_dir(tag);
  const auto out = dir / "out";
  std::string c = cmd;
  if (const auto p = c.find("{out}"); p != std::string::npos) c.replace(p, 5, out.string());
  const auto r = test::run_cli(c);
  INFO(c);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
  CHECK(r.output.rfind("servesim: error: ", 0) == 0);
  for (const auto& e : expect) CHECK(r.output.find(e) != std::string::npos);
  for (const auto& e : absent) CHECK(r.output.find(e) == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
}

// `servesim run` on a scenario of text `text`.
void expect_error(const std::string& tag, const std::string& text, const std::vector<std::string>& expect,
                  const std::string& extra_args = "") {
  const auto dir = test::temp_dir(tag + "-s");
  const std::string path = test::write_file(dir / "s.toml", text);
  expect_cli_error(tag, "run " + path + " --out {out} " + extra_args, expect);
}

// A shell command line (stdout and stderr together), for cases that need a working directory.
test::CliResult run_shell(const std::string& prefix, const std::string& cmd) { return test::run_command(prefix + cmd); }

}  // namespace

// ---- kind 1: quantities that do not fit the clock or the counters ----

TEST_CASE("the checked conversion to nanoseconds refuses what the clock cannot hold", "[bad-input-limits]") {
  CHECK(to_ns(Seconds{1.5}).v == 1'500'000'000);
  CHECK(to_ns(Seconds{kMaxSimSeconds}).v == kMaxSimNs);
  CHECK(to_ns(Seconds{-2e-9}).v == -2);
  CHECK(test::input_error([] { (void)to_ns(Seconds{1e30}); }).find("simulated-time limit") != std::string::npos);
  CHECK(test::input_error([] { (void)to_ns(Seconds{std::nan("")}); }).find("simulated-time limit") != std::string::npos);
  CHECK_FALSE(test::input_error([] { (void)to_ns(Seconds{1.1e7}); }).empty());
}

TEST_CASE("the conversion to nanoseconds rounds exactly as std::llround", "[bad-input-limits]") {
  // Halves away from zero, the double just below a half, integers past 2^53, and a spread of ordinary times.
  std::vector<double> ns = {0.0,  0.5,  -0.5, 1.5,  -1.5, 2.5,   -2.5, 0.49999999999999994, -0.49999999999999994,
                            9.9e15, -9.9e15, 9007199254740993.0, 4503599627370495.5, 123456789.5, -123456789.5};
  for (int i = 0; i < 2000; ++i) ns.push_back(std::ldexp(double(i * 7919 % 1000) + 0.5, i % 40) * (i % 2 ? -1 : 1));
  for (const double x : ns) {
    INFO(x);
    CHECK(to_ns(Seconds{x * 1e-9}).v == std::llround(x * 1e-9 * 1e9));
  }
}

TEST_CASE("an event past the simulated-time limit is an input error", "[bad-input-limits]") {
  struct Nop final : EventTarget {
    void on_event(Simulator&, std::uint64_t) override {}
  } nop;
  Simulator sim;
  sim.schedule(Ns{kMaxSimNs}, Priority::arrival, &nop);
  CHECK(test::input_error([&] { sim.schedule(Ns{kMaxSimNs + 1}, Priority::arrival, &nop); })
            .find("simulated time would pass the limit") != std::string::npos);
}

TEST_CASE("a rate too low for the clock names workload.arrival", "[bad-input-limits]") {
  expect_error("rate", test::base_scenario_text() + workload("impl = \"poisson\"\nrate = 1e-12\n"),
               {"workload.arrival", "simulated-time limit"});
}

TEST_CASE("a step overhead past the simulated-time limit names the key", "[bad-input-limits]") {
  expect_error("perstep", test::base_scenario_text() + workload() + "[engine.overhead]\nper_step = \"9e8s\"\n",
               {"s.toml:", "engine.overhead.per_step", "1e+07 s"});
}

TEST_CASE("a length past the tokens-per-request limit names the key", "[bad-input-limits]") {
  expect_error("outtok", test::base_scenario_text() + workload("impl = \"poisson\"\nrate = 5.0\n", "100", "9223372036854775807"),
               {"s.toml:", "workload.output_tokens.value", "at most 10000000", "tokens per request"});
  expect_error("uniform", test::base_scenario_text() +
                              "[workload]\nnum_requests = 3\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
                              "[workload.prompt_tokens]\nimpl = \"uniform\"\nmin = 1\nmax = 20000000\n"
                              "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 5\n",
               {"workload.prompt_tokens.max", "at most 10000000"});
}

TEST_CASE("num_requests past the requests-per-run limit names the key", "[bad-input-limits]") {
  expect_error("numreq", test::base_scenario_text() + workload("impl = \"poisson\"\nrate = 5.0\n", "100", "10", "1000000000000"),
               {"s.toml:", "workload.num_requests", "at most 100000000", "requests per run"});
}

TEST_CASE("step flags past the limits are refused", "[bad-input-limits]") {
  const std::string scenario = test::write_file(test::temp_dir("step") / "s.toml", test::base_scenario_text() + workload());
  expect_cli_error("step1", "step " + scenario + " --decode 9223372036854775807x9223372036854775807", {"--decode", "limit"});
  expect_cli_error("step2", "step " + scenario + " --decode 4x20000000", {"--decode", "past the limit"});
  expect_cli_error("step3", "step " + scenario + " --prefill 20000000", {"--prefill", "past the limit"});
  const auto ok = test::run_cli("step " + scenario + " --decode 8x1000");
  INFO(ok.output);
  CHECK(ok.code == 0);
}

TEST_CASE("a trace whose scaled span passes the simulated-time limit names the key or the row", "[bad-input-limits]") {
  const auto dir = test::temp_dir("tracespan");
  const std::string far = test::write_file(dir / "far.csv", "arrival_s,prompt_tokens,output_tokens\n0.0,10,5\n999999999.0,10,5\n");
  expect_error("tracespan1", test::base_scenario_text() +
                                 "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\ntime_scale = 100\npath = \"" + far + "\"\n",
               {"far.csv:3", "simulated-time limit"});
  const std::string near = test::write_file(dir / "near.csv", "arrival_s,prompt_tokens,output_tokens\n0.0,10,5\n1000000.0,10,5\n");
  expect_error("tracespan2", test::base_scenario_text() +
                                 "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\ntime_scale = 100\npath = \"" + near + "\"\n",
               {"s.toml:", "workload.arrival.time_scale", "simulated-time limit"});
  const std::string big = test::write_file(dir / "big.csv", "arrival_s,prompt_tokens,output_tokens\n0.0,99999999999,5\n");
  expect_error("tracetok", test::base_scenario_text() +
                               "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"" + big + "\"\n",
               {"big.csv:2", "tokens per request"});
}

TEST_CASE("a measured run spanning more than the simulated-time limit names the file", "[bad-input-limits]") {
  const auto dir = test::temp_dir("measspan");
  const std::string run = test::write_file(
      dir / "run.jsonl",
      "{\"arrival_s\": 0.0, \"prompt_tokens\": 10, \"output_tokens\": 1, \"token_times_s\": [0.1]}\n"
      "{\"arrival_s\": 2e10, \"prompt_tokens\": 10, \"output_tokens\": 1, \"token_times_s\": [20000000000.1]}\n");
  const std::string scenario = test::write_file(dir / "s.toml", test::base_scenario_text());
  expect_cli_error("measspan", "validate " + scenario + " --measured " + run, {"run.jsonl", "simulated-time limit"});
  const std::string tokens = test::write_file(
      dir / "tok.jsonl", "{\"arrival_s\": 0.0, \"prompt_tokens\": 90000000, \"output_tokens\": 1, \"token_times_s\": [0.1]}\n");
  expect_cli_error("meastok", "validate " + scenario + " --measured " + tokens, {"tok.jsonl:1", "tokens per request"});
}

// ---- kind 5: silent acceptance ----

TEST_CASE("a lognormal mean past the token limit is refused", "[bad-input-limits]") {
  expect_error("lognormal", test::base_scenario_text() +
                                "[workload]\nnum_requests = 3\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
                                "[workload.prompt_tokens]\nimpl = \"lognormal\"\nmean = 1e30\nstd = 10.0\n"
                                "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 5\n",
               {"s.toml:", "workload.prompt_tokens.mean", "at most 10000000"});
}

TEST_CASE("a horizon of 0 s is refused", "[bad-input-limits]") {
  expect_error("horizon0", test::base_scenario_text() + workload() + "[sim]\nhorizon = \"0s\"\n",
               {"s.toml:", "sim.horizon", "must be > 0"});
}

TEST_CASE("Azure timestamps that do not exist are refused with file and line", "[bad-input-limits]") {
  const auto dir = test::temp_dir("azure");
  const std::string head = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-02-28 10:00:00.0000000,10,5\n";
  const std::string feb = test::write_file(dir / "feb.csv", head + "2023-02-30 10:00:00.0000000,10,5\n");
  const std::string y9999 = test::write_file(dir / "y.csv", head + "9999-01-01 10:00:00.0000000,10,5\n");
  expect_error("azure1", test::base_scenario_text() + "[workload.arrival]\nimpl = \"trace\"\npath = \"" + feb + "\"\n",
               {"feb.csv:3", "does not exist"});
  expect_error("azure2", test::base_scenario_text() + "[workload.arrival]\nimpl = \"trace\"\npath = \"" + y9999 + "\"\n",
               {"y.csv:3", "year 9999"});
  // 2024-02-29 exists.
  const std::string leap = test::write_file(dir / "leap.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                                              "2024-02-29 10:00:00.0000000,10,5\n");
  const auto ok = test::run_cli("run " + test::write_file(dir / "ok.toml", test::base_scenario_text() +
                                                                               "[workload.arrival]\nimpl = \"trace\"\npath = \"" + leap + "\"\n") +
                                " --out " + (dir / "out").string());
  INFO(ok.output);
  CHECK(ok.code == 0);
}

TEST_CASE("the seed option must be an integer in [0, 2^64 - 1]", "[bad-input-limits]") {
  const std::string text = test::base_scenario_text() + workload();
  expect_error("seedneg", text, {"--seed", "'-1'"}, "--seed -1");
  expect_error("seedbig", text, {"--seed", "18446744073709551616"}, "--seed 18446744073709551616");
  CHECK(parse_seed("18446744073709551615") == 18446744073709551615ULL);
  CHECK(parse_seed("0") == 0);
  CHECK_FALSE(test::input_error([] { (void)parse_seed("+1"); }).empty());
  CHECK_FALSE(test::input_error([] { (void)parse_seed(""); }).empty());
}

TEST_CASE("a --set value holding a second key is refused", "[bad-input-limits]") {
  expect_error("setnl", test::base_scenario_text() + workload(), {"--set workload.arrival.rate", "more than one TOML value"},
               "--set 'workload.arrival.rate=1\nx=2'");
  Config c = Config::from_string("a = 1\n", "t.toml");
  CHECK(test::input_error([&] { c.set("a", "2\nb = 3"); }).find("more than one TOML value") != std::string::npos);
  c.set("a", "{x = 1, y = 2}");
  CHECK(c.table("a").integer("y") == 2);
}

TEST_CASE("a fixed prompt longer than max_model_len is refused at load", "[bad-input-limits]") {
  expect_error("toolong", test::base_scenario_text() + workload("impl = \"poisson\"\nrate = 5.0\n", "9000", "10"),
               {"s.toml:", "workload.prompt_tokens", "max_model_len 8192"});
  // A prompt that fits with its output is fine; max_prompt_tokens truncates prompts to fit.
  const auto dir = test::temp_dir("fits");
  const auto ok = test::run_cli("run " + test::write_file(dir / "s.toml", test::base_scenario_text() +
                                                                              workload("impl = \"poisson\"\nrate = 5.0\n", "9000", "10",
                                                                                       "10\nmax_prompt_tokens = 8000")) +
                                " --out " + (dir / "out").string());
  INFO(ok.output);
  CHECK(ok.code == 0);
}

TEST_CASE("a measured request longer than max_model_len is refused, not dropped", "[bad-input-limits]") {
  const auto dir = test::temp_dir("measlong");
  const std::string run = test::write_file(
      dir / "run.jsonl",
      "{\"arrival_s\": 0.0, \"prompt_tokens\": 100, \"output_tokens\": 1, \"token_times_s\": [0.1]}\n"
      "{\"arrival_s\": 1.0, \"prompt_tokens\": 9000, \"output_tokens\": 1, \"token_times_s\": [1.5]}\n");
  const std::string scenario = test::write_file(dir / "s.toml", test::base_scenario_text());
  expect_cli_error("measlong", "validate " + scenario + " --measured " + run, {"run.jsonl", "max_model_len 8192"});
}

TEST_CASE("a measured TTFT of 0 has no relative error", "[bad-input-limits]") {
  const auto dir = test::temp_dir("ttft0");
  const std::string run = test::write_file(
      dir / "run.jsonl", "{\"arrival_s\": 0.5, \"prompt_tokens\": 128, \"output_tokens\": 3, \"token_times_s\": [0.5, 0.6, 0.7]}\n");
  const std::string scenario = test::write_file(dir / "s.toml", test::base_scenario_text());
  const auto r = test::run_cli("validate " + scenario + " --measured " + run + " --json");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.output);
  const auto& m = j["runs"][0]["metrics"]["mean_ttft_ms"];
  CHECK(m["measured"].get<double>() == 0.0);
  CHECK(m["error_pct"].is_null());
  const auto t = test::run_cli("validate " + scenario + " --measured " + run);
  CHECK(t.output.find("+0.00") == std::string::npos);
  CHECK(t.output.find("n/a") != std::string::npos);
}

// ---- kind 6: misleading messages ----

TEST_CASE("head_dim 0 is blamed on the model config, not the GPU", "[bad-input-limits]") {
  const auto dir = test::temp_dir("headdim");
  auto j = nlohmann::json::parse(test::read_file(test::scenario_path("models/llama-3-8b.json")));
  j["hidden_size"] = 16;
  j["num_attention_heads"] = 32;
  j["num_key_value_heads"] = 8;
  j.erase("head_dim");
  const std::string cfg = test::write_file(dir / "config.json", j.dump());
  const std::string text = "[model]\nconfig = \"" + cfg + "\"\n[hardware]\ngpu = \"h100-sxm\"\n" + workload();
  const std::string path = test::write_file(dir / "s.toml", text);
  expect_cli_error("headdim", "run " + path + " --out {out}", {"config.json", "hidden_size", "head_dim"}, {"hardware.gpu"});
}

TEST_CASE("a CSV trace starting with a UTF-8 byte-order mark is read", "[bad-input-limits]") {
  const auto dir = test::temp_dir("bom");
  const std::string trace =
      test::write_file(dir / "t.csv", "\xEF\xBB\xBF" "arrival_s,prompt_tokens,output_tokens\n0.0,10,5\n0.5,20,5\n");
  const std::string s = test::write_file(dir / "s.toml", test::base_scenario_text() +
                                                             "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"" + trace + "\"\n");
  const auto r = test::run_cli("run " + s + " --out " + (dir / "out").string());
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(std::filesystem::exists(dir / "out" / "summary.json"));
}

TEST_CASE("backlog when the horizon stopped arrivals counts the unfinished requests", "[bad-input-limits]") {
  const auto dir = test::temp_dir("backlog");
  const std::string s = test::write_file(
      dir / "s.toml", test::base_scenario_text() + workload("impl = \"poisson\"\nrate = 200.0\n", "2000", "500", "5000") +
                          "[sim]\nhorizon = \"2s\"\n");
  const auto r = test::run_cli("run " + s + " --out " + (dir / "out").string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(test::read_file(dir / "out" / "summary.json"));
  const auto& x = j["servesim"];
  CHECK(x["num_requests"].get<std::int64_t>() < 5000);
  CHECK(x["unfinished"].get<std::int64_t>() > 0);
  CHECK(x["backlog_at_last_arrival"].get<std::int64_t>() == x["unfinished"].get<std::int64_t>());
}

// ---- kind 7: paths ----

TEST_CASE("paths: bare scenario names, scenario-relative and working-directory-relative paths", "[bad-input-limits]") {
  const auto dir = test::temp_dir("paths");
  std::filesystem::create_directories(dir / "scenarios" / "traces");
  test::write_file(dir / "scenarios" / "traces" / "t.csv", "arrival_s,prompt_tokens,output_tokens\n0.0,10,5\n0.5,20,5\n");
  // Catalog names with and without ".json"; a trace relative to the scenario's folder.
  test::write_file(dir / "scenarios" / "s.toml",
                   "[model]\nconfig = \"llama-3-8b.json\"\n[hardware]\ngpu = \"h100-sxm\"\n"
                   "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"traces/t.csv\"\n");
  test::write_file(dir / "scenarios" / "q.toml",
                   "[model]\nconfig = \"llama-3-8b\"\n[hardware]\ngpu = \"h100-sxm\"\n"
                   "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"traces/t.csv\"\n");
  test::write_file(dir / "fit.toml", "[engine.overhead]\nper_step = \"300us\"\n");
  const std::string cd = "cd " + dir.string() + " && export SERVESIM_HOME=" + test::source_dir() + " && ";
  auto run = [&](const std::string& args) {
    const auto r = run_shell(cd, args);
    INFO(args);
    INFO(r.output);
    CHECK(r.code == 0);
  };
  // A bare file name in the working directory.
  run("cd scenarios && " + std::string(SERVESIM_BINARY) + " run q.toml --out o1");
  CHECK(std::filesystem::exists(dir / "scenarios" / "o1" / "summary.json"));
  // A path inside the scenario: against the scenario's folder, wherever servesim runs.
  run(std::string(SERVESIM_BINARY) + " run scenarios/s.toml --out o2");
  CHECK(std::filesystem::exists(dir / "o2" / "summary.json"));
  // --set values, --calibration and --out: against the working directory (not scenarios/scenarios/...).
  run(std::string(SERVESIM_BINARY) + " run scenarios/s.toml --set 'workload.arrival.path=\"scenarios/traces/t.csv\"' "
      "--calibration fit.toml --out o3");
  CHECK(std::filesystem::exists(dir / "o3" / "summary.json"));
  const auto bad = run_shell(cd, std::string(SERVESIM_BINARY) + " run scenarios/s.toml --set "
                                                                       "'workload.arrival.path=\"traces/t.csv\"' --out o4");
  INFO(bad.output);
  CHECK(bad.code == 2);
  CHECK(bad.output.find("scenarios/scenarios") == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "o4"));
}

TEST_CASE("Config::path_value resolves against the value's origin", "[bad-input-limits]") {
  const auto dir = test::temp_dir("origin");
  std::filesystem::create_directories(dir / "cal");
  const std::string scenario = test::write_file(dir / "s.toml", "a = \"x.csv\"\nabs = \"/tmp/y.csv\"\n");
  test::write_file(dir / "cal" / "fit.toml", "b = \"z.csv\"\n");
  Config c = Config::from_file(scenario);
  c.merge_file((dir / "cal" / "fit.toml").string());
  c.set("d", "\"w.csv\"");
  CHECK(c.path_value("a", dir) == (dir / "x.csv").string());
  CHECK(c.path_value("abs", dir) == "/tmp/y.csv");
  CHECK(c.path_value("b", dir) == (dir / "cal" / "z.csv").string());
  CHECK(c.path_value("d", dir) == "w.csv");
}
