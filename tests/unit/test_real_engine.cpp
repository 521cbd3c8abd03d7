// Calibrate-then-predict on a real engine's measured run (calibrate/data/runs/h200-transformers-cb, must-show 3 of
// the calibration work): fitted on the online run alone, the replay of that run comes within 5 % at P50 TTFT and
// TPOT, 15 % at P99 TPOT and 30 % at P99 TTFT (mean over the default 5 seeds, in-sample).
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>

#include "helpers.h"

using namespace servesim;

TEST_CASE("a real engine's online run: calibrated on it, validate predicts it", "[real-engine]") {
  const std::string run = test::source_dir() + "/calibrate/data/runs/h200-transformers-cb/online_rate1.0.jsonl";
  const std::string scenario = test::scenario_path("engines/h200-transformers-cb.toml");
  const auto dir = test::temp_dir("real");
  const std::string fit = (dir / "fit.toml").string();
  const auto f = test::run_cli("calibrate trace " + run + " --scenario " + scenario + " --out " + fit);
  INFO(f.output);
  REQUIRE(f.code == 0);
  // The shipped fit is what this command writes (from its tables on; the header names the paths given).
  const auto tables = [](const std::string& text) { return text.substr(text.find("[engine.overhead]")); };
  CHECK(tables(test::read_file(fit)) ==
        tables(test::read_file(test::source_dir() + "/calibrate/data/runs/h200-transformers-cb/fit-online.toml")));
  const auto v = test::run_cli("validate " + scenario + " --calibration " + fit + " --measured " + run + " --json");
  INFO(v.output);
  REQUIRE(v.code == 0);
  const auto j = nlohmann::json::parse(v.output);
  // The run object holds exactly what `validate --json` promises.
  CHECK(j["runs"][0].size() == 3);
  CHECK(j["runs"][0].contains("measured"));
  CHECK(j["runs"][0]["requests"] == 80);
  const auto& m = j["runs"][0]["metrics"];
  CHECK(m.size() == 16);
  CHECK(std::abs(m["median_ttft_ms"]["error_pct"].get<double>()) <= 5.0);
  CHECK(std::abs(m["median_tpot_ms"]["error_pct"].get<double>()) <= 5.0);
  CHECK(std::abs(m["p99_tpot_ms"]["error_pct"].get<double>()) <= 15.0);
  CHECK(std::abs(m["p99_ttft_ms"]["error_pct"].get<double>()) <= 30.0);
}
