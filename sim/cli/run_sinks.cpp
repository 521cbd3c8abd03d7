#include "sim/cli/run_sinks.h"

#include <cmath>
#include <cstdint>
#include <filesystem>

namespace servesim {

RunOutput run_to_files(const ScenarioLoader& loader, OutputFiles& files, const std::string& dir,
                       const std::string& tokens_out, RunStreams extra) {
  RunStreams streams = std::move(extra);
  streams.tokens_jsonl = nullptr;
  streams.requests_csv = &files.stream((std::filesystem::path(dir) / "requests.csv").string());
  if (!tokens_out.empty()) streams.tokens_jsonl = &files.stream(tokens_out);
  RunOutput out = run_scenario(loader, streams);
  files.add((std::filesystem::path(dir) / "summary.json").string(), out.summary.dump(2) + "\n");
  return out;
}

Ns run_end(const RunOutput& out) {
  const double s = out.summary.at("servesim").at("sim_end_s").get<double>();
  return Ns{static_cast<std::int64_t>(std::llround(s * 1e9))};
}

}  // namespace servesim
