// vLLM v1's scheduler (vllm/v1/core/sched/scheduler.py, FCFS policy), as one step of continuous batching:
//  1. Running sequences first, in order: each gets min(remaining tokens, budget) tokens (1 for a decode).
//     When the KV cache cannot grow it, the most recently admitted running sequence is preempted (its blocks
//     freed, to be recomputed later) until it fits -- or the sequence itself was the one preempted.
//  2. Then, only if nothing was preempted, waiting sequences FCFS while the budget lasts and fewer than
//     max_num_seqs run. Without chunked prefill a prompt that does not fit the remaining budget waits.
//     With prefix caching, a waiting sequence with nothing computed first looks up its cached prefix
//     (KvCacheManager::lookup, vLLM's get_computed_blocks): its computed tokens start at the hit, and only the
//     rest is scheduled and counted against the token budget.
#include <algorithm>

#include "sim/engine/scheduler.h"

namespace servesim {
namespace {

class VllmScheduler final : public Scheduler {
 public:
  explicit VllmScheduler(const SchedulerLimits& limits) : lim_(limits) {}

  void schedule(EngineQueues& q, StepPlan& plan) override {
    plan.clear();
    // A decode stretch's members took their tokens (schedules_after_decodes).
    std::int64_t budget = lim_.max_num_batched_tokens - static_cast<std::int64_t>(q.decoding);
    std::size_t i = q.decoding;
    while (i < q.running.size() && budget > 0) {
      Sequence* s = q.running[i];
      const std::int64_t n = chunk(*s, budget);
      bool fits = false;
      for (;;) {
        if (q.kv.allocate(*s, s->computed + n)) {
          fits = true;
          break;
        }
        Sequence* victim = q.running.back();
        q.running.pop_back();
        preempt(*victim, q);
        plan.preempted.push_back(victim);
        if (victim == s) break;
      }
      if (!fits) break;
      s->scheduled = n;
      plan.scheduled.push_back(s);
      budget -= n;
      ++i;
    }
    if (!plan.preempted.empty()) return;
    while (!q.waiting.empty() && budget > 0 &&
           static_cast<std::int64_t>(q.running.size()) < lim_.max_num_seqs) {
      Sequence* s = q.waiting.front();
      const std::int64_t hit = s->computed == 0 ? q.kv.lookup(*s) : 0;
      std::int64_t n = s->remaining() - hit;
      if (lim_.long_prefill_token_threshold > 0) n = std::min(n, lim_.long_prefill_token_threshold);
      if (!lim_.chunked_prefill && n > budget) break;
      n = std::min(n, budget);
      if (!q.kv.allocate_cached(*s, hit, s->computed + hit + n)) break;
      s->computed += hit;
      // vLLM's num_cached_tokens: the hit of its first scheduling (a preempted sequence's later hits do not count).
      if (s->cached_tokens < 0 && q.kv.caches(*s)) s->cached_tokens = hit;
      q.waiting.pop_front();
      q.running.push_back(s);
      s->scheduled = n;
      plan.scheduled.push_back(s);
      budget -= n;
    }
  }

  // Each of the first `decoding` running sequences gets its one token while the budget lasts (it does when they
  // are at most the budget). A later running sequence whose blocks do not fit preempts from the back of the running
  // queue only down to itself, so never one of them.
  bool schedules_after_decodes(std::size_t decoding) const override {
    return static_cast<std::int64_t>(decoding) <= lim_.max_num_batched_tokens;
  }

 private:
  std::int64_t chunk(const Sequence& s, std::int64_t budget) const {
    std::int64_t n = s.remaining();
    if (lim_.long_prefill_token_threshold > 0) n = std::min(n, lim_.long_prefill_token_threshold);
    return std::min(n, budget);
  }

  static void preempt(Sequence& s, EngineQueues& q) {
    q.kv.release(s);
    s.preempt_for_recompute();
    q.waiting.push_front(&s);
  }

  SchedulerLimits lim_;
};

}  // namespace

std::unique_ptr<Scheduler> make_vllm_scheduler(const Config&, const SchedulerLimits& limits) {
  return std::make_unique<VllmScheduler>(limits);
}

}  // namespace servesim
