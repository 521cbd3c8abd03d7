// `servesim run` with further observers of the run (the trace and time-series writers of --trace and
// --timeseries) next to its standard outputs.
#pragma once
#include <string>
#include <vector>

#include "models/common/units.h"
#include "sim/cli/run.h"
#include "sim/metrics/sink.h"

namespace servesim {

// As run_to_files(loader, files, dir, tokens_out), also reporting the run to each of `extra.sinks` (not owned;
// called after the Recorder, in order) and writing `extra.link_stats`; the standard streams are files' own. The
// sinks write into streams of `files`, so a failed run leaves none of them.
[[nodiscard]] RunOutput run_to_files(const ScenarioLoader& loader, OutputFiles& files, const std::string& dir,
                                     const std::string& tokens_out, RunStreams extra);

// When the run's simulated clock stopped (summary.json servesim.sim_end_s), in ns.
[[nodiscard]] Ns run_end(const RunOutput& out);

}  // namespace servesim
