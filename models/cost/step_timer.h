// Step times for the event loop: the StepModel's token-count and sampling parts are pure functions of one
// integer each, so they are computed once per value and cached; attention, which depends on every sequence's
// context, is computed each step. One StepTimer per engine (not shared between threads).
#pragma once
#include <cmath>
#include <memory>
#include <vector>

#include "models/cost/step_model.h"

namespace servesim {

class StepTimer {
 public:
  explicit StepTimer(std::shared_ptr<const StepModel> model) : model_(std::move(model)) {}

  [[nodiscard]] Seconds step_time(const BatchShape& b) {
    if (b.empty()) return Seconds{0.0};
    return gpu_time(b) + model_->overhead().of(b);
  }
  // The GPU part of step_time.
  [[nodiscard]] Seconds gpu_time(const BatchShape& b) {
    if (b.empty()) return Seconds{0.0};
    // Summed in the order StepModel::step_time sums them, so both give the same bits.
    return cached(by_tokens_, b.total_tokens(), [&](std::int64_t n) { return model_->token_time(n); }) +
           model_->attention_time(b) +
           cached(by_sampled_, b.num_sampled, [&](std::int64_t n) { return model_->sampling_time(n); });
  }
  // gpu_time, and `bounds` set to its operators' times by Bound, scaled so that they sum to the returned time
  // exactly (the parts' operator times sum to their GPU times up to rounding). Same caching.
  [[nodiscard]] Seconds gpu_time(const BatchShape& b, BoundTimes& bounds) {
    bounds = BoundTimes{};
    if (b.empty()) return Seconds{0.0};
    const Seconds tokens = cached_bounds(by_tokens_, bounds_by_tokens_, b.total_tokens(), bounds,
                                         [&](std::int64_t n, BoundTimes& t) { return model_->token_time(n, t); });
    const Seconds attention = model_->attention_time(b, bounds);
    const Seconds sampled = cached_bounds(by_sampled_, bounds_by_sampled_, b.num_sampled, bounds,
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
    return cached(send_by_tokens_, tokens, [&](std::int64_t n) { return model_->stage_send_time(n); });
  }
  [[nodiscard]] const StepModel& model() const { return *model_; }

 private:
  template <class F>
  static Seconds cached(std::vector<double>& cache, std::int64_t n, F compute) {
    const auto i = static_cast<std::size_t>(n);
    if (i >= cache.size()) cache.resize(i + 1, -1.0);
    if (cache[i] < 0) cache[i] = compute(n).v;
    return Seconds{cache[i]};
  }

  // As cached(), also adding the value's operator times by Bound to `bounds` (cached alongside).
  template <class F>
  static Seconds cached_bounds(std::vector<double>& cache, std::vector<BoundTimes>& bounds_cache, std::int64_t n,
                               BoundTimes& bounds, F compute) {
    const auto i = static_cast<std::size_t>(n);
    if (i >= bounds_cache.size()) bounds_cache.resize(i + 1, BoundTimes{{-1.0, 0.0, 0.0, 0.0}});
    if (bounds_cache[i].s[0] < 0) {
      BoundTimes t;
      const Seconds v = compute(n, t);
      if (i >= cache.size()) cache.resize(i + 1, -1.0);
      cache[i] = v.v;
      bounds_cache[i] = t;
    }
    bounds += bounds_cache[i];
    return Seconds{cache[i]};
  }

  std::shared_ptr<const StepModel> model_;
  std::vector<BoundTimes> bounds_by_tokens_;
  std::vector<BoundTimes> bounds_by_sampled_;
  std::vector<double> by_tokens_;
  std::vector<double> by_sampled_;
  std::vector<double> send_by_tokens_;
};

}  // namespace servesim
