// servesim validate over one or more measured runs: per-run comparison with vLLM's metric names, the worst error
// across runs, the mean and spread over seeds with step jitter on, determinism and bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "helpers.h"
#include "sim/metrics/validation.h"

using namespace servesim;

namespace {

const std::vector<std::string> kNames = {
    "mean_ttft_ms", "median_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms",
    "p90_tpot_ms",  "p99_tpot_ms",    "mean_itl_ms", "median_itl_ms", "p90_itl_ms",  "p99_itl_ms",
    "mean_e2el_ms", "median_e2el_ms", "p90_e2el_ms", "p99_e2el_ms"};

// A quickstart run of `n` requests at `rate` req/s written as a measured run (JSONL of every token's time).
std::string servesim_run(const std::filesystem::path& dir, const std::string& name, int n, double rate) {
  const std::string path = (dir / (name + ".jsonl")).string();
  const auto r = test::run_cli("run " + test::scenario_path("quickstart.toml") +
                               " --set workload.num_requests=" + std::to_string(n) +
                               " --set workload.arrival.rate=" + std::to_string(rate) + " --out " +
                               (dir / name).string() + " --tokens-out " + path);
  INFO(r.output);
  REQUIRE(r.code == 0);
  return path;
}

// A calibration file with a step-time jitter and stalls (sim/engine/step_jitter.h).
std::string jitter_fit(const std::filesystem::path& dir) {
  return test::write_file(dir / "jitter.toml",
                          "[engine.jitter]\nimpl = \"lognormal\"\nsigma = 0.3\n"
                          "stall_probability = 0.01\nstall_median = \"30ms\"\n");
}

nlohmann::json validate_json(const std::string& args) {
  const auto r = test::run_cli("validate " + test::scenario_path("quickstart.toml") + " " + args + " --json");
  INFO(r.output);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.output);
}

}  // namespace

TEST_CASE("validate: a servesim run replayed through its own scenario has ~0 % error", "[validate]") {
  const auto dir = test::temp_dir("validate-self");
  const std::string a = servesim_run(dir, "a", 200, 10.0);
  const auto out = test::run_cli("validate " + test::scenario_path("quickstart.toml") + " --measured " + a + " --json");
  INFO(out.output);
  REQUIRE(out.code == 0);
  const auto j = nlohmann::json::parse(out.output);
  REQUIRE(j["runs"].size() == 1);
  const auto& run = j["runs"][0];
  CHECK(run["measured"] == a);
  CHECK(run["requests"] == 200);
  // Exactly vLLM's 16 names, in that order, each with the three required keys.
  std::vector<std::string> names;
  const auto ordered = nlohmann::ordered_json::parse(out.output);
  for (const auto& [k, v] : ordered["runs"][0]["metrics"].items()) names.push_back(k);
  CHECK(names == kNames);
  for (const auto& n : kNames) {
    const auto& m = run["metrics"][n];
    INFO(n);
    REQUIRE(m.contains("measured"));
    REQUIRE(m.contains("predicted"));
    REQUIRE(m["error_pct"].is_number());
    CHECK(m["measured"].get<double>() > 0);
    CHECK(std::abs(m["error_pct"].get<double>()) < 0.05);
    const double err = 100.0 * (m["predicted"].get<double>() - m["measured"].get<double>()) /
                       m["measured"].get<double>();
    CHECK(m["error_pct"].get<double>() == Approx(err).margin(1e-9));
  }
  // No jitter in quickstart: one deterministic replay with the scenario's seed.
  CHECK(j["jitter"] == false);
  CHECK(j["seeds"] == nlohmann::json::array({1}));

  // The same run against a slower engine is measurably off: the comparison is not a tautology.
  const auto off = validate_json("--measured " + a + " --set 'engine.overhead.per_step=\"2ms\"'");
  CHECK(off["runs"][0]["metrics"]["median_tpot_ms"]["error_pct"].get<double>() > 10.0);
}

TEST_CASE("validate: several measured runs, one entry each, and the worst error across them", "[validate]") {
  const auto dir = test::temp_dir("validate-two");
  const std::string a = servesim_run(dir, "a", 150, 5.0);
  const std::string b = servesim_run(dir, "b", 120, 25.0);
  // Against a slower engine, so the errors differ between the two loads.
  const std::string slow = " --set 'engine.overhead.per_step=\"1ms\"'";
  const auto j = validate_json("--measured " + a + " --measured " + b + slow);
  REQUIRE(j["runs"].size() == 2);
  CHECK(j["runs"][0]["measured"] == a);
  CHECK(j["runs"][0]["requests"] == 150);
  CHECK(j["runs"][1]["measured"] == b);
  CHECK(j["runs"][1]["requests"] == 120);
  // Each entry is what validating that run alone gives.
  const auto only_b = validate_json("--measured " + b + slow);
  CHECK(only_b["runs"][0]["metrics"] == j["runs"][1]["metrics"]);
  bool runs_differ = false;
  for (const auto& n : kNames) {
    INFO(n);
    const double ea = j["runs"][0]["metrics"][n]["error_pct"].get<double>();
    const double eb = j["runs"][1]["metrics"][n]["error_pct"].get<double>();
    runs_differ = runs_differ || std::abs(ea - eb) > 0.5;
    const auto& w = j["worst"][n];
    CHECK(w["error_pct"].get<double>() == (std::abs(ea) >= std::abs(eb) ? ea : eb));
    CHECK(w["measured"] == (std::abs(ea) >= std::abs(eb) ? a : b));
  }
  CHECK(runs_differ);

  const auto t = test::run_cli("validate " + test::scenario_path("quickstart.toml") + " --measured " + a +
                               " --measured " + b + slow);
  INFO(t.output);
  REQUIRE(t.code == 0);
  CHECK(t.output.find("run 1: " + a + " (150 requests") != std::string::npos);
  CHECK(t.output.find("run 2: " + b + " (120 requests") != std::string::npos);
  CHECK(t.output.find("worst error across 2 runs") != std::string::npos);
}

TEST_CASE("validate with step jitter: predicted = mean over --seeds replays, with their spread", "[validate]") {
  const auto dir = test::temp_dir("validate-jitter");
  const std::string a = servesim_run(dir, "a", 150, 10.0);
  const std::string fit = jitter_fit(dir);
  const auto j = validate_json("--measured " + a + " --calibration " + fit + " --seeds 4");
  CHECK(j["jitter"] == true);
  CHECK(j["seeds"] == nlohmann::json::array({1, 2, 3, 4}));  // quickstart's seed 1, then +1
  const auto& m = j["runs"][0]["metrics"];
  // The mean of the four single-seed replays (--seed s --seeds 1) is the predicted figure; min/max/std theirs.
  std::vector<nlohmann::json> single;
  for (int s = 1; s <= 4; ++s) {
    const auto one = validate_json("--measured " + a + " --calibration " + fit + " --seeds 1 --seed " +
                                   std::to_string(s));
    CHECK(one["seeds"] == nlohmann::json::array({s}));
    single.push_back(one["runs"][0]["metrics"]);
  }
  int with_spread = 0;
  for (const auto& n : kNames) {
    INFO(n);
    double sum = 0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& one : single) {
      const double v = one[n]["predicted"].get<double>();
      sum += v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      CHECK(one[n]["predicted_std"].get<double>() == 0.0);
    }
    const double mean = sum / 4.0;
    double ss = 0;
    for (const auto& one : single) ss += std::pow(one[n]["predicted"].get<double>() - mean, 2);
    CHECK(m[n]["predicted"].get<double>() == Approx(mean).epsilon(1e-12));
    CHECK(m[n]["predicted_min"].get<double>() == lo);
    CHECK(m[n]["predicted_max"].get<double>() == hi);
    CHECK(m[n]["predicted_std"].get<double>() == Approx(std::sqrt(ss / 3.0)).epsilon(1e-9).margin(1e-12));
    with_spread += hi > lo;
  }
  // Jitter and stalls move the predicted tail: different seeds give different figures.
  CHECK(with_spread >= 12);
  CHECK(m["p99_ttft_ms"]["predicted_max"].get<double>() > m["p99_ttft_ms"]["predicted_min"].get<double>());

  // The table shows the spread column and says how the figures were made.
  const auto t = test::run_cli("validate " + test::scenario_path("quickstart.toml") + " --measured " + a +
                               " --calibration " + fit + " --seeds 4");
  REQUIRE(t.code == 0);
  CHECK(t.output.find("mean of 4 replays per run (seeds 1..4)") != std::string::npos);
  CHECK(t.output.find("min..max over seeds") != std::string::npos);

  // [sim] jitter = "off": the mean model, one deterministic replay whatever --seeds says.
  const auto off = validate_json("--measured " + a + " --calibration " + fit + " --seeds 4 --set sim.jitter='\"off\"'");
  CHECK(off["jitter"] == false);
  CHECK(off["seeds"].size() == 1);
  CHECK(std::abs(off["runs"][0]["metrics"]["p99_ttft_ms"]["error_pct"].get<double>()) < 0.05);
  CHECK(off["runs"][0]["metrics"]["p99_ttft_ms"]["predicted_min"] ==
        off["runs"][0]["metrics"]["p99_ttft_ms"]["predicted_max"]);
}

TEST_CASE("validate: the same command twice prints the same bytes", "[validate]") {
  const auto dir = test::temp_dir("validate-determinism");
  const std::string a = servesim_run(dir, "a", 100, 10.0);
  const std::string b = servesim_run(dir, "b", 80, 20.0);
  const std::string cmd = "validate " + test::scenario_path("quickstart.toml") + " --measured " + a +
                          " --measured " + b + " --calibration " + jitter_fit(dir) + " --seeds 3";
  for (const std::string json : {"", " --json"}) {
    const auto x = test::run_cli(cmd + json);
    const auto y = test::run_cli(cmd + json);
    REQUIRE(x.code == 0);
    CHECK(x.output.size() > 500);
    CHECK(x.output == y.output);
  }
}

TEST_CASE("validate rejects bad input with one line and exit 2", "[validate][bad-input]") {
  const auto dir = test::temp_dir("validate-bad");
  const std::string a = servesim_run(dir, "a", 20, 10.0);
  const std::string q = test::scenario_path("quickstart.toml");
  const std::string empty = test::write_file(dir / "empty.jsonl", "");
  const std::string blank = test::write_file(dir / "blank.jsonl", "\n\n");
  struct Case {
    std::string args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"--measured " + empty, "empty.jsonl"},
      {"--measured " + blank, "blank.jsonl"},
      {"--measured " + a + " --measured " + (dir / "missing.jsonl").string(), "missing.jsonl"},
      {"--measured " + dir.string(), dir.string()},
      {"--measured " + a + " --seeds 0", "--seeds"},
      {"--measured " + a + " --seeds 100000", "--seeds"},
      {"--measured " + a + " --seeds -3", "--seeds"},
      {"--measured " + a + " --seeds many", "--seeds"},
      {"--measured " + a + " --calibration " + (dir / "nofit.toml").string(), "nofit.toml"},
      {"", "--measured"},
  };
  for (const auto& c : cases) {
    const auto r = test::run_cli("validate " + q + " " + c.args);
    INFO(c.args << "\n" << r.output);
    CHECK(r.code == 2);
    CHECK(test::count_lines(r.output) == 1);
    CHECK(r.output.find(c.says) != std::string::npos);
  }
}

TEST_CASE("validation: mean, spread and error of figures, missing figures stay empty", "[validate]") {
  auto stats = [](double mean, double median, double p90, double p99, std::int64_t count) {
    Stats s;
    s.mean = mean;
    s.median = median;
    s.p90 = p90;
    s.p99 = p99;
    s.count = count;
    return s;
  };
  // Measured: TTFT mean 100 ms, TPOT median 0 ms (no relative error), no ITL at all.
  const MetricStats measured = {{"ttft", stats(100, 80, 150, 200, 10)},
                                {"tpot", stats(10, 0, 12, 14, 10)},
                                {"itl", stats(0, 0, 0, 0, 0)},
                                {"e2el", stats(1000, 900, 1500, 2000, 10)}};
  std::vector<MetricStats> predicted;
  for (const double f : {1.0, 1.2, 1.4}) {
    predicted.push_back({{"ttft", stats(100 * f, 80, 150, 200, 10)},
                         {"tpot", stats(10, 1, 12, 14, 10)},
                         {"itl", stats(5, 5, 5, 5, 10)},
                         {"e2el", stats(1000, 900, 1500, 2000, 10)}});
  }
  const RunValidation r = compare_run("m.jsonl", 10, 10, measured, predicted);
  REQUIRE(r.metrics.size() == 16);
  auto at = [&](const std::string& n) {
    for (const auto& [k, v] : r.metrics) {
      if (k == n) return v;
    }
    FAIL("no " << n);
    return MetricComparison{};
  };
  const auto ttft = at("mean_ttft_ms");
  CHECK(*ttft.predicted == Approx(120.0));
  CHECK(ttft.predicted_min == Approx(100.0));
  CHECK(ttft.predicted_max == Approx(140.0));
  CHECK(ttft.predicted_std == Approx(20.0));  // sample standard deviation of 100, 120, 140
  CHECK(*ttft.error_pct == Approx(20.0));
  CHECK_FALSE(at("median_tpot_ms").error_pct.has_value());  // measured 0 ms
  CHECK(*at("median_tpot_ms").predicted == Approx(1.0));
  CHECK_FALSE(at("mean_itl_ms").measured.has_value());      // no measured ITL
  CHECK_FALSE(at("mean_itl_ms").error_pct.has_value());
  CHECK(*at("p99_e2el_ms").error_pct == 0.0);

  const auto j = validation_json({r}, ValidationSetup{"s.toml", true, {7, 8, 9}});
  CHECK(j["runs"][0]["metrics"]["median_tpot_ms"]["error_pct"].is_null());
  CHECK(j["runs"][0]["metrics"]["mean_itl_ms"]["measured"].is_null());
  CHECK(j["worst"]["mean_ttft_ms"]["error_pct"] == Approx(20.0));
  CHECK_FALSE(j["worst"].contains("median_tpot_ms"));
  const std::string table = validation_table({r}, ValidationSetup{"s.toml", true, {7, 8, 9}});
  CHECK(table.find("n/a") != std::string::npos);
  CHECK(table.find("+20.00") != std::string::npos);

  CHECK(validation_seeds(5, 3) == std::vector<std::uint64_t>{5, 6, 7});
  CHECK(validation_seeds(std::numeric_limits<std::uint64_t>::max(), 2) ==
        std::vector<std::uint64_t>{std::numeric_limits<std::uint64_t>::max(), 0});
  CHECK(test::input_error([] { (void)validation_seeds(0, 0); }).find("--seeds 0") != std::string::npos);
  CHECK(test::input_error([] { (void)validation_seeds(0, kMaxValidationSeeds + 1) ; }).find("--seeds") !=
        std::string::npos);
}
