// calibrate trace recovers a planted engine overhead; validate reports a replay of the same run as exact.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "helpers.h"

using namespace servesim;

namespace {

double us_of(const std::string& toml, const std::string& key) {
  const auto p = toml.find(key + " = \"");
  REQUIRE(p != std::string::npos);
  return std::stod(toml.substr(p + key.size() + 4));
}

// 300 quickstart requests run with a planted overhead (700 us/step + 25 us/request + 0.5 us/token); returns
// the JSONL of their token times.
std::string planted_run(const std::filesystem::path& dir) {
  const std::string planted = (dir / "planted.jsonl").string();
  const auto gen = test::run_cli("run " + test::scenario_path("quickstart.toml") + " --set workload.num_requests=300" +
                                 " --set 'engine.overhead={per_step=\"700us\", per_request=\"25us\", per_token=\"0.5us\"}'" +
                                 " --out " + (dir / "run").string() + " --tokens-out " + planted);
  REQUIRE(gen.code == 0);
  return planted;
}

}  // namespace

TEST_CASE("calibrate trace recovers a planted per-step overhead; validate agrees", "[calibrate-trace]") {
  const auto dir = test::temp_dir("planted");
  const std::string q = test::scenario_path("quickstart.toml");
  const std::string planted = planted_run(dir);
  // The default overhead of the scenario (400 us + 10 us/request) is the starting point.
  const std::string fitted = (dir / "fitted.toml").string();
  const auto fit = test::run_cli("calibrate trace " + planted + " --scenario " + q + " --out " + fitted);
  INFO(fit.output);
  REQUIRE(fit.code == 0);
  const std::string toml = test::read_file(fitted);
  CHECK(us_of(toml, "per_step") == Approx(700.0).epsilon(0.02));
  CHECK(us_of(toml, "per_request") == Approx(25.0).epsilon(0.02));
  CHECK(us_of(toml, "per_token") == Approx(0.5).epsilon(0.02));

  // validate with the fitted terms: every statistic within 1 %.
  const auto v = test::run_cli("validate " + q + " --measured " + planted + " --json" +
                               " --set 'engine.overhead={per_step=\"" + std::to_string(us_of(toml, "per_step")) +
                               "us\", per_request=\"" + std::to_string(us_of(toml, "per_request")) +
                               "us\", per_token=\"" + std::to_string(us_of(toml, "per_token")) + "us\"}'");
  INFO(v.output);
  REQUIRE(v.code == 0);
  const auto j = nlohmann::json::parse(v.output);
  CHECK(j["requests"] == 300);
  for (const char* m : {"ttft", "tpot", "itl", "e2el"}) {
    for (const char* s : {"mean", "p50", "p90", "p99"}) {
      CHECK(std::abs(j[m][s]["error_pct"].get<double>()) < 1.0);
    }
  }
  // With the scenario's default overhead the same replay is measurably off: validate is not a tautology.
  const auto off = test::run_cli("validate " + q + " --measured " + planted + " --json");
  REQUIRE(off.code == 0);
  CHECK(std::abs(nlohmann::json::parse(off.output)["tpot"]["mean"]["error_pct"].get<double>()) > 1.0);
}

TEST_CASE("validate and calibrate trace reject bad measured files", "[calibrate-trace][bad-input]") {
  const auto dir = test::temp_dir("badmeasured");
  const std::string q = test::scenario_path("quickstart.toml");
  test::write_file(dir / "bad.jsonl", "{\"arrival_s\": 0.0, \"prompt_tokens\": 10, \"output_tokens\": 2, \"token_times_s\": [0.1]}\n");
  const auto r = test::run_cli("validate " + q + " --measured " + (dir / "bad.jsonl").string());
  CHECK(r.code == 2);
  CHECK(r.output.find("bad.jsonl:1") != std::string::npos);
  const auto t = test::run_cli("calibrate trace " + (dir / "missing.jsonl").string() + " --scenario " + q);
  CHECK(t.code == 2);
}

TEST_CASE("a number that overflows a double in a measured run is an input error", "[calibrate-trace][bad-input]") {
  const auto dir = test::temp_dir("overflow");
  test::write_file(dir / "o.jsonl",
                   "{\"arrival_s\": 0.5, \"prompt_tokens\": 128, \"output_tokens\": 1, \"token_times_s\": [1e999]}\n");
  const auto r = test::run_cli("validate " + test::scenario_path("quickstart.toml") + " --measured " + (dir / "o.jsonl").string());
  CHECK(r.code == 2);
  CHECK(r.output.find("o.jsonl:1") != std::string::npos);
}

TEST_CASE("calibrate trace groups jittered client timestamps with a wider window", "[calibrate-trace]") {
  const auto dir = test::temp_dir("jitter");
  const std::string q = test::scenario_path("quickstart.toml");
  const std::string planted = planted_run(dir);
  // Each token time is moved later by 0..40 us (deterministic): the tokens of one step no longer share a time.
  std::istringstream in(test::read_file(planted));
  std::string line, jittered;
  std::size_t id = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    auto& times = j["token_times_s"];
    for (std::size_t k = 0; k < times.size(); ++k) {
      times[k] = times[k].get<double>() + double((id * 131 + k * 7919) % 41) * 1e-6;
    }
    jittered += j.dump() + "\n";
    ++id;
  }
  const std::string path = test::write_file(dir / "jittered.jsonl", jittered);
  const std::string fitted = (dir / "fitted.toml").string();
  const auto fit = test::run_cli("calibrate trace " + path + " --scenario " + q + " --group-window 60us --out " + fitted);
  INFO(fit.output);
  REQUIRE(fit.code == 0);
  const std::string toml = test::read_file(fitted);
  CHECK(us_of(toml, "per_step") == Approx(700.0).epsilon(0.03));
  CHECK(us_of(toml, "per_request") == Approx(25.0).epsilon(0.15));
  CHECK(us_of(toml, "per_token") == Approx(0.5).epsilon(0.15));
  // The default 20 us window splits most steps' tokens, so far fewer gaps match the replayed schedule.
  auto gaps = [](const std::string& text) {
    const auto p = text.find(" gaps in the regression");
    REQUIRE(p != std::string::npos);
    const auto start = text.rfind(", ", p);
    return std::stol(text.substr(start + 2, p - start - 2));
  };
  const std::string narrow = (dir / "narrow.toml").string();
  REQUIRE(test::run_cli("calibrate trace " + path + " --scenario " + q + " --out " + narrow).code == 0);
  CHECK(gaps(toml) > 10 * gaps(test::read_file(narrow)));

  const auto bad = test::run_cli("calibrate trace " + path + " --scenario " + q + " --group-window 5parsecs");
  CHECK(bad.code == 2);
  CHECK(bad.output.find("--group-window") != std::string::npos);
}
