// Runs one scenario to completion (or to its horizon) and collects the results.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "sim/cli/scenario.h"
#include "sim/metrics/recorder.h"

namespace servesim {

struct RunOutput {
  Recorder recorder;
  nlohmann::ordered_json summary;
  std::uint64_t events = 0;
};

// With `logs`, the recorder keeps every token's time (for --tokens-out).
[[nodiscard]] RunOutput run_scenario(const ScenarioLoader& loader, bool logs = false);

// The run's requests in the measured-run JSONL format (arrival, lengths, every token time); needs logs.
void write_tokens_jsonl(std::ostream& out, const RunOutput& run);

// A loader that replays a measured run's arrivals and lengths through the scenario's engine.
[[nodiscard]] ScenarioOptions replay_options(ScenarioOptions base, const std::string& measured_path);

// Output files of a command, written together: every file goes to a temporary name first and is renamed only
// when all were written, so a failure leaves no half-written output (and no temporary behind).
class OutputFiles {
 public:
  // Checks now, before any simulation, that `path` can be written (creating its directory); throws InputError.
  void expect(const std::string& path);
  void add(const std::string& path, std::string text);
  void commit();

 private:
  std::vector<std::pair<std::string, std::string>> files_;
};

// summary.json and requests.csv in `dir`.
void add_run_outputs(OutputFiles& files, const std::string& dir, const RunOutput& out);
void expect_run_outputs(OutputFiles& files, const std::string& dir);

// Writes `text` to `path` through a temporary file and a rename.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace servesim
