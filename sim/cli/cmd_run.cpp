// servesim run SCENARIO [--set path=VALUE]... [--seed N] [--out DIR]
#include <charconv>
#include <iostream>

#include "models/common/error.h"
#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/metrics/summary.h"

namespace servesim {

void ScenarioArgs::add_to(CLI::App* cmd, bool with_seed) {
  cmd->add_option("scenario", path, "scenario TOML file")->required();
  cmd->add_option("--calibration", calibrations,
                  "merge this TOML file (e.g. a fit of `calibrate trace`) over the scenario before --set (repeatable)");
  cmd->add_option("--set", sets, "replace the node at a dotted path with VALUE parsed as TOML (path=VALUE)");
  if (with_seed) {
    // Read as text and checked here: CLI11 would wrap "-1" to 2^64 - 1 and saturate 2^64.
    cmd->add_option_function<std::string>(
        "--seed", [this](const std::string& text) { seed = parse_seed(text); },
        "random seed, an integer in [0, 2^64 - 1] (overrides [sim] seed)");
  }
}

std::uint64_t parse_seed(const std::string& text) {
  std::uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) {
    throw InputError("--seed: '" + text + "' is not an integer in [0, 18446744073709551615]");
  }
  return v;
}

ScenarioOptions ScenarioArgs::options() const {
  ScenarioOptions o;
  for (const auto& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError("--set '" + s + "': expected path=VALUE");
    o.sets.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  o.seed = seed;
  o.calibrations = calibrations;
  return o;
}

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "simulate a scenario and report latency and throughput");
  auto args = std::make_shared<ScenarioArgs>();
  auto out_dir = std::make_shared<std::string>("out");
  auto tokens_out = std::make_shared<std::string>();
  args->add_to(cmd, true);
  cmd->add_option("--out", *out_dir, "output directory for summary.json and requests.csv")->capture_default_str();
  cmd->add_option("--tokens-out", *tokens_out,
                  "also write every request's token times as JSONL (the measured-run format of validate)");
  cmd->callback([args, out_dir, tokens_out] {
    const ScenarioLoader loader(args->path, args->options());
    OutputFiles files;
    if (!tokens_out->empty()) files.expect(*tokens_out);
    expect_run_outputs(files, *out_dir);
    const RunOutput out = run_to_files(loader, files, *out_dir, *tokens_out);
    files.commit();
    std::cout << format_summary(out.summary);
    std::cout << "wrote " << *out_dir << "/summary.json and " << *out_dir << "/requests.csv\n";
  });
}

}  // namespace servesim
