// Step times for the event loop: the StepModel's token-count and sampling parts are pure functions of one
// integer each, so they are computed once per value and cached (with their operators' times by Bound); attention,
// which depends on every sequence's context, is computed each step, except that a step of decodes alone is a pure
// function of its shape's counts (decodes, context tokens, sampled), whose values recur often in steady load (every
// member of a stable batch one token further, the same batch again later): such steps are memoized in a
// direct-mapped table (exact: a hit returns the bits the computation gave), which turns itself off when too few
// steps repeat. One StepTimer per engine (not shared between threads).
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
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
    if (b.prefills.empty() && memo_on_) return decode_time(b, bounds);
    return compute(b, bounds);
  }
  // The step of a data-parallel group as every rank sees it: every rank's tokens, the largest rank's, and whether no
  // rank has a prefill chunk (CUDA graphs: the ranks replay the same graph, padded to the largest rank's).
  struct GroupStep {
    std::int64_t step_tokens = 0;
    std::int64_t max_rank_tokens = 0;
    bool decodes_only = true;
  };
  // Data-parallel attention, one rank's own batch in a step of the group (the engines of a lockstep group,
  // sim/engine/dp_group.h): its attention, its token part (MoE routing and dispatch over every rank's tokens;
  // cached by (its tokens, the step's), both padded when the group replays a CUDA graph) and its own sampling, at
  // least the host's launch time; `bounds` as gpu_time's.
  [[nodiscard]] Seconds rank_gpu_time(const BatchShape& rank, const GroupStep& group, BoundTimes& bounds) {
    bounds = BoundTimes{};
    if (rank.empty()) return Seconds{0.0};
    StepModel::GraphStep g = model_->graph_step(group.decodes_only, group.max_rank_tokens, group.step_tokens);
    // Eager: this rank's own tokens (a replayed graph pads every rank to the largest one's).
    if (g.run == GraphRun::eager) g.rank_tokens = rank.total_tokens();
    const auto key = (static_cast<std::uint64_t>(g.rank_tokens) << 32) | static_cast<std::uint64_t>(g.step_tokens);
    auto [it, fresh] = by_rank_tokens_.try_emplace(key);
    if (fresh) it->second.time = model_->rank_token_time(g.rank_tokens, g.step_tokens, it->second.bounds).v;
    bounds += it->second.bounds;
    const Seconds tokens{it->second.time};
    const Seconds attention = model_->attention_time(rank, bounds);
    const Seconds sampled = cached(by_rank_sampled_, rank.num_sampled, bounds, [&](std::int64_t n, BoundTimes& t) {
      return model_->rank_sampling_time(n, t);
    });
    const Seconds gpu = StepModel::launch_bound(tokens + attention + sampled,
                                                model_->host_time(g.run, rank.num_sampled > 0), bounds);
    return scale(gpu, bounds);
  }
  [[nodiscard]] Seconds stage_send_time(std::int64_t tokens) {
    const auto i = static_cast<std::size_t>(tokens);
    if (i >= send_by_tokens_.size()) send_by_tokens_.resize(i + 1, -1.0);
    if (send_by_tokens_[i] < 0) send_by_tokens_[i] = model_->stage_send_time(tokens).v;
    return Seconds{send_by_tokens_[i]};
  }
  [[nodiscard]] const StepModel& model() const { return *model_; }
  // Decode-only steps looked up in the memo, and how many of them it held (while it is on).
  [[nodiscard]] std::int64_t memo_lookups() const { return lookups_; }
  [[nodiscard]] std::int64_t memo_hits() const { return hits_; }

 private:
  // The shape of a decode-only step: everything its time depends on.
  struct DecodeKey {
    std::int64_t decodes = -1, context = 0, window = 0, window_context = 0, sampled = 0;
    bool operator==(const DecodeKey&) const = default;
  };
  struct Memo {
    DecodeKey key;
    double gpu = 0;
    BoundTimes bounds;
  };
  static constexpr std::size_t kMemoSlots = 8192;     // x 80 B
  static constexpr std::int64_t kMemoProbe = 100000;  // decode steps before the hit rate is judged
  Seconds decode_time(const BatchShape& b, BoundTimes& bounds) {
    const DecodeKey k{b.num_decodes, b.decode_context_tokens, b.window, b.decode_window_context_tokens, b.num_sampled};
    if (memo_.empty()) memo_.resize(kMemoSlots);
    Memo& m = memo_[slot(k)];
    // The next step of a stable batch reads every context one token further: its slot is fetched while this step
    // runs (the table is larger than the nearer caches).
    DecodeKey next = k;
    next.context += k.decodes;
    if (k.window == 0) __builtin_prefetch(&memo_[slot(next)]);
    ++lookups_;
    if (m.key == k) {
      ++hits_;
      bounds = m.bounds;
      return Seconds{m.gpu};
    }
    const Seconds gpu = compute(b, bounds);
    m = Memo{k, gpu.v, bounds};
    if (lookups_ == kMemoProbe && hits_ * 4 < lookups_) {
      // Under a quarter of the steps repeat: the lookups cost more than they save.
      memo_on_ = false;
      std::vector<Memo>().swap(memo_);
    }
    return gpu;
  }
  // Fibonacci hashing of the counts that vary (the window is the engine's own, fixed): 13 bits, kMemoSlots.
  static std::size_t slot(const DecodeKey& k) {
    const std::uint64_t h = (static_cast<std::uint64_t>(k.decodes) * 0x9E3779B97F4A7C15ULL) ^
                            (static_cast<std::uint64_t>(k.context) * 0xC2B2AE3D27D4EB4FULL) ^
                            (static_cast<std::uint64_t>(k.window_context) * 0x165667B19E3779F9ULL) ^
                            static_cast<std::uint64_t>(k.sampled);
    return static_cast<std::size_t>((h * 0x9E3779B97F4A7C15ULL) >> 51);
  }
  Seconds compute(const BatchShape& b, BoundTimes& bounds) {
    bounds = BoundTimes{};
    if (b.empty()) return Seconds{0.0};
    if (model_->parallel().data > 1) return compute_data_parallel(b, bounds);
    const StepModel::GraphStep g = model_->graph_step(b.prefills.empty(), b.total_tokens(), b.total_tokens());
    const Seconds tokens = cached(by_tokens_, g.rank_tokens, bounds,
                                  [&](std::int64_t n, BoundTimes& t) { return model_->token_time(n, t); });
    const Seconds attention = model_->attention_time(b, bounds);
    return finish(tokens, attention, b.num_sampled, g.run, bounds);
  }
  // Data-parallel attention: the busiest rank's sequences (StepModel::busiest_rank). Its token part is cached by
  // the step's token count when the rank holds an even share ((tokens + d - 1) / d, as every step of decodes
  // alone), otherwise by (its tokens, the step's tokens): a prefill chunk is whole on one rank.
  Seconds compute_data_parallel(const BatchShape& b, BoundTimes& bounds) {
    const BatchShape rank = model_->busiest_rank(b);
    const std::int64_t d = model_->parallel().data;
    const StepModel::GraphStep g = model_->graph_step(b.prefills.empty(), rank.total_tokens(), b.total_tokens());
    const std::int64_t n = g.step_tokens;
    const std::int64_t mine = g.rank_tokens;
    Seconds tokens{0.0};
    if (mine == (n + d - 1) / d) {
      tokens = cached(by_tokens_, n, bounds, [&](std::int64_t k, BoundTimes& t) { return model_->token_time(k, t); });
    } else {
      const auto key = (static_cast<std::uint64_t>(mine) << 32) | static_cast<std::uint64_t>(n);
      auto [it, fresh] = by_rank_tokens_.try_emplace(key);
      if (fresh) it->second.time = model_->rank_token_time(mine, n, it->second.bounds).v;
      bounds += it->second.bounds;
      tokens = Seconds{it->second.time};
    }
    const Seconds attention = model_->attention_time(rank, bounds);
    return finish(tokens, attention, b.num_sampled, g.run, bounds);
  }
  // Adds the sampling part, takes the host's launch time if longer (StepModel::launch_bound) and scales `bounds`
  // to the step's GPU time.
  Seconds finish(Seconds tokens, Seconds attention, std::int64_t num_sampled, GraphRun run, BoundTimes& bounds) {
    const Seconds sampled = cached(by_sampled_, num_sampled, bounds,
                                   [&](std::int64_t n, BoundTimes& t) { return model_->sampling_time(n, t); });
    const Seconds gpu =
        StepModel::launch_bound(tokens + attention + sampled, model_->host_time(run, num_sampled > 0), bounds);
    return scale(gpu, bounds);
  }
  // Scales `bounds` to sum to `gpu`.
  static Seconds scale(Seconds gpu, BoundTimes& bounds) {
    double sum = 0;
    for (const double x : bounds.s) sum += x;
    if (sum > 0) {
      for (double& x : bounds.s) x *= gpu.v / sum;
    }
    return gpu;
  }

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
  std::unordered_map<std::uint64_t, Part> by_rank_tokens_;  // (rank tokens << 32) | step tokens
  std::vector<Part> by_sampled_;
  std::vector<Part> by_rank_sampled_;  // data-parallel: one rank's own samples
  std::vector<double> send_by_tokens_;
  std::vector<Memo> memo_;
  bool memo_on_ = true;
  std::int64_t lookups_ = 0;
  std::int64_t hits_ = 0;
};

}  // namespace servesim
