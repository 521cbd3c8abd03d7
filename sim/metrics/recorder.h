// Per-request records and inter-token gaps, collected while the simulation runs.
// Inter-token latencies are kept as (gap, count) runs: every sequence that decodes in a step sees the same gap,
// so the runs stay O(steps) long while percentiles remain exact over all tokens.
// Streaming (stream_to): requests.csv rows and token-log lines go to their streams as requests finish, in request
// id order (a request finishing before a lower id waits in a small reorder buffer; ids that were rejected are
// skipped at once, ids still unfinished when the run stops are skipped by finish_streams), so the output bytes are
// those of writing every finished request sorted by id at the end, without holding the text in memory.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <unordered_map>
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

// Why a request was refused at admission (summary.json "rejected_by_reason", the summary's text).
enum class RejectReason : std::uint8_t {
  exceeds_max_model_len,  // prompt + output tokens > engine.max_model_len (vLLM refuses it)
  exceeds_kv_cache,       // its KV (prompt + output - 1 tokens) needs more blocks than the engine's whole cache
};
inline constexpr std::size_t kNumRejectReasons = 2;
[[nodiscard]] const char* reject_reason_name(RejectReason r);

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
  // Request `id` was refused at admission; `detail` (read for the run's first rejection only) describes it.
  template <typename Detail>
  void rejected(std::uint64_t id, RejectReason why, Detail&& detail) {
    if (rejected_ == 0) first_rejection_ = detail();
    ++rejected_;
    ++rejected_by_[static_cast<std::size_t>(why)];
    if (streaming()) {
      pending_.emplace(id, Pending{kRejectedRow, {}});
      flush_ready();
    }
  }
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
    if (tokens_out_ != nullptr) {
      live_tokens_[request].push_back(t);
      return;
    }
    if (tokens_.size() <= request) tokens_.resize(request + 1);
    tokens_[request].times.push_back(t);
  }
  // In memory (enable_logs without a token stream): every request's token times, by id.
  [[nodiscard]] const std::vector<TokenLog>& token_log() const { return tokens_; }

  // Streams requests.csv (its header now) and, when `tokens` is given, the token log (JSONL, the measured-run
  // format; turns logging on) as requests finish. Either may be null. Call before the run.
  void stream_to(std::ostream* requests_csv, std::ostream* tokens_jsonl);
  // At the end of the run: writes the finished requests still held back by an unfinished lower id.
  void finish_streams();

  [[nodiscard]] const std::vector<RequestRecord>& records() const { return records_; }
  [[nodiscard]] const std::vector<std::pair<std::int64_t, std::int64_t>>& itl_runs() const { return itl_; }
  [[nodiscard]] const StepStats& steps() const { return steps_; }
  [[nodiscard]] std::int64_t rejected_count() const { return rejected_; }
  [[nodiscard]] std::int64_t rejected_count(RejectReason why) const {
    return rejected_by_[static_cast<std::size_t>(why)];
  }
  // The first rejected request and its reason, in words ("" when none was rejected).
  [[nodiscard]] const std::string& first_rejection() const { return first_rejection_; }
  [[nodiscard]] std::int64_t max_waiting() const { return max_waiting_; }
  void reserve(std::size_t n) { records_.reserve(n); }

 private:
  std::vector<RequestRecord> records_;
  std::vector<std::pair<std::int64_t, std::int64_t>> itl_;
  StepStats steps_;
  static constexpr std::size_t kRejectedRow = static_cast<std::size_t>(-1);
  struct Pending {
    std::size_t row = kRejectedRow;  // index into records_, or kRejectedRow
    std::vector<Ns> tokens;
  };
  [[nodiscard]] bool streaming() const { return csv_out_ != nullptr || tokens_out_ != nullptr; }
  void write_row(const Pending& p);
  void flush_ready();

  std::int64_t rejected_ = 0;
  std::array<std::int64_t, kNumRejectReasons> rejected_by_{};
  std::string first_rejection_;
  std::int64_t max_waiting_ = 0;
  bool logs_ = false;
  std::vector<TokenLog> tokens_;  // by request id (in memory)
  // Streaming.
  std::ostream* csv_out_ = nullptr;
  std::ostream* tokens_out_ = nullptr;
  std::unordered_map<std::uint64_t, std::vector<Ns>> live_tokens_;  // unfinished requests' token times
  std::map<std::uint64_t, Pending> pending_;                         // finished or rejected, not yet written
  std::uint64_t next_id_ = 0;                                        // the lowest id not yet written or skipped
  std::string line_;
};

}  // namespace servesim
