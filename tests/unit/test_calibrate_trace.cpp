// `servesim calibrate trace` end to end: runs produced by servesim itself with a planted engine overhead, jitter
// and stalls, client-style timestamp noise added, fitted back (must-show 2 of issue 9), and its input errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>

#include "helpers.h"

using namespace servesim;

namespace {

// The planted engine: Llama-3-8B on one H100 (quickstart: lognormal prompts, mean 1024 tokens) with a CPU overhead
// per step of 3 ms + 150 us per decode + 1.5 ms per prefill sequence + 1.5 us per prompt token (0 per sampled
// token), a lognormal step jitter of sigma 0.15 and stalls of median 150 ms (log-sd 0.4) in 0.5 % of the steps;
// 32 output tokens per request, so that prompts (which the prefill terms need) are many.
constexpr std::array<double, 5> kPlanted = {3e-3, 150e-6, 1.5e-3, 1.5e-6, 0.0};
constexpr std::array<const char*, 5> kNames = {"per_step", "per_decode_seq", "per_prefill_seq", "per_prefill_token",
                                               "per_sampled_token"};
constexpr double kSigma = 0.15, kStallP = 0.005;
const std::string kEngine =
    " --set 'engine.overhead={per_step=\"3ms\", per_decode_seq=\"150us\", per_prefill_seq=\"1.5ms\","
    " per_prefill_token=\"1.5us\", per_sampled_token=\"0us\"}'"
    " --set 'engine.jitter={impl=\"lognormal\", sigma=0.15, stall_probability=0.005, stall_median=\"150ms\","
    " stall_sigma=0.4}'"
    " --set 'workload.output_tokens={impl=\"fixed\", value=32}'";

// Every token time moved later by a deterministic pseudo-random 0..40 us, as a client reading the stream stamps
// them: the tokens of one step no longer share a time.
std::string add_client_noise(const std::string& jsonl) {
  std::istringstream in(jsonl);
  std::string line, out;
  std::uint64_t id = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    auto& times = j["token_times_s"];
    for (std::size_t k = 0; k < times.size(); ++k) {
      const std::uint64_t h = (id * 2654435761ULL + k * 40503ULL + 12345ULL) % 1000003ULL;
      times[k] = times[k].get<double>() + 40e-6 * double(h) / 1000003.0;
    }
    out += j.dump() + "\n";
    ++id;
  }
  return out;
}

struct PlantedRuns {
  std::filesystem::path dir;
  std::string low, mid, high;  // noisy runs at three loads
};

// Three loads of the planted engine, generated once per test process: a low load of near-periodic arrivals that
// never overlap (one request at a time: every step holds one sequence), Poisson 4 and 16 req/s.
const PlantedRuns& planted() {
  static const PlantedRuns runs = [] {
    PlantedRuns r;
    r.dir = test::temp_dir("planted3");
    const std::string q = test::scenario_path("quickstart.toml");
    auto make = [&](const std::string& name, const std::string& load) {
      const std::string clean = (r.dir / (name + "-clean.jsonl")).string();
      const auto gen = test::run_cli("run " + q + kEngine + load + " --out " + (r.dir / name).string() +
                                     " --tokens-out " + clean);
      REQUIRE(gen.code == 0);
      return test::write_file(r.dir / (name + ".jsonl"), add_client_noise(test::read_file(clean)));
    };
    r.low = make("low", " --set workload.num_requests=60 --set 'workload.arrival={impl=\"gamma\", rate=0.4, cv=0.05}'");
    r.mid = make("mid", " --set workload.num_requests=300 --set workload.arrival.rate=4");
    r.high = make("high", " --set workload.num_requests=400 --set workload.arrival.rate=16");
    return r;
  }();
  return runs;
}

nlohmann::json fit_json(const std::string& args) {
  const auto r = test::run_cli("calibrate trace " + args + " --json");
  INFO(r.output);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.output);
}

}  // namespace

TEST_CASE("calibrate trace recovers a planted overhead, jitter and stalls from three loads", "[calibrate-trace]") {
  const auto& p = planted();
  const std::string q = test::scenario_path("quickstart.toml");
  const std::string fit_path = (p.dir / "fit3.toml").string();
  const auto j = fit_json(p.low + " " + p.mid + " " + p.high + " --scenario " + q + " --out " + fit_path);
  INFO(j.dump(2));
  for (std::size_t t = 0; t < 4; ++t) {
    const auto& term = j["terms"][kNames[t]];
    INFO(kNames[t]);
    CHECK(term["status"] == "identified");
    const double v = term["value_s"], lo = term["low_s"], hi = term["high_s"];
    const bool within = std::abs(v - kPlanted[t]) <= 0.05 * kPlanted[t];
    const bool covered = lo <= kPlanted[t] && kPlanted[t] <= hi;
    CHECK((within || covered));
    // An interval that says something: its upper end varies with the run's draws (per_prefill_token: 1.6-2.1 x
    // the planted value over seeds 1 and 3; with seed 2 the term is not identified at all).
    CHECK(hi < 2.5 * kPlanted[t]);
  }
  // Sampled tokens are decodes + finished prompts in (nearly) every row: not identified, set to 0.
  CHECK(j["terms"]["per_sampled_token"]["status"] == "not identified");
  CHECK(j["terms"]["per_sampled_token"]["value_s"] == 0.0);
  CHECK(j["jitter"]["impl"] == "lognormal");
  CHECK(j["jitter"]["sigma"].get<double>() == Approx(kSigma).epsilon(0.10));
  CHECK(j["jitter"]["stall_probability"].get<double>() == Approx(kStallP).epsilon(0.20));
  CHECK(j["jitter"]["stall_median_s"].get<double>() == Approx(0.150).epsilon(0.15));
  CHECK(j["jitter"]["mean_ratio"].get<double>() == Approx(1.0).epsilon(0.01));
  // Per run: nearly every measured step matched; in-sample P50 errors within the spread of the planted model
  // itself (replays of the planted engine with other seeds differ from the measured one by up to ~7 % at P50
  // TPOT at the high load, where a stall slows every running request).
  for (const auto& run : j["runs"]) {
    CHECK(run["gaps_in_fit"].get<double>() >= 0.95 * run["steps"].get<double>());
    for (const char* m : {"median_ttft_ms", "median_tpot_ms"}) {
      INFO(run["measured"] << " " << m);
      CHECK(std::abs(run["in_sample"][m]["error_pct"].get<double>()) < 10.0);
    }
  }
  // FIT.toml is a valid calibration: a run with it uses the fitted terms.
  const std::string toml = test::read_file(fit_path);
  CHECK(toml.find("[engine.overhead]") != std::string::npos);
  CHECK(toml.find("[engine.jitter]") != std::string::npos);
  const auto use = test::run_cli("run " + q + " --calibration " + fit_path + " --set workload.num_requests=20 --out " +
                                 (p.dir / "use").string());
  INFO(use.output);
  CHECK(use.code == 0);
  // Same input, same bytes (the bootstrap draws from a fixed-seed stream).
  const std::string again = (p.dir / "again.toml").string();
  REQUIRE(test::run_cli("calibrate trace " + p.low + " " + p.mid + " " + p.high + " --scenario " + q + " --seeds 1 --out " +
                        again).code == 0);
  CHECK(test::read_file(again) == toml);
}

TEST_CASE("calibrate trace from one low load flags the per-sequence terms it cannot identify", "[calibrate-trace]") {
  // One request at a time: every step holds one sequence, so prefill sequences = 1 - decodes in every row, and the
  // per-step cost cannot be told from the per-sequence ones.
  const auto& p = planted();
  const auto j = fit_json(p.low + " --scenario " + test::scenario_path("quickstart.toml") + " --seeds 1");
  INFO(j.dump(2));
  CHECK(j["terms"]["per_decode_seq"]["status"] == "not identified");
  CHECK(j["terms"]["per_prefill_seq"]["status"] == "not identified");
  CHECK(j["terms"]["per_decode_seq"]["value_s"] == 0.0);
  CHECK(j["terms"]["per_prefill_seq"]["value_s"] == 0.0);
  CHECK(j["terms"]["per_prefill_seq"]["why"].get<std::string>().find("prefill sequences = 1 - decodes") !=
        std::string::npos);
  // What one sequence per step does show: per_step + per_decode_seq, the decode step's overhead.
  CHECK(j["terms"]["per_step"]["value_s"].get<double>() == Approx(kPlanted[0] + kPlanted[1]).epsilon(0.05));
}

TEST_CASE("calibrate trace chooses the step window from the gap histogram", "[calibrate-trace]") {
  const auto& p = planted();
  const auto j = fit_json(p.mid + " " + p.high + " --scenario " + test::scenario_path("quickstart.toml") + " --seeds 1");
  for (const auto& run : j["runs"]) {
    INFO(run.dump());
    CHECK(run["window_from"] == "gap histogram");
    // Above the 40 us spread of a step's timestamps, well below the shortest step (about 10 ms).
    CHECK(run["window_s"].get<double>() > 40e-6);
    CHECK(run["window_s"].get<double>() < 2e-3);
    CHECK(run["steps_matched"] == run["steps"]);
  }
}

TEST_CASE("calibrate trace fails when under half of the gaps match, and suggests a window", "[calibrate-trace][bad-input]") {
  const auto& p = planted();
  const std::string out = (p.dir / "never.toml").string();
  const auto r = test::run_cli("calibrate trace " + p.mid + " --scenario " + test::scenario_path("quickstart.toml") +
                               " --group-window 5us --out " + out);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
  CHECK(r.output.find("mid.jsonl") != std::string::npos);
  CHECK(r.output.find("under half") != std::string::npos);
  CHECK(r.output.find("suggests --group-window") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
  // A window wider than a step merges everything: nothing matches.
  const auto wide = test::run_cli("calibrate trace " + p.mid + " --scenario " + test::scenario_path("quickstart.toml") +
                                  " --group-window 1s");
  CHECK(wide.code == 2);
  CHECK(wide.output.find("only 0 of") != std::string::npos);
}

TEST_CASE("calibrate trace recovers the planted terms exactly without jitter or noise", "[calibrate-trace]") {
  // Without jitter the measured clock is the simulator's: every step matches and the fit is exact up to the
  // simulator's nanosecond rounding -- the schedule the fitter runs is the simulator's own.
  const auto dir = test::temp_dir("exact");
  const std::string q = test::scenario_path("quickstart.toml");
  const std::string run = (dir / "exact.jsonl").string();
  REQUIRE(test::run_cli("run " + q + kEngine + " --set 'engine.jitter={impl=\"off\"}' --set workload.num_requests=60" +
                        " --set workload.arrival.rate=8 --out " + (dir / "r").string() + " --tokens-out " + run).code == 0);
  const auto j = fit_json(run + " --scenario " + q + " --seeds 1");
  INFO(j.dump(2));
  for (std::size_t t = 0; t < 4; ++t) {
    CHECK(j["terms"][kNames[t]]["value_s"].get<double>() == Approx(kPlanted[t]).epsilon(0.01));
  }
  CHECK(j["runs"][0]["steps_matched"] == j["runs"][0]["steps"]);
  CHECK(j["jitter"]["stalls"] == 0);
  CHECK(j["jitter"]["sigma"].get<double>() < 0.01);
}

TEST_CASE("calibrate trace rejects bad input with one line naming the file", "[calibrate-trace][bad-input]") {
  const auto dir = test::temp_dir("trace-bad");
  const std::string q = test::scenario_path("quickstart.toml");
  const std::string out = (dir / "fit.toml").string();
  auto fails = [&](const std::string& args, const std::string& needle) {
    const auto r = test::run_cli("calibrate trace " + args + " --scenario " + q + " --out " + out);
    INFO(args << "\n" << r.output);
    CHECK(r.code == 2);
    CHECK(test::count_lines(r.output) == 1);
    CHECK(r.output.find(needle) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
  };
  fails((dir / "missing.jsonl").string(), "missing.jsonl");
  fails(test::write_file(dir / "empty.jsonl", "\n\n"), "empty.jsonl");
  // Lengths that disagree with the token times.
  fails(test::write_file(dir / "short.jsonl",
                         "{\"arrival_s\": 0.0, \"prompt_tokens\": 10, \"output_tokens\": 3, \"token_times_s\": [0.1, 0.2]}\n"),
        "short.jsonl:1");
  fails(test::write_file(dir / "order.jsonl",
                         "{\"arrival_s\": 0.5, \"prompt_tokens\": 10, \"output_tokens\": 2, \"token_times_s\": [0.4, 0.6]}\n"),
        "order.jsonl:1");
  // A fit file with a key no scenario has, passed as a calibration.
  const std::string run = planted().mid;
  const std::string bad_fit =
      test::write_file(dir / "badfit.toml", "[engine.overhead]\nper_step = \"3ms\"\nper_sequence = \"1us\"\n");
  fails(run + " --calibration " + bad_fit, "badfit.toml:3");
  fails(run + " --group-window 5parsecs", "--group-window");
}
