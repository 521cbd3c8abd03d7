// A request's state inside a replica: how far its prefill and generation have progressed, the KV blocks it
// holds, and the timestamps the metrics need.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "models/common/units.h"
#include "sim/workload/content.h"
#include "sim/workload/request.h"

namespace servesim {

// A member of an engine's decode stretch (sim/engine/decode_stretch.h): its values less what the stretch's steps
// added before it joined, so that value = base + the stretch's running total (steps, decode time, modeled time by
// kind), and where it sits in the stretch's books.
struct StretchBase {
  std::int64_t computed = 0;   // computed - the stretch's steps at the join
  std::int64_t generated = 0;  // generated - the stretch's steps at the join
  std::int64_t decode = 0;     // decode (ns) - the end of the stretch's last step at the join (ns)
  std::array<std::int64_t, 4> kinds{};  // step_kinds - the stretch's totals at the join
  std::size_t gaps_from = 0;   // the stretch's first kept gap after the join (deferred ITL)
  std::int64_t finish = 0;     // the stretch step at whose end it samples its last token
  std::uint64_t order = 0;     // join order (= running order among the members)
  std::int32_t cross = 0;      // allocation lists it is on: crossing into a new block, filling one
  std::int32_t fill = 0;
};

struct Sequence {
  Request req;
  std::int64_t computed = 0;   // tokens whose KV is in the cache
  std::int64_t generated = 0;  // output tokens sampled so far
  std::int64_t blocks = 0;     // KV blocks held
  std::int64_t null_blocks = 0;  // leading block-table entries freed as outside the sliding window (vLLM's null block)
  // Hybrid KV cache groups (sim/engine/kv_cache.h KvGroups): blocks held in each sliding-window group (`blocks`
  // is then the full-attention group's), and its leading entries freed as outside the window.
  std::int64_t swa_blocks = 0;
  std::int64_t swa_null = 0;
  std::int64_t scheduled = 0;  // tokens scheduled in the current step
  std::int32_t preemptions = 0;
  Ns ready{0};                 // entered the engine's waiting queue (after the front end)
  Ns first_scheduled = kNever;
  Ns first_token = kNever;
  Ns last_token = kNever;
  std::vector<std::int64_t> gaps;  // inter-token gaps (ns), kept only while ITL recording is deferred

  // Where its time went (sim/metrics/sink.h RequestRecord): `mark` is the instant up to which its time has been
  // attributed; the rest derives from the timestamps above.
  Ns mark{0};
  Ns prefill{0};
  Ns prefill_preempted{0};
  Ns decode{0};
  Ns decode_preempted{0};
  // After a preemption: its tokens computed before it (recomputing up to here is lost work); 0 otherwise.
  std::int64_t recompute_until = 0;
  bool preempted_waiting = false;  // preempted and not yet scheduled again
  bool recovering = false;         // computed < recompute_until: recomputing what a preemption lost
  std::array<std::int64_t, 4> step_kinds{};  // modeled ns of its steps by kind: memory, compute, communication, overhead
  // Disaggregated serving (sim/cluster/kv_handoff.h): the replica that ran its prefill (-1: this one), the time it
  // waited for the decode replica's KV blocks after its first token, and its KV transfer.
  std::int32_t prefill_replica = -1;
  Ns decode_wait{0};
  Ns kv_transfer{0};
  // Prefix caching (sim/engine/kv_cache.h), for a request with content in a cache that keeps it: the cache's entry
  // of each block it holds, in order (KvCacheManager::kNoEntry: a block in no entry), and how far its blocks have
  // been hashed. cached_tokens: the prompt tokens found cached when it was first scheduled (vLLM's
  // num_cached_tokens); -1 when it was never looked up (caching off, or a request without content).
  std::vector<std::int32_t> kv_entries;
  BlockHashCursor hashed;
  std::int64_t cached_tokens = -1;
  StretchBase stretch;  // while in a decode stretch (sim/engine/decode_stretch.h)

  // Tokens the model has seen or produced: the prompt plus every sampled token.
  [[nodiscard]] std::int64_t num_tokens() const { return req.prompt_tokens + generated; }
  [[nodiscard]] std::int64_t remaining() const { return num_tokens() - computed; }
  [[nodiscard]] bool in_prefill() const { return computed < num_tokens() - (generated > 0 ? 1 : 0); }
  // Recompute preemption (the scheduler's part): its KV is gone and it starts over (its blocks released by the
  // caller). Remembers how far it had come, so that the time to get back there counts as preempted.
  void preempt_for_recompute() {
    recompute_until = std::max(recompute_until, computed);
    computed = 0;
    scheduled = 0;
    ++preemptions;
  }
  [[nodiscard]] bool done() const { return generated >= req.output_tokens; }
  // More than one output token: after its first token (the prefill's) it still decodes.
  [[nodiscard]] bool output_tokens_left_after_first() const { return req.output_tokens > 1; }
};

}  // namespace servesim
