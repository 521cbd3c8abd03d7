// A decode stretch: the sequences at the front of an engine's running queue that decode one token every step, kept
// without touching each of them every step. Between events that change them, their steps differ only by context
// growth (every member one token longer) and by the KV blocks the members crossing a block boundary take, so the
// engine (sim/engine/engine.cpp) gives each member its token, allocates the crossings, and lets the scheduler plan
// only the rest of the batch (Scheduler::schedules_after_decodes: prefill chunks of new requests, the running
// sequences behind the members). This class keeps what the steps add to every member (tokens, decode time, modeled
// time by kind, inter-token gaps kept for a deferred ITL) as running totals; each member holds its values less the
// totals at its join (Sequence::stretch), and settle() writes base + totals into it. Exact: every member ends with
// the values step-by-step processing gives it, because every step of the stretch adds the same amounts to every
// member, and the members keep running order (they are a prefix of it: a sequence joins only at the back of the
// members, and a member leaves only when it finishes or the whole stretch ends).
//
// While a sequence is a member, its KV blocks are allocated step by step (the KV manager, `blocks` and the block
// entries are current, as are the engine's queues); its token counts, `mark`, `last_token`, `decode`, `step_kinds`
// and `gaps` are current only once settled.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <queue>
#include <tuple>
#include <vector>

#include "models/common/units.h"
#include "sim/engine/sequence.h"

namespace servesim {

class DecodeStretch {
 public:
  // Empties the stretch (members must have been settled) for an engine with KV blocks of `block_size` tokens.
  void reset(std::int64_t block_size);
  // Whether `s` may join now, at `now`, the end of a step in which it sampled a token: it keeps running with one
  // token to compute, and holds exactly the blocks its tokens need (not recomputing after a preemption, no block
  // outside a sliding window, no blocks reserved ahead as after a disaggregated hand-off).
  [[nodiscard]] bool qualifies(const Sequence& s, Ns now) const {
    const std::int64_t crossing = s.blocks * block_size_ - s.computed;
    return s.last_token == now && s.mark == now && !s.recovering && s.null_blocks == 0 && s.scheduled == 0 &&
           s.remaining() == 1 && !s.done() && crossing >= 0 && crossing < block_size_ &&
           size_ < kMaxMembers;
  }
  // `s` (qualifies()) joins at the back of the members. `fills`: the KV cache keeps its full blocks
  // (KvCacheManager::caches), so the step that fills one allocates too.
  void join(Sequence& s, bool fills);
  [[nodiscard]] std::int64_t size() const { return size_; }
  [[nodiscard]] bool active() const { return size_ > 0; }
  // Deferred inter-token gaps kept so far (the engine ends a long stretch to bound them).
  [[nodiscard]] std::size_t kept_gaps() const { return gaps_.size(); }

  // The KV allocations of the next step: the members whose next token crosses into a new block (one block each:
  // blocks_needed() in all) or fills one (a prefix cache keeps full blocks), in running order, and the tokens each
  // must then hold. Every other member's allocation of that step changes nothing (KvCacheManager::allocate: no
  // block needed, no block filled), so it is skipped.
  [[nodiscard]] const std::vector<Sequence*>& allocations() const { return allocations_[residue()]; }
  [[nodiscard]] std::int64_t blocks_needed() const { return crossings_[residue()]; }
  [[nodiscard]] std::int64_t tokens_after_next(const Sequence& s) const { return s.stretch.computed + done_ + 1; }
  // The next step's decode context of the members (BatchShape::decode_context_tokens): their tokens after it.
  [[nodiscard]] std::int64_t context_tokens_next() const { return context_base_ + size_ * (done_ + 1); }

  // A step of the stretch ended at `t`; `kinds`: its modeled ns by kind (Sequence::step_kinds order). When
  // `keep_gap`, its inter-token gap `gap` is kept for every member's deferred ITL (Sequence::gaps).
  void step_ended(Ns t, const std::array<std::int64_t, 4>& kinds, bool keep_gap, Ns gap);
  // The member that sampled its last token at the end of the step just ended, first in running order; nullptr
  // when none (left). Call leave() for it before asking again.
  [[nodiscard]] Sequence* finisher() const {
    return !finish_.empty() && std::get<0>(finish_.top()) == done_ ? std::get<2>(finish_.top()) : nullptr;
  }
  // finisher() leaves the stretch, settled (its deferred gaps included).
  void leave_finisher();
  // Writes base + totals into member `s`, its deferred gaps included (call it once, as it leaves).
  void settle(Sequence& s) const;
  // Ends the stretch between two steps: settles every member (the first size() sequences of `running`) and resets.
  void settle_all(const std::vector<Sequence*>& running);

 private:
  static constexpr std::int64_t kMaxMembers = std::int64_t{1} << 30;
  [[nodiscard]] std::size_t residue() const { return static_cast<std::size_t>(done_ % block_size_); }

  std::int64_t block_size_ = 1;
  std::int64_t size_ = 0;
  std::int64_t done_ = 0;   // steps of the stretch ended
  Ns last_end_{0};          // the end of its last ended step
  std::array<std::int64_t, 4> kinds_{};  // its steps' modeled ns by kind, summed
  std::int64_t context_base_ = 0;        // sum over members of Sequence::stretch.computed
  std::uint64_t joined_ = 0;             // joins so far (the next join's order)
  // [k]: the members allocating at the steps k + 1, k + 1 + block_size, ... of the stretch, and how many of them
  // cross into a new block there.
  std::vector<std::vector<Sequence*>> allocations_;
  std::vector<std::int64_t> crossings_;
  std::vector<std::int64_t> gaps_;  // the steps' gaps, when the ITL is deferred
  // (finish step, join order, member): the next to finish first, in running order.
  using Finish = std::tuple<std::int64_t, std::uint64_t, Sequence*>;
  std::priority_queue<Finish, std::vector<Finish>, std::greater<>> finish_;
};

}  // namespace servesim
