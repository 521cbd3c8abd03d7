#include "sim/engine/decode_stretch.h"

#include <algorithm>
#include <limits>

namespace servesim {

void DecodeStretch::collect(std::int64_t block_size) {
  collecting_ = block_size > 0;
  if (!collecting_) return;
  block_size_ = block_size;
  const auto bs = static_cast<std::size_t>(block_size);
  if (allocations_.size() != bs) allocations_.resize(bs);
  for (auto& list : allocations_) list.clear();
  crossings_.assign(bs, 0);
  size_ = 0;
  computed0_sum_ = 0;
  next_finish_ = std::numeric_limits<std::int64_t>::max();
}

void DecodeStretch::add_unchecked(const Sequence& s, std::int64_t crossing) {
  if (size_ == std::numeric_limits<std::int32_t>::max()) {
    collecting_ = false;
    return;
  }
  const auto c = static_cast<std::size_t>(crossing);
  const auto bs = static_cast<std::size_t>(block_size_);
  const std::size_t fill = (c + bs - 1) % bs;
  const auto index = static_cast<std::int32_t>(size_);
  // Each list in batch order (indices ascend), as the scheduler allocates.
  allocations_[c].push_back(index);
  if (fill != c) allocations_[fill].push_back(index);
  ++crossings_[c];
  const auto k = static_cast<std::size_t>(size_);
  if (k < computed0_.size()) {
    computed0_[k] = s.computed;
  } else {
    computed0_.push_back(s.computed);
  }
  computed0_sum_ += s.computed;
  next_finish_ = std::min(next_finish_, s.req.output_tokens - s.generated);
  ++size_;
}

bool DecodeStretch::begin(std::size_t batch_size, Ns t) {
  const bool whole = collecting_ && size_ > 0 && static_cast<std::size_t>(size_) == batch_size;
  collecting_ = false;
  if (!whole) return false;
  computed0_.resize(static_cast<std::size_t>(size_));
  finish_at_ = next_finish_;
  gaps_.clear();
  kinds_ = {};
  first_ = t;
  last_end_ = t;
  done_ = 0;
  active_ = true;
  return true;
}

void DecodeStretch::step_ended(Ns t, const std::array<std::int64_t, 4>& kinds, bool keep_gap, Ns gap) {
  for (std::size_t k = 0; k < kinds.size(); ++k) kinds_[k] += kinds[k];
  if (keep_gap) gaps_.push_back(gap.v);
  last_end_ = t;
  ++done_;
}

void DecodeStretch::settle(Sequence& s, std::size_t i, bool in_flight) const {
  s.computed = computed0_[i] + done_;
  s.scheduled = in_flight ? 1 : 0;
  if (done_ == 0) return;
  s.generated += done_;
  // Each step: decode += end - mark, then mark = last_token = end (and the next step starts there).
  s.decode += last_end_ - first_;
  s.mark = last_end_;
  s.last_token = last_end_;
  for (std::size_t k = 0; k < kinds_.size(); ++k) s.step_kinds[k] += kinds_[k];
  s.gaps.insert(s.gaps.end(), gaps_.begin(), gaps_.end());
}

void DecodeStretch::settle_all(const std::vector<Sequence*>& batch, bool in_flight) {
  for (std::size_t i = 0; i < batch.size(); ++i) settle(*batch[i], i, in_flight);
  end();
}

}  // namespace servesim
