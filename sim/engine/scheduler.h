// Scheduler interface: picks, at the start of each engine step, which sequences run and how many tokens each
// computes, within the engine's limits; it may preempt running sequences when the KV cache is full.
// Implementations are registered by name in scheduler_registry() ([engine.scheduler] impl = "...").
//
// Contract: on return, plan.scheduled lists the sequences of this step with Sequence::scheduled set (> 0),
// their KV blocks allocated for computed + scheduled tokens (a sequence admitted with nothing computed may start at
// its prefix-cache hit: computed = the hit, its blocks shared; KvCacheManager::lookup, allocate_cached); preempted
// sequences have released their blocks, computed = 0, and sit in `waiting` again. The scheduler never does block
// arithmetic: it asks the KV manager.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "models/common/config.h"
#include "models/common/registry.h"
#include "models/cost/batch.h"
#include "sim/engine/kv_cache.h"
#include "sim/engine/sequence.h"

namespace servesim {

struct SchedulerLimits {
  std::int64_t max_num_seqs = 256;
  std::int64_t max_num_batched_tokens = 8192;
  bool chunked_prefill = true;
  std::int64_t long_prefill_token_threshold = 0;  // 0 = no per-request cap on a prefill chunk
};

struct EngineQueues {
  std::vector<Sequence*>& running;  // in admission order
  std::deque<Sequence*>& waiting;   // FCFS; preempted sequences return to the front
  KvCacheManager& kv;
  // The first `decoding` running sequences are a decode stretch's (sim/engine/decode_stretch.h): each decodes one
  // token this step, its KV blocks already allocated; schedule() plans the rest of the step after them (only when
  // schedules_after_decodes(decoding)). They are not in plan.scheduled.
  std::size_t decoding = 0;
};

struct StepPlan {
  std::vector<Sequence*> scheduled;
  std::vector<Sequence*> preempted;  // preempted while scheduling this step, in order
  void clear() {
    scheduled.clear();
    preempted.clear();
  }
  // The step's shape for the cost model (cleared first): a sequence with one scheduled token after its first
  // output is a decode, any other a prefill chunk; those whose tokens are then all computed sample.
  void shape(BatchShape& b) const {
    b.clear();
    for (const Sequence* s : scheduled) {
      const bool samples = s->computed + s->scheduled == s->num_tokens();
      if (s->scheduled == 1 && s->generated > 0 && samples) {
        b.add_decode(s->computed + 1);
      } else {
        b.prefills.push_back(PrefillChunk{s->scheduled, s->computed});
      }
      if (samples) ++b.num_sampled;
    }
  }
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual void schedule(EngineQueues& q, StepPlan& plan) = 0;
  // Whether schedule() can start after EngineQueues::decoding = `decoding` running sequences that each have one
  // token to compute: true only if it would itself give each of them its one token first, in running order, and
  // never preempt one of them while planning the rest, provided the KV cache grows each of them by one token.
  // The engine then gives them their tokens and allocates their blocks itself (sim/engine/decode_stretch.h). The
  // default, false: schedule() always plans the whole step.
  [[nodiscard]] virtual bool schedules_after_decodes(std::size_t /*decoding*/) const { return false; }
};

using SchedulerRegistry = Registry<Scheduler, const Config&, const SchedulerLimits&>;
[[nodiscard]] const SchedulerRegistry& scheduler_registry();

// Implementations (one file each).
[[nodiscard]] std::unique_ptr<Scheduler> make_vllm_scheduler(const Config& c, const SchedulerLimits& limits);

}  // namespace servesim
