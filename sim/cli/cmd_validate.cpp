// servesim validate SCENARIO --measured FILE [--set ...] [--json]
// Replays a measured run's arrivals and lengths through the scenario's engine and prints measured vs predicted
// mean / P50 / P90 / P99 of TTFT, TPOT, ITL and E2EL with the relative error.
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/metrics/compare.h"

namespace servesim {

void add_validate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("validate", "compare a measured run with the simulation of the same requests");
  auto args = std::make_shared<ScenarioArgs>();
  auto measured = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  args->add_to(cmd, false);
  cmd->add_option("--measured", *measured, "measured run: JSONL or vLLM bench serve JSON with details")->required();
  cmd->add_flag("--json", *json, "print JSON");
  cmd->callback([=] {
    const auto reqs = read_measured_run(*measured);
    const ScenarioLoader loader(args->path, replay_options(args->options(), *measured));
    const RunOutput run = run_scenario(loader);
    const MetricStats meas = stats_of_measured(reqs);
    const MetricStats pred = stats_of_run(run.recorder);
    nlohmann::ordered_json j;
    j["requests"] = reqs.size();
    j["completed"] = run.summary["completed"];
    std::string table = fmt::format("{} requests replayed through {}\n{:<6}{:<8}{:>14}{:>14}{:>10}\n", reqs.size(),
                                    args->path, "metric", "stat", "measured_ms", "predicted_ms", "error %");
    for (const char* m : {"ttft", "tpot", "itl", "e2el"}) {
      const Stats& a = meas.at(m);
      const Stats& b = pred.at(m);
      const std::vector<std::pair<const char*, std::pair<double, double>>> rows = {
          {"mean", {a.mean, b.mean}}, {"p50", {a.median, b.median}}, {"p90", {a.p90, b.p90}}, {"p99", {a.p99, b.p99}}};
      for (const auto& [stat, v] : rows) {
        const double err = v.first != 0 ? 100.0 * (v.second - v.first) / v.first : 0.0;
        j[m][stat] = {{"measured_ms", v.first}, {"predicted_ms", v.second}, {"error_pct", err}};
        table += fmt::format("{:<6}{:<8}{:>14.3f}{:>14.3f}{:>+10.2f}\n", m, stat, v.first, v.second, err);
      }
    }
    if (*json) {
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << table;
    }
  });
}

}  // namespace servesim
