#include "sim/engine/decode_stretch.h"

#include <algorithm>
#include <stdexcept>

namespace servesim {

void DecodeStretch::reset(std::int64_t block_size) {
  block_size_ = std::max<std::int64_t>(block_size, 1);
  const auto bs = static_cast<std::size_t>(block_size_);
  if (allocations_.size() != bs) allocations_.resize(bs);
  for (auto& list : allocations_) list.clear();
  crossings_.assign(bs, 0);
  size_ = 0;
  done_ = 0;
  last_end_ = Ns{0};
  kinds_ = {};
  context_base_ = 0;
  gaps_.clear();
  finish_ = {};
}

void DecodeStretch::join(Sequence& s, bool fills) {
  if (size_ == 0) {
    // A new stretch: its totals start from nothing (the bases below are relative to them).
    done_ = 0;
    kinds_ = {};
    gaps_.clear();
    last_end_ = s.last_token;
  }
  const std::int64_t bs = block_size_;
  // Its next token crosses into a new block at the stretch step done_ + crossing + 1, and again every block_size
  // steps; the step before each fills its last block.
  const std::int64_t crossing = s.blocks * bs - s.computed;
  const auto c = static_cast<std::size_t>((done_ + crossing) % bs);
  const auto f = fills ? static_cast<std::size_t>((done_ + crossing + bs - 1) % bs) : c;
  // Each list in running order: members join at the back.
  allocations_[c].push_back(&s);
  if (f != c) allocations_[f].push_back(&s);
  ++crossings_[c];
  StretchBase& b = s.stretch;
  b.computed = s.computed - done_;
  b.generated = s.generated - done_;
  b.decode = s.decode.v - last_end_.v;
  for (std::size_t k = 0; k < kinds_.size(); ++k) b.kinds[k] = s.step_kinds[k] - kinds_[k];
  b.gaps_from = gaps_.size();
  b.finish = done_ + (s.req.output_tokens - s.generated);
  b.order = joined_++;
  b.cross = static_cast<std::int32_t>(c);
  b.fill = static_cast<std::int32_t>(f);
  context_base_ += b.computed;
  finish_.emplace(b.finish, b.order, &s);
  ++size_;
}

void DecodeStretch::step_ended(Ns t, const std::array<std::int64_t, 4>& kinds, bool keep_gap, Ns gap) {
  for (std::size_t k = 0; k < kinds.size(); ++k) kinds_[k] += kinds[k];
  if (keep_gap) gaps_.push_back(gap.v);
  last_end_ = t;
  ++done_;
}

void DecodeStretch::settle(Sequence& s) const {
  const StretchBase& b = s.stretch;
  s.computed = b.computed + done_;
  s.generated = b.generated + done_;
  s.scheduled = 0;
  // Each step: decode += end - mark, then mark = last_token = end (and the next step starts there).
  s.decode = Ns{b.decode + last_end_.v};
  s.mark = last_end_;
  s.last_token = last_end_;
  for (std::size_t k = 0; k < kinds_.size(); ++k) s.step_kinds[k] = b.kinds[k] + kinds_[k];
  s.gaps.insert(s.gaps.end(), gaps_.begin() + static_cast<std::ptrdiff_t>(b.gaps_from), gaps_.end());
}

void DecodeStretch::leave_finisher() {
  Sequence* s = finisher();
  if (s == nullptr) throw std::logic_error("DecodeStretch::leave_finisher: no member finishes now");
  finish_.pop();
  settle(*s);
  for (const std::int32_t list : {s->stretch.cross, s->stretch.fill}) {
    auto& l = allocations_[static_cast<std::size_t>(list)];
    const auto it = std::find(l.begin(), l.end(), s);
    if (it != l.end()) l.erase(it);
  }
  --crossings_[static_cast<std::size_t>(s->stretch.cross)];
  context_base_ -= s->stretch.computed;
  if (--size_ == 0) reset(block_size_);
}

void DecodeStretch::settle_all(const std::vector<Sequence*>& running) {
  for (std::int64_t i = 0; i < size_; ++i) settle(*running[static_cast<std::size_t>(i)]);
  reset(block_size_);
}

}  // namespace servesim
