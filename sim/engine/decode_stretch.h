// A stable decode stretch: the steps an engine runs while its batch is exactly its running sequences, each
// decoding one token, and nothing changes the batch. Such steps differ only by context growth (every sequence one
// token longer) and by the KV blocks the sequences crossing a block boundary take, so the engine (sim/engine/
// engine.cpp) runs them without the scheduler and without touching each sequence every step: this class keeps
// what the steps add to every sequence (tokens, decode time, modeled time by kind, inter-token gaps kept for a
// deferred ITL) as totals over the stretch and writes them into the sequences once, when the stretch ends
// (settle). Exact: every sequence ends with the values step-by-step processing gives it, because within a stretch
// every step adds the same amounts to every sequence of the batch.
//
// While a stretch is active, the sequences' KV blocks are allocated step by step (the KV manager and every
// sequence's `blocks` and block entries are current, so are the engine's queues); their token counts, `mark`,
// `last_token`, `decode`, `step_kinds` and `gaps` are current only once settled.
//
// The batch of the next stretch is collected while the engine ends a step (collect, then add for each sequence that
// sampled a token and keeps running, in running order), and the stretch begins if every running sequence was added.
// Settling the current stretch's sequences may go on in the same pass: sequence i is settled before the i-th
// sequence of the new batch is added.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "models/common/units.h"
#include "sim/engine/sequence.h"

namespace servesim {

class DecodeStretch {
 public:
  // Starts collecting the batch of a stretch (none added yet), for an engine with KV blocks of `block_size` tokens.
  void collect(std::int64_t block_size);
  // Adds the next sequence of the batch: it sampled a token just now and keeps running. A sequence that does not
  // qualify (recomputing after a preemption, blocks outside a sliding window, more blocks than its tokens need as
  // after a disaggregated reservation) spoils the batch.
  void add(const Sequence& s) {
    if (!collecting_) return;
    // Steps of the stretch that end before its token after the held blocks: that step's token needs a new block,
    // and so does every block_size-th after it; the step before each fills its last block.
    const std::int64_t crossing = s.blocks * block_size_ - s.computed;
    if (s.recovering || s.null_blocks != 0 || s.scheduled != 0 || s.remaining() != 1 || s.done() || crossing < 0 ||
        crossing >= block_size_) {
      collecting_ = false;
      return;
    }
    add_unchecked(s, crossing);
  }
  // Begins the stretch at `t` over the collected batch when it is whole: `batch_size` sequences added and none
  // spoiled. False (nothing begun) otherwise.
  [[nodiscard]] bool begin(std::size_t batch_size, Ns t);
  [[nodiscard]] bool active() const { return active_; }
  // Steps of the stretch that have ended.
  [[nodiscard]] std::int64_t done() const { return done_; }
  // The step (1-based) at whose end the first sequence finishes: that step ends through the sequences' own path.
  [[nodiscard]] std::int64_t finish_at() const { return finish_at_; }
  // The KV allocations of the next step (step done() + 1): the indices into the batch, in batch order, of the
  // sequences whose next token crosses into a new block (one block each: blocks_needed() in all) or fills one (a
  // prefix cache keeps full blocks), and the tokens each must then hold. Every other sequence's allocation of that
  // step changes nothing (KvCacheManager::allocate: no block needed, no block filled), so it is skipped.
  [[nodiscard]] const std::vector<std::int32_t>& allocations() const { return allocations_[residue()]; }
  [[nodiscard]] std::int64_t blocks_needed() const { return crossings_[residue()]; }
  [[nodiscard]] std::int64_t tokens_after_next(std::int32_t i) const {
    return computed0_[static_cast<std::size_t>(i)] + done_ + 1;
  }
  // The next step's decode context (BatchShape::decode_context_tokens): every sequence's tokens after it.
  [[nodiscard]] std::int64_t context_tokens_next() const { return computed0_sum_ + size_ * (done_ + 1); }
  // A step of the stretch ended at `t`; `kinds`: its modeled ns by kind (Sequence::step_kinds order). When
  // `keep_gap`, its inter-token gap is kept for every sequence's deferred ITL (Sequence::gaps).
  void step_ended(Ns t, const std::array<std::int64_t, 4>& kinds, bool keep_gap, Ns gap);
  // Writes into sequence `i` of the batch what the stretch's ended steps added, and marks it scheduled for one
  // token when a step of the stretch is in flight. Call it once for every sequence, then end().
  void settle(Sequence& s, std::size_t i, bool in_flight) const;
  void end() { active_ = false; }
  // settle() for every sequence of `batch` (the batch, in order), then end().
  void settle_all(const std::vector<Sequence*>& batch, bool in_flight);

 private:
  void add_unchecked(const Sequence& s, std::int64_t crossing);
  [[nodiscard]] std::size_t residue() const { return static_cast<std::size_t>(done_ % block_size_); }

  bool active_ = false;
  bool collecting_ = false;
  std::int64_t block_size_ = 1;
  std::int64_t size_ = 0;  // sequences in the batch (while collecting: added so far)
  std::int64_t done_ = 0;
  std::int64_t finish_at_ = 0;
  std::int64_t next_finish_ = 0;  // finish_at of the batch being collected
  Ns first_{0};     // the stretch's start: every sequence's last token and mark
  Ns last_end_{0};  // the end of its last ended step
  std::array<std::int64_t, 4> kinds_{};
  // Each sequence's computed tokens at begin. Collecting overwrites entry k only once the active stretch's
  // sequence k is settled.
  std::vector<std::int64_t> computed0_;
  std::int64_t computed0_sum_ = 0;
  // [k]: the sequences allocating at the steps k + 1, k + 1 + block_size, ... of the stretch, and how many of them
  // cross into a new block there.
  std::vector<std::vector<std::int32_t>> allocations_;
  std::vector<std::int64_t> crossings_;
  std::vector<std::int64_t> gaps_;  // the steps' gaps, when the ITL is deferred
};

}  // namespace servesim
