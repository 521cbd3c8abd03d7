// Subcommands of the servesim CLI. Each adds itself to the app; its callback runs during parsing and may throw
// InputError (exit code 2, handled in main).
#pragma once
#include <CLI/CLI.hpp>

#include "sim/scenario/scenario.h"

namespace servesim {

void add_run_command(CLI::App& app);
void add_step_command(CLI::App& app);
void add_calibrate_command(CLI::App& app);
void add_validate_command(CLI::App& app);
void add_collective_command(CLI::App& app);
void add_ingest_command(CLI::App& app);
void add_explain_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_transfer_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_merge_command(CLI::App& app);
void add_plan_command(CLI::App& app);

// Shared by every subcommand that takes a scenario: --set path=VALUE (repeatable) and --seed N.
struct ScenarioArgs {
  std::string path;
  std::vector<std::string> calibrations;  // --calibration FILE, in order
  std::vector<std::string> sets;
  std::optional<std::uint64_t> seed;
  void add_to(CLI::App* cmd, bool with_seed);
  [[nodiscard]] ScenarioOptions options() const;
};

// `servesim explain` (also `run --explain`): prints the explanation of the run directory `dir`.
struct ExplainArgs {
  std::string dir;
  bool verify = false;    // re-run with the lever and print the P99 before -> after
  std::string scenario;   // overrides the scenario summary.json records (for --verify)
  bool json = false;
};
void explain_command(const ExplainArgs& args);

// --seed's text as a seed: decimal digits only, at most 2^64 - 1; anything else (a sign, 2^64) throws InputError.
[[nodiscard]] std::uint64_t parse_seed(const std::string& text);

}  // namespace servesim
