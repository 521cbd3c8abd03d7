// Per-request records and inter-token gaps, collected while the simulation runs.
// Inter-token latencies are kept as (gap, count) runs: every sequence that decodes in a step sees the same gap,
// so the runs stay O(steps) long while percentiles remain exact over all tokens.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "models/common/units.h"
#include "sim/engine/sequence.h"

namespace servesim {

struct RequestRecord {
  std::uint64_t id = 0;
  std::int32_t replica = 0;
  std::int32_t preemptions = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t output_tokens = 0;
  Ns arrival{0};
  Ns ready{0};
  Ns first_scheduled{0};
  Ns first_token{0};
  Ns finish{0};
};

// Every output token of one request, kept when token logging is on.
struct TokenLog {
  std::vector<Ns> times;
};

struct StepStats {
  std::int64_t steps = 0;
  std::int64_t tokens = 0;        // tokens computed, summed over steps
  std::int64_t seqs = 0;          // sequences per step, summed
  std::int64_t preemptions = 0;
  Ns busy{0};                     // time replicas spent in steps
};

class Recorder {
 public:
  void inter_token(Ns gap) {
    if (!itl_.empty() && itl_.back().first == gap.v) {
      ++itl_.back().second;
    } else {
      itl_.emplace_back(gap.v, 1);
    }
  }
  void finished(const Sequence& s, std::int32_t replica, Ns now);
  void rejected() { ++rejected_; }
  void step(std::int64_t tokens, std::int64_t seqs, std::int64_t preempted, Ns duration) {
    ++steps_.steps;
    steps_.tokens += tokens;
    steps_.seqs += seqs;
    steps_.preemptions += preempted;
    steps_.busy += duration;
  }
  void waiting(std::int64_t n) { max_waiting_ = std::max(max_waiting_, n); }

  // The per-token log (off by default: it grows with the run).
  void enable_logs() { logs_ = true; }
  [[nodiscard]] bool logs() const { return logs_; }
  void log_token(std::uint64_t request, Ns t) {
    if (tokens_.size() <= request) tokens_.resize(request + 1);
    tokens_[request].times.push_back(t);
  }
  [[nodiscard]] const std::vector<TokenLog>& token_log() const { return tokens_; }

  [[nodiscard]] const std::vector<RequestRecord>& records() const { return records_; }
  [[nodiscard]] const std::vector<std::pair<std::int64_t, std::int64_t>>& itl_runs() const { return itl_; }
  [[nodiscard]] const StepStats& steps() const { return steps_; }
  [[nodiscard]] std::int64_t rejected_count() const { return rejected_; }
  [[nodiscard]] std::int64_t max_waiting() const { return max_waiting_; }
  void reserve(std::size_t n) { records_.reserve(n); }

 private:
  std::vector<RequestRecord> records_;
  std::vector<std::pair<std::int64_t, std::int64_t>> itl_;
  StepStats steps_;
  std::int64_t rejected_ = 0;
  std::int64_t max_waiting_ = 0;
  bool logs_ = false;
  std::vector<TokenLog> tokens_;  // by request id
};

}  // namespace servesim
