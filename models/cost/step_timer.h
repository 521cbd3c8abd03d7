// Step times for the event loop: the StepModel's token-count and sampling parts are pure functions of one
// integer each, so they are computed once per value and cached (with their operators' times by Bound); attention,
// which depends on every sequence's context, is computed each step. One StepTimer per engine (not shared between
// threads).
#pragma once
#include <memory>
#include <vector>

#include "models/cost/step_model.h"

namespace servesim {

class StepTimer {
 public:
  explicit StepTimer(std::shared_ptr<const StepModel> model) : model_(std::move(model)) {}

  // The GPU part of StepModel::step_time (same bits: summed in the order StepModel sums it), and `bounds` set to
  // its operators' times by Bound, scaled so that they sum to the returned time exactly (the parts' operator times
  // sum to their GPU times up to rounding).
  [[nodiscard]] Seconds gpu_time(const BatchShape& b, BoundTimes& bounds) {
    bounds = BoundTimes{};
    if (b.empty()) return Seconds{0.0};
    const Seconds tokens = cached(by_tokens_, b.total_tokens(), bounds,
                                  [&](std::int64_t n, BoundTimes& t) { return model_->token_time(n, t); });
    const Seconds attention = model_->attention_time(b, bounds);
    const Seconds sampled = cached(by_sampled_, b.num_sampled, bounds,
                                   [&](std::int64_t n, BoundTimes& t) { return model_->sampling_time(n, t); });
    const Seconds gpu = tokens + attention + sampled;
    double sum = 0;
    for (const double x : bounds.s) sum += x;
    if (sum > 0) {
      for (double& x : bounds.s) x *= gpu.v / sum;
    }
    return gpu;
  }
  [[nodiscard]] Seconds stage_send_time(std::int64_t tokens) {
    const auto i = static_cast<std::size_t>(tokens);
    if (i >= send_by_tokens_.size()) send_by_tokens_.resize(i + 1, -1.0);
    if (send_by_tokens_[i] < 0) send_by_tokens_[i] = model_->stage_send_time(tokens).v;
    return Seconds{send_by_tokens_[i]};
  }
  [[nodiscard]] const StepModel& model() const { return *model_; }

 private:
  struct Part {
    double time = -1.0;  // < 0: not computed yet
    BoundTimes bounds;
  };
  // The part for value n (computed once), its operator times added to `bounds`.
  template <class F>
  static Seconds cached(std::vector<Part>& cache, std::int64_t n, BoundTimes& bounds, F compute) {
    const auto i = static_cast<std::size_t>(n);
    if (i >= cache.size()) cache.resize(i + 1);
    Part& p = cache[i];
    if (p.time < 0) p.time = compute(n, p.bounds).v;
    bounds += p.bounds;
    return Seconds{p.time};
  }

  std::shared_ptr<const StepModel> model_;
  std::vector<Part> by_tokens_;
  std::vector<Part> by_sampled_;
  std::vector<double> send_by_tokens_;
};

}  // namespace servesim
