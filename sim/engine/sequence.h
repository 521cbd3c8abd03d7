// A request's state inside a replica: how far its prefill and generation have progressed, the KV blocks it
// holds, and the timestamps the metrics need.
#pragma once
#include <cstdint>
#include <vector>

#include "models/common/units.h"
#include "sim/workload/request.h"

namespace servesim {

struct Sequence {
  Request req;
  std::int64_t computed = 0;   // tokens whose KV is in the cache
  std::int64_t generated = 0;  // output tokens sampled so far
  std::int64_t blocks = 0;     // KV blocks held
  std::int64_t null_blocks = 0;  // leading block-table entries freed as outside the sliding window (vLLM's null block)
  std::int64_t scheduled = 0;  // tokens scheduled in the current step
  std::int32_t preemptions = 0;
  Ns ready{0};                 // entered the engine's waiting queue (after the front end)
  Ns first_scheduled = kNever;
  Ns first_token = kNever;
  Ns last_token = kNever;
  std::vector<std::int64_t> gaps;  // inter-token gaps (ns), kept only while ITL recording is deferred

  // Tokens the model has seen or produced: the prompt plus every sampled token.
  [[nodiscard]] std::int64_t num_tokens() const { return req.prompt_tokens + generated; }
  [[nodiscard]] std::int64_t remaining() const { return num_tokens() - computed; }
  [[nodiscard]] bool in_prefill() const { return computed < num_tokens() - (generated > 0 ? 1 : 0); }
  [[nodiscard]] bool done() const { return generated >= req.output_tokens; }
};

}  // namespace servesim
