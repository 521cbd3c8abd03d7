// servesim explain RUN_DIR [--verify] [--scenario PATH] [--json]
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "models/common/error.h"
#include "sim/cli/commands.h"
#include "sim/io/run_dir.h"
#include "sim/metrics/explain.h"

namespace servesim {

void explain_command(const ExplainArgs& a) {
  const RunDir run = read_run_dir(a.dir);
  const Explanation e = explain_run(run);
  std::optional<Verification> v;
  if (a.verify) {
    RunRecipe recipe;
    if (a.scenario.empty()) {
      recipe = run_recipe(run.summary);
    } else {
      try {
        recipe = run_recipe(run.summary);
      } catch (const InputError&) {  // no recorded run: the scenario as given, its own seed, no sets
      }
      recipe.scenario = a.scenario;
    }
    if (e.cause != Cause::none && !e.lever_sets.empty()) {
      if (a.scenario.empty() && !std::filesystem::exists(recipe.scenario)) {
        throw InputError(recipe.scenario + ": the scenario summary.json records is not found from here (it is " +
                         "relative to where the run was made); give --scenario PATH");
      }
      v = verify_lever(e, recipe);
    }
  }
  if (a.json) {
    nlohmann::json j = e.to_json();
    if (a.verify && !v) j["verify"] = nullptr;  // nothing to verify: no lever
    if (v) {
      j["verify"] = {{"metric", v->metric},
                     {"before_p99_ms", v->before_p99_ms},
                     {"after_p99_ms", v->after_p99_ms},
                     {"sets", v->sets},
                     {"improved", v->improved()}};
    }
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << e.text;
  if (a.verify && !v) std::cout << "Verify: nothing to verify (no single dominant cause, no lever)\n";
  if (v) {
    const std::string m = v->metric == "ttft" ? "TTFT" : "TPOT";
    const double change = v->before_p99_ms > 0 ? (v->after_p99_ms / v->before_p99_ms - 1.0) * 100.0 : 0.0;
    std::cout << fmt::format("Verify: {} P99 {:.2f} ms -> {:.2f} ms ({:+.1f}%) with the lever: {}\n", m,
                             v->before_p99_ms, v->after_p99_ms, change, v->improved() ? "improved" : "NOT improved");
    const std::string key = "p99_" + v->metric + "_ms";
    const double recorded = run.summary.value(key, e.metric_p99_ms);
    if (std::abs(recorded - v->before_p99_ms) > 1e-6 * std::max(1.0, recorded)) {
      std::cout << fmt::format(
          "  note: the re-run's P99 differs from the run directory's ({:.2f} ms): the scenario or servesim changed "
          "since the run\n",
          recorded);
    }
  }
}

void add_explain_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "explain", "why is P99 high? compare the P99 and median cohorts of TTFT and TPOT of a run directory");
  auto args = std::make_shared<ExplainArgs>();
  cmd->add_option("run_dir", args->dir, "output directory of `servesim run` (summary.json, requests.csv)")
      ->required();
  cmd->add_flag("--verify", args->verify,
                "re-run the run's scenario as it was and with the suggested lever; print the P99 before -> after");
  cmd->add_option("--scenario", args->scenario,
                  "scenario TOML file for --verify (default: the one summary.json records)");
  cmd->add_flag("--json", args->json, "print the explanation as JSON");
  cmd->callback([args] { explain_command(*args); });
}

}  // namespace servesim
