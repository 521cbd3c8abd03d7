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
  // Asked when every running sequence has just decoded a token (each has one token to compute next) and none
  // finished: true only if schedule() would now schedule exactly the running sequences, one token each in running
  // order, preempting and admitting nothing, provided the KV cache grows each of them by one token. The engine
  // then runs that step without calling schedule() (sim/engine/decode_stretch.h). The default, false, always
  // calls it.
  [[nodiscard]] virtual bool repeats_decode_step(const EngineQueues& /*q*/) const { return false; }
};

using SchedulerRegistry = Registry<Scheduler, const Config&, const SchedulerLimits&>;
[[nodiscard]] const SchedulerRegistry& scheduler_registry();

// Implementations (one file each).
[[nodiscard]] std::unique_ptr<Scheduler> make_vllm_scheduler(const Config& c, const SchedulerLimits& limits);

}  // namespace servesim
