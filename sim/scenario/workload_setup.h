// The workload part of a scenario: [workload] turned into a request source (sim/workload/workload.h), and the
// check that its requests can be admitted at all.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "models/common/config.h"
#include "sim/workload/workload.h"

namespace servesim {

// A request source from [workload] (arrival process, prompt and output lengths, and the requests' content where
// the process knows it: a Mooncake trace, the conversation generator; paths relative to the file that names
// them), drawing from `seed`. Throws InputError naming the key (a missing [workload], an unknown
// process, a trace that cannot be read).
[[nodiscard]] std::unique_ptr<WorkloadSource> build_workload(const Config& doc, const PathResolver& paths,
                                                             std::uint64_t seed);

// A request is admitted only when prompt + output tokens <= max_model_len (as vLLM). When even the shortest
// request the length distributions can give is longer than `max_model_len` (tokens; the largest of the pools'),
// every request would be rejected: throws InputError naming the prompt lengths' key. A distribution that only
// sometimes gives too long a request is valid (those requests are rejected at run time and counted); lengths from
// a trace have no stated minimum.
void check_requests_fit(const WorkloadSource& workload, std::int64_t max_model_len);

}  // namespace servesim
