// Runs one scenario to completion (or to its horizon) and collects the results.
#pragma once
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/scenario/scenario.h"
#include "sim/metrics/recorder.h"

namespace servesim {

struct RunOutput {
  Recorder recorder;
  nlohmann::ordered_json summary;
  std::uint64_t events = 0;
};

class OutputFiles;

// Where a run streams its per-request outputs as requests finish (either may be null).
struct RunStreams {
  std::ostream* requests_csv = nullptr;  // requests.csv
  std::ostream* tokens_jsonl = nullptr;  // every finished request's token times (--tokens-out)
  // Further observers of the run (trace and time-series writers), called after the Recorder; not owned.
  std::vector<RunSink*> sinks;
  // Per-link bytes and utilisation of the shared network (KV transfers, and the inter-node traffic of replicas
  // that cross nodes when it is on the network: sim/cluster/step_network.h), every `link_stats_interval`
  // (InputError for a scenario without that network).
  std::ostream* link_stats = nullptr;
  Ns link_stats_interval{1'000'000'000};
};

// Whether a run of `sc` has the shared flow-level network (what --link-stats reports): prefill and decode pools,
// or, with [sim] network_contention, two or more replicas whose communication crosses nodes
// (sim/cluster/step_network.h).
[[nodiscard]] bool has_shared_network(const Scenario& sc);
// The one line for --link-stats on a scenario without it.
[[nodiscard]] std::string no_network_message(const std::string& file);

// With `logs`, the recorder keeps every token's time in memory (token_log()).
// Every run ends with check_run_accounting (std::logic_error when the books do not balance); a run in which every
// request was rejected at admission is an InputError naming the first rejection's reason.
[[nodiscard]] RunOutput run_scenario(const ScenarioLoader& loader, bool logs = false);
[[nodiscard]] RunOutput run_scenario(const ScenarioLoader& loader, const RunStreams& streams);

// `servesim run`'s outputs: runs the scenario streaming requests.csv (and, unless `tokens_out` is empty, the token
// log) into temporary files of `files`, then adds summary.json; the caller commits. On any exception the
// temporaries go with `files`.
[[nodiscard]] RunOutput run_to_files(const ScenarioLoader& loader, OutputFiles& files, const std::string& dir,
                                     const std::string& tokens_out);

// The run's requests in the measured-run JSONL format (arrival, lengths, every token time); needs logs.
void write_tokens_jsonl(std::ostream& out, const RunOutput& run);

// A loader that replays a measured run's arrivals and lengths through the scenario's engine.
[[nodiscard]] ScenarioOptions replay_options(ScenarioOptions base, const std::string& measured_path);

// Output files of a command, written together: every file goes to a temporary name first and is renamed only
// when all were written, so a failure leaves no half-written output (and no temporary behind).
// Files opened with stream() are written while the command runs, to their temporary names. An OutputFiles that is
// destroyed uncommitted (an error) removes its temporaries and the directories expect() created, if still empty.
class OutputFiles {
 public:
  OutputFiles() = default;
  OutputFiles(const OutputFiles&) = delete;
  OutputFiles& operator=(const OutputFiles&) = delete;
  ~OutputFiles();
  // Checks now, before any simulation, that `path` can be written (creating its directory); throws InputError.
  void expect(const std::string& path);
  // Creates directory `dir` (and its parents), remembered for removal if the command fails; throws InputError.
  void make_directory(const std::string& dir);
  void add(const std::string& path, std::string text);
  // Opens `path`'s temporary file now; what is written to the stream becomes `path` at commit.
  std::ostream& stream(const std::string& path);
  void commit();

 private:
  void abort() noexcept;
  std::vector<std::pair<std::string, std::string>> files_;
  std::vector<std::pair<std::string, std::unique_ptr<std::ofstream>>> streams_;
  std::vector<std::string> created_dirs_;  // deepest first
};

// Declares summary.json and requests.csv in `dir` (the output directory is created, and removed on failure).
void expect_run_outputs(OutputFiles& files, const std::string& dir);

// Writes `text` to `path` through a temporary file and a rename.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace servesim
