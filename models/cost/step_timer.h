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

  std::shared_ptr<const StepModel> model_;
  std::vector<double> by_tokens_;
  std::vector<double> by_sampled_;
  std::vector<double> send_by_tokens_;
};

}  // namespace servesim
