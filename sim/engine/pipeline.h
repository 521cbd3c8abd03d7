// The stages of one pipeline-parallel replica, shared by its micro-batch engines (vLLM's virtual engines). A
// micro-batch passes the stages in order, each for one stage time, with an activation send between stages; a
// stage works on one micro-batch at a time, first come first served. Micro-batches of equal size flow one per
// stage time; a large one (a long prefill chunk) holds every stage in turn, and the micro-batches behind it wait:
// the pipeline's batching interference.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "models/common/units.h"

namespace servesim {

class PipelineStages {
 public:
  explicit PipelineStages(std::int64_t stages) : free_at_(static_cast<std::size_t>(stages), Ns{0}) {}

  // A micro-batch ready for stage 0 at `ready`, taking `stage` on every stage and `send` between two stages:
  // returns when it leaves the last stage, and books the stages.
  [[nodiscard]] Ns pass(Ns ready, Ns stage, Ns send) {
    Ns t = ready;
    for (std::size_t k = 0; k < free_at_.size(); ++k) {
      if (k > 0) t = t + send;
      t = std::max(t, free_at_[k]) + stage;
      free_at_[k] = t;
    }
    return t;
  }
  [[nodiscard]] std::int64_t stages() const { return static_cast<std::int64_t>(free_at_.size()); }

 private:
  std::vector<Ns> free_at_;  // when each stage finishes the last micro-batch booked on it
};

}  // namespace servesim
