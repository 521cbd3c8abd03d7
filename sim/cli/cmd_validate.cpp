// servesim validate SCENARIO --measured RUN [--measured RUN...] [--calibration FIT.toml]... [--set ...]
//                   [--seed N] [--seeds N] [--json]
// Replays each measured run's arrivals and lengths through the scenario's engine and prints, per run, measured vs
// predicted mean / P50 / P90 / P99 of TTFT, TPOT, ITL and E2EL (ms) with the relative error in %, and the worst
// error across runs (sim/metrics/validation.h).
//
// With step jitter on (an [engine.jitter] table in the scenario or a calibration, and no `[sim] jitter = "off"`),
// every run is replayed once per seed: seeds = the scenario's seed (or --seed) s, s + 1, ..., s + N - 1 with
// N = --seeds (default 5); the predicted figure is the mean over those replays, shown with its min..max (the
// JSON adds the sample standard deviation). Without jitter a replay is deterministic (the measured run fixes
// arrivals and lengths), so each run is replayed once, with seed s, whatever --seeds says.
//
// A measured request longer than the scenario's engine.max_model_len (prompt + output tokens) is an input error
// naming the measured file: the replay would reject it and compare different requests. A measured figure of 0 ms
// has no relative error: it shows as "n/a" (JSON null).
#include <algorithm>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "models/common/error.h"
#include "models/common/input_file.h"
#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/metrics/compare.h"
#include "sim/metrics/validation.h"

namespace servesim {

void add_validate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("validate", "compare measured runs with the simulation of the same requests");
  auto args = std::make_shared<ScenarioArgs>();
  auto measured = std::make_shared<std::vector<std::string>>();
  auto num_seeds = std::make_shared<std::int64_t>(kDefaultValidationSeeds);
  auto json = std::make_shared<bool>(false);
  args->add_to(cmd, true);
  cmd->add_option("--measured", *measured,
                  "measured run: JSONL or vLLM bench serve JSON with details (repeatable: one comparison per run)")
      ->required();
  cmd->add_option("--seeds", *num_seeds,
                  fmt::format("with step jitter on, replays per run (seeds s, s+1, ...; at most {}); without jitter "
                              "a replay is deterministic and runs once",
                              kMaxValidationSeeds))
      ->capture_default_str();
  cmd->add_flag("--json", *json, "print JSON");
  cmd->callback([=] {
    // Everything that can be checked is checked before the first simulation.
    (void)validation_seeds(0, *num_seeds);
    const ScenarioOptions base = args->options();
    std::vector<std::vector<MeasuredRequest>> runs_in;
    for (const auto& path : *measured) {
      check_input_file(path, "measured run");
      runs_in.push_back(read_measured_run(path));
      if (runs_in.back().empty()) throw InputError(path + ": no requests");
    }

    ValidationSetup setup;
    setup.scenario = args->path;
    std::vector<RunValidation> results;
    for (std::size_t i = 0; i < measured->size(); ++i) {
      const std::string& path = (*measured)[i];
      const ScenarioOptions replay = replay_options(base, path);
      auto first = std::make_unique<ScenarioLoader>(args->path, replay);
      // The measured server served every request of the run; one the scenario's engine would reject (prompt +
      // output tokens > max_model_len) means the scenario is not that server: refuse, rather than drop it from the
      // replay and compare different sets of requests.
      check_fits_max_model_len(runs_in[i], first->scenario().replica.max_model_len, path);
      if (i == 0) {
        // The jitter switch and the seed come from the scenario (with its calibrations and sets), the same for
        // every run.
        setup.jitter = first->scenario().replica.jitter.active();
        const std::uint64_t s = first->scenario().seed;
        setup.seeds = setup.jitter ? validation_seeds(s, *num_seeds) : std::vector<std::uint64_t>{s};
      }
      std::vector<MetricStats> predicted;
      std::int64_t completed = -1;
      for (const std::uint64_t seed : setup.seeds) {
        std::unique_ptr<ScenarioLoader> loader;
        if (first && first->scenario().seed == seed) {
          loader = std::move(first);
        } else {
          ScenarioOptions o = replay;
          o.seed = seed;
          loader = std::make_unique<ScenarioLoader>(args->path, o);
        }
        const RunOutput run = run_scenario(*loader);
        predicted.push_back(stats_of_run(run.recorder));
        const auto done = static_cast<std::int64_t>(run.recorder.records().size());
        completed = completed < 0 ? done : std::min(completed, done);
      }
      results.push_back(compare_run(path, runs_in[i].size(), completed, stats_of_measured(runs_in[i]), predicted));
    }
    if (*json) {
      std::cout << validation_json(results, setup).dump(2) << "\n";
    } else {
      std::cout << validation_table(results, setup);
    }
  });
}

}  // namespace servesim
