// Per-request records and inter-token gaps, collected while the simulation runs.
// Inter-token latencies are kept as (gap, count) runs: every sequence that decodes in a step sees the same gap,
// so the runs stay O(steps) long while percentiles remain exact over all tokens.
// Memory grows with the run, so both are stored compactly and exactly: a finished request's record in about 41
// bytes instead of sizeof(RequestRecord) = 144 (RecordStore), a gap run in about 4.3 bytes instead of 16 (GapRuns),
// as measured on the benchmark load (scenarios/perf/azure-conv-1m.toml: ~6 runs a request); 10 M requests of it
// peak at 840 MB resident (tests/perf/bench_simulate.cpp, BM_RunPeakRss; the gap runs' sort at the end included).
// Streaming (stream_to): requests.csv rows and token-log lines go to their streams as requests finish, in request
// id order (a request finishing before a lower id waits in a small reorder buffer; ids that were rejected are
// skipped at once, ids still unfinished when the run stops are skipped by finish_streams), so the output bytes are
// those of writing every finished request sorted by id at the end, without holding the text in memory.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <iterator>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/common/units.h"
#include "sim/metrics/sink.h"

namespace servesim {

// RequestRecords in the order they were added, packed exactly. Every full chunk of kChunk records is stored field
// by field as offsets from the chunk's minimum in as few bits as the chunk's range needs (frame-of-reference
// bit packing); times as arrival plus the successive differences ready - arrival, first_scheduled - ready,
// first_token - first_scheduled, finish - first_token; the breakdown's durations as they are. Differences and
// offsets are taken modulo 2^64, so every int64 value round-trips exactly: there is no range to overflow, a chunk
// with extreme values only takes more bits (at most 64 a field, 176 bytes a record). On the benchmark load a record takes about 41 bytes (144 unpacked).
// The last, incomplete chunk is held unpacked (at most kChunk x sizeof(RequestRecord) = 576 KiB).
// Access is by index or by iteration; either decodes a RequestRecord by value. for_each visits every record in
// order faster: it decodes a block of records field by field, and only the fields asked for.
class RecordStore {
 public:
  static constexpr std::size_t kChunk = 4096;  // records per packed chunk: a chunk header per 4096 records
  static constexpr std::size_t kBlock = 64;    // records for_each decodes at a time (kChunk is a multiple)

  void push_back(const RequestRecord& r);
  [[nodiscard]] std::size_t size() const { return chunks_.size() * kChunk + open_.size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  // Record i (0 <= i < size()), decoded.
  [[nodiscard]] RequestRecord operator[](std::size_t i) const;
  // Groups of a record's fields, for for_each to decode.
  enum Parts : unsigned {
    kIds = 1,        // id, replica, prefill_replica, dp_rank
    kCounts = 2,     // preemptions, prompt_tokens, output_tokens, cached_tokens
    kTimes = 4,      // arrival, ready, first_scheduled, first_token, finish
    kBreakdown = 8,  // prefill, prefill_preempted, decode, decode_preempted, step_*, decode_wait, kv_transfer
    kAllParts = 15,
  };
  // Calls f(const RequestRecord&) for every record, in the order they were added. The fields of the groups in
  // `parts` are the record's; the others hold unspecified values.
  template <class F>
  void for_each(F&& f, unsigned parts = kAllParts) const {
    std::array<RequestRecord, kBlock> block;
    for (std::size_t first = 0; first < chunks_.size() * kChunk; first += kBlock) {
      decode_block(first, parts, block);
      for (const RequestRecord& r : block) f(r);
    }
    for (const RequestRecord& r : open_) f(r);
  }
  // Bytes of heap the store holds (packed words, chunk headers and the unpacked tail's capacity).
  [[nodiscard]] std::size_t heap_bytes() const;

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = RequestRecord;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = RequestRecord;
    const_iterator() = default;
    const_iterator(const RecordStore* s, std::size_t i) : s_(s), i_(i) {}
    RequestRecord operator*() const { return (*s_)[i_]; }
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator t = *this;
      ++i_;
      return t;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) { return a.i_ == b.i_; }

   private:
    const RecordStore* s_ = nullptr;
    std::size_t i_ = 0;
  };
  [[nodiscard]] const_iterator begin() const { return {this, 0}; }
  [[nodiscard]] const_iterator end() const { return {this, size()}; }

 private:
  static constexpr std::size_t kFields = 23;
  using Fields = std::array<std::uint64_t, kFields>;
  struct Chunk {
    Fields base{};                               // each field's minimum over the chunk (as int64)
    std::array<std::uint8_t, kFields> width{};   // bits of each field's offset from base, 0-64
    std::array<std::uint16_t, kFields> offset{};  // bit offset of each field within a record
    std::uint32_t record_bits = 0;               // sum of the widths
    std::vector<std::uint64_t> words;            // kChunk x record_bits bits, record after record; 1 word more
  };
  [[nodiscard]] static Fields fields_of(const RequestRecord& r);
  [[nodiscard]] static RequestRecord record_of(const Fields& f);
  void pack();
  // Records first .. first + kBlock - 1 (first a multiple of kBlock, in a packed chunk): the fields in `parts`.
  void decode_block(std::size_t first, unsigned parts, std::array<RequestRecord, kBlock>& out) const;

  std::vector<Chunk> chunks_;
  std::vector<RequestRecord> open_;  // the records after the last full chunk
};

// Inter-token gaps (ns) as (gap, count) runs of equal consecutive gaps, stored as a multiset of runs: the runs'
// time order is not kept (the statistics sort them). A run with 0 <= gap < 2^32 ns (4.3 s) and count < 2^12 takes
// 4 bytes: (gap mod 2^20) << 12 | count in the bucket of gap >> 20 (2^12 buckets of 1.05 ms, each a std::deque of
// 512-byte blocks, created when its first run comes and found through a table of 2^12 slots); any other run (a
// longer or negative gap, 4096 tokens or more) is kept whole, 16 bytes. The last run stays open, so that the next
// equal gap extends it.
class GapRuns {
 public:
  using Run = std::pair<std::int64_t, std::int64_t>;  // (gap ns, count >= 1)

  // Adds `count` (>= 1) equal gaps: the same runs as `count` calls of add(gap).
  void add(std::int64_t gap, std::int64_t count = 1) {
    if (open_.second > 0 && open_.first == gap) {
      open_.second += count;
    } else {
      close();
      open_ = {gap, count};
    }
  }
  // Number of runs.
  [[nodiscard]] std::size_t size() const { return stored_ + (open_.second > 0 ? 1 : 0); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  // Calls f(gap, count) for every run in ascending (gap, count) order while f returns true. The first call after
  // runs were added sorts the stored runs (O(runs) time for the packed ones; a bucket of n runs is sorted as a
  // vector with a radix sort's scratch, 8 x n bytes meanwhile).
  template <class F>
  void for_each_sorted(F&& f) const;

  // Every run, in no particular order (storage order), as Run values.
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Run;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Run;
    const_iterator() = default;
    Run operator*() const;
    const_iterator& operator++();
    const_iterator operator++(int) {
      const_iterator t = *this;
      ++*this;
      return t;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) {
      return a.phase_ == b.phase_ && a.i_ == b.i_ && (a.phase_ != 0 || a.key_ == b.key_);
    }

   private:
    friend class GapRuns;
    const_iterator(const GapRuns* g, int phase);
    void settle();  // moves past empty buckets and phases
    const GapRuns* g_ = nullptr;
    int phase_ = 3;  // 0 buckets, 1 whole runs, 2 the open run, 3 end
    std::uint32_t key_ = 0;  // phase 0: the bucket
    std::size_t i_ = 0;
  };
  [[nodiscard]] const_iterator begin() const { return {this, 0}; }
  [[nodiscard]] const_iterator end() const { return {this, 3}; }

 private:
  static constexpr int kLowBits = 20;    // gap bits inside an entry
  static constexpr int kCountBits = 12;  // count bits inside an entry
  static constexpr std::int64_t kMaxPackedGap = std::int64_t{1} << 32;
  static constexpr std::int64_t kMaxPackedCount = std::int64_t{1} << kCountBits;
  static constexpr std::uint32_t kBuckets = std::uint32_t{1} << (32 - kLowBits);
  [[nodiscard]] static Run decode(std::uint32_t key, std::uint32_t entry) {
    return {(std::int64_t{key} << kLowBits) | std::int64_t{entry >> kCountBits},
            std::int64_t{entry & (kMaxPackedCount - 1)}};
  }
  // The entries of bucket `key`, or nullptr when it has none.
  [[nodiscard]] const std::deque<std::uint32_t>* bucket(std::uint32_t key) const {
    return slot_.empty() || slot_[key] == 0 ? nullptr : &buckets_[slot_[key] - 1];
  }
  void close();
  void sort() const;

  // Sorted in place by for_each_sorted (the multiset is unchanged), hence mutable.
  // Bucket key's entries are buckets_[slot_[key] - 1], in the order the buckets were created (slot_[key] == 0: no
  // bucket yet); slot_ is empty until a run is packed, then has kBuckets slots.
  mutable std::vector<std::deque<std::uint32_t>> buckets_;
  std::vector<std::uint16_t> slot_;
  mutable std::vector<Run> whole_;
  mutable bool sorted_ = true;
  Run open_{0, 0};
  std::size_t stored_ = 0;  // runs in buckets_ and whole_
};

template <class F>
void GapRuns::for_each_sorted(F&& f) const {
  sort();
  std::size_t w = 0;
  bool open_left = open_.second > 0;
  // The least run not yet emitted among the whole runs and the open run (nullptr when none is left).
  auto least_other = [&]() -> const Run* {
    const Run* next = w < whole_.size() ? &whole_[w] : nullptr;
    if (open_left && (next == nullptr || open_ < *next)) next = &open_;
    return next;
  };
  const Run* other = least_other();
  // Emits the whole runs and the open run that sort before `limit` (all of them for nullptr); false when f
  // asked to stop.
  auto emit_below = [&](const Run* limit) {
    while (other != nullptr && (limit == nullptr || *other < *limit)) {
      const Run* next = other;
      if (next == &open_) {
        open_left = false;
      } else {
        ++w;
      }
      other = least_other();
      if (!f(next->first, next->second)) return false;
    }
    return true;
  };
  for (std::uint32_t key = 0; key < slot_.size(); ++key) {
    const std::deque<std::uint32_t>* entries = bucket(key);
    if (entries == nullptr) continue;
    for (const std::uint32_t e : *entries) {
      const Run r = decode(key, e);
      if (other != nullptr && *other < r && !emit_below(&r)) return;
      if (!f(r.first, r.second)) return;
    }
  }
  emit_below(nullptr);
}

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
  // Modeled step time by kind (seconds, summed over steps): compute-, memory-bound operators, communication,
  // engine overhead.
  double compute_s = 0, memory_s = 0, communication_s = 0, overhead_s = 0;
  double kv_usage_sum = 0;   // KV blocks used / usable at each step start, summed over steps
  double kv_usage_peak = 0;  // the largest such fraction
  std::int64_t waiting_sum = 0;  // the engine's waiting queue at each step start, summed over steps
};

// The run's books: every finished request's record, the ITL gaps, step statistics, rejections (a RunSink).
class Recorder final : public RunSink {
 public:
  void inter_token(Ns gap) override { add_gap(gap); }
  // inter_token without the virtual call (the engine's per-token path).
  void add_gap(Ns gap) { itl_.add(gap.v); }
  // `count` (>= 1) equal gaps, as `count` calls of add_gap.
  void add_gaps(Ns gap, std::int64_t count) { itl_.add(gap.v, count); }
  void finished(const RequestRecord& r) override;
  // `detail` is read for the run's first rejection only.
  void rejected(Ns t, std::uint64_t id, RejectReason why, const std::function<std::string()>& detail) override;
  void step_started(const StepEvent& s) override;
  void queued(Ns, std::uint64_t, std::int32_t, std::int32_t, std::int64_t waiting) override {
    max_waiting_ = std::max(max_waiting_, waiting);
  }
  [[nodiscard]] bool wants_tokens() const override { return logs_; }
  void token(Ns t, std::uint64_t id) override { log_token(id, t); }

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

  // Finished requests, in finish order.
  [[nodiscard]] const RecordStore& records() const { return records_; }
  // Inter-token gaps (ns) as (gap, count) runs.
  [[nodiscard]] const GapRuns& itl_runs() const { return itl_; }
  [[nodiscard]] const StepStats& steps() const { return steps_; }
  [[nodiscard]] std::int64_t rejected_count() const { return rejected_; }
  [[nodiscard]] std::int64_t rejected_count(RejectReason why) const {
    return rejected_by_[static_cast<std::size_t>(why)];
  }
  // The first rejected request and its reason, in words ("" when none was rejected).
  [[nodiscard]] const std::string& first_rejection() const { return first_rejection_; }
  [[nodiscard]] std::int64_t max_waiting() const { return max_waiting_; }

 private:
  RecordStore records_;
  GapRuns itl_;
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
