#include "sim/metrics/recorder.h"

#include <bit>
#include <boost/sort/pdqsort/pdqsort.hpp>
#include <limits>
#include <ostream>

#include "sim/io/measured.h"
#include "sim/metrics/summary.h"

namespace servesim {

const char* reject_reason_name(RejectReason r) {
  switch (r) {
    case RejectReason::exceeds_max_model_len:
      return "exceeds_max_model_len";
    case RejectReason::exceeds_kv_cache:
      return "exceeds_kv_cache";
    case RejectReason::queue_full:
      return "queue_full";
    case RejectReason::global_queue_full:
      return "global_queue_full";
  }
  return "unknown";
}

namespace {

constexpr std::uint64_t mask_of(unsigned width) {
  return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1;
}

// Writes the low `width` bits of v at bit `pos` of `words` (zeroed before).
void put_bits(std::vector<std::uint64_t>& words, std::size_t pos, unsigned width, std::uint64_t v) {
  if (width == 0) return;
  const std::size_t w = pos / 64;
  const unsigned shift = pos % 64;
  words[w] |= v << shift;
  if (shift + width > 64) words[w + 1] |= v >> (64 - shift);
}

std::uint64_t get_bits(const std::vector<std::uint64_t>& words, std::size_t pos, unsigned width) {
  if (width == 0) return 0;
  const std::size_t w = pos / 64;
  const unsigned shift = pos % 64;
  std::uint64_t v = words[w] >> shift;
  if (shift + width > 64) v |= words[w + 1] << (64 - shift);
  return v & mask_of(width);
}

std::uint64_t u64(std::int64_t v) { return static_cast<std::uint64_t>(v); }
std::int64_t i64(std::uint64_t v) { return static_cast<std::int64_t>(v); }  // modulo 2^64 (C++20)

}  // namespace

RecordStore::Fields RecordStore::fields_of(const RequestRecord& r) {
  return {r.id,
          u64(r.replica),
          u64(r.preemptions),
          u64(r.prompt_tokens),
          u64(r.output_tokens),
          u64(r.arrival.v),
          u64(r.ready.v) - u64(r.arrival.v),
          u64(r.first_scheduled.v) - u64(r.ready.v),
          u64(r.first_token.v) - u64(r.first_scheduled.v),
          u64(r.finish.v) - u64(r.first_token.v),
          u64(r.prefill.v),
          u64(r.prefill_preempted.v),
          u64(r.decode.v),
          u64(r.decode_preempted.v),
          u64(r.step_compute.v),
          u64(r.step_memory.v),
          u64(r.step_communication.v),
          u64(r.step_overhead.v),
          u64(r.prefill_replica),
          u64(r.decode_wait.v),
          u64(r.kv_transfer.v),
          u64(r.cached_tokens)};
}

RequestRecord RecordStore::record_of(const Fields& f) {
  RequestRecord r;
  r.id = f[0];
  r.replica = static_cast<std::int32_t>(i64(f[1]));
  r.preemptions = static_cast<std::int32_t>(i64(f[2]));
  r.prompt_tokens = i64(f[3]);
  r.output_tokens = i64(f[4]);
  std::uint64_t t = f[5];
  r.arrival = Ns{i64(t)};
  t += f[6];
  r.ready = Ns{i64(t)};
  t += f[7];
  r.first_scheduled = Ns{i64(t)};
  t += f[8];
  r.first_token = Ns{i64(t)};
  t += f[9];
  r.finish = Ns{i64(t)};
  r.prefill = Ns{i64(f[10])};
  r.prefill_preempted = Ns{i64(f[11])};
  r.decode = Ns{i64(f[12])};
  r.decode_preempted = Ns{i64(f[13])};
  r.step_compute = Ns{i64(f[14])};
  r.step_memory = Ns{i64(f[15])};
  r.step_communication = Ns{i64(f[16])};
  r.step_overhead = Ns{i64(f[17])};
  r.prefill_replica = static_cast<std::int32_t>(i64(f[18]));
  r.decode_wait = Ns{i64(f[19])};
  r.kv_transfer = Ns{i64(f[20])};
  r.cached_tokens = i64(f[21]);
  return r;
}

void RecordStore::push_back(const RequestRecord& r) {
  if (open_.capacity() < kChunk) open_.reserve(kChunk);
  open_.push_back(r);
  if (open_.size() == kChunk) pack();
}

void RecordStore::pack() {
  Chunk c;
  std::array<std::int64_t, kFields> lo, hi;
  lo.fill(std::numeric_limits<std::int64_t>::max());
  hi.fill(std::numeric_limits<std::int64_t>::min());
  for (const RequestRecord& r : open_) {
    const Fields f = fields_of(r);
    for (std::size_t k = 0; k < kFields; ++k) {
      lo[k] = std::min(lo[k], i64(f[k]));
      hi[k] = std::max(hi[k], i64(f[k]));
    }
  }
  for (std::size_t k = 0; k < kFields; ++k) {
    c.base[k] = u64(lo[k]);
    // hi - lo as an unsigned difference: exact, 0 .. 2^64 - 1.
    c.width[k] = static_cast<std::uint8_t>(std::bit_width(u64(hi[k]) - u64(lo[k])));
    c.offset[k] = static_cast<std::uint16_t>(c.record_bits);
    c.record_bits += c.width[k];
  }
  c.words.assign((open_.size() * c.record_bits + 63) / 64, 0);
  std::size_t pos = 0;
  for (const RequestRecord& r : open_) {
    const Fields f = fields_of(r);
    for (std::size_t k = 0; k < kFields; ++k) put_bits(c.words, pos + c.offset[k], c.width[k], f[k] - c.base[k]);
    pos += c.record_bits;
  }
  chunks_.push_back(std::move(c));
  open_.clear();
}

RequestRecord RecordStore::operator[](std::size_t i) const {
  const std::size_t chunk = i / kChunk;
  if (chunk >= chunks_.size()) return open_[i - chunks_.size() * kChunk];
  const Chunk& c = chunks_[chunk];
  const std::size_t pos = (i % kChunk) * c.record_bits;
  Fields f;
  for (std::size_t k = 0; k < kFields; ++k) f[k] = c.base[k] + get_bits(c.words, pos + c.offset[k], c.width[k]);
  return record_of(f);
}

std::size_t RecordStore::heap_bytes() const {
  std::size_t n = chunks_.capacity() * sizeof(Chunk) + open_.capacity() * sizeof(RequestRecord);
  for (const Chunk& c : chunks_) n += c.words.capacity() * sizeof(std::uint64_t);
  return n;
}

void GapRuns::close() {
  if (open_.second == 0) return;
  const auto [gap, n] = open_;
  if (gap >= 0 && gap < kMaxPackedGap && n < kMaxPackedCount) {
    const auto key = static_cast<std::uint32_t>(gap >> kLowBits);
    const auto low = static_cast<std::uint32_t>(gap & ((std::int64_t{1} << kLowBits) - 1));
    if (last_.entries == nullptr || last_.key != key) {
      last_.key = key;
      last_.entries = &buckets_[key];
    }
    last_.entries->push_back((low << kCountBits) | static_cast<std::uint32_t>(n));
  } else {
    whole_.push_back(open_);
  }
  ++stored_;
  sorted_ = false;
  open_ = {0, 0};
}

namespace {

// Sorts a bucket's entries ascending. A large bucket (the gaps of a long run of steady steps stay within one bucket's
// 1.05 ms: millions of entries) by LSD radix sort on four 8-bit digits: one pass counts every digit, then each digit
// whose values are not all equal is scattered, stably, between the bucket and `scratch` (so the result is sorted);
// O(n) time, n x 4 bytes of scratch while it sorts. A small one by pattern-defeating quicksort (Boost.Sort).
void sort_entries(std::deque<std::uint32_t>& entries, std::vector<std::uint32_t>& scratch) {
  const std::size_t n = entries.size();
  if (n < 4096) {
    boost::sort::pdqsort(entries.begin(), entries.end());
    return;
  }
  std::array<std::array<std::size_t, 256>, 4> count{};
  for (const std::uint32_t e : entries) {
    for (unsigned d = 0; d < 4; ++d) ++count[d][(e >> (8 * d)) & 0xffu];
  }
  scratch.resize(n);
  bool in_scratch = false;
  auto scatter = [](const auto& from, auto& to, std::array<std::size_t, 256>& at, unsigned shift) {
    for (const std::uint32_t e : from) to[at[(e >> shift) & 0xffu]++] = e;
  };
  for (unsigned d = 0; d < 4; ++d) {
    std::array<std::size_t, 256>& at = count[d];
    if (std::find(at.begin(), at.end(), n) != at.end()) continue;  // one value of this digit: already in order
    std::size_t sum = 0;
    for (std::size_t& c : at) sum += std::exchange(c, sum);
    if (in_scratch) {
      scatter(scratch, entries, at, 8 * d);
    } else {
      scatter(entries, scratch, at, 8 * d);
    }
    in_scratch = !in_scratch;
  }
  if (in_scratch) std::copy(scratch.begin(), scratch.end(), entries.begin());
}

}  // namespace

void GapRuns::sort() const {
  if (sorted_) return;
  // Within a bucket, the order of entries (low gap bits, then count) is the order of (gap, count).
  std::vector<std::uint32_t> scratch;  // as large as the largest bucket, freed on return
  for (auto& [key, entries] : buckets_) sort_entries(entries, scratch);
  boost::sort::pdqsort(whole_.begin(), whole_.end());
  sorted_ = true;
}

GapRuns::const_iterator::const_iterator(const GapRuns* g, int phase) : g_(g), phase_(phase) {
  if (phase_ == 0) bucket_ = g_->buckets_.begin();
  settle();
}

void GapRuns::const_iterator::settle() {
  if (phase_ == 0) {
    while (bucket_ != g_->buckets_.end() && i_ >= bucket_->second.size()) {
      ++bucket_;
      i_ = 0;
    }
    if (bucket_ != g_->buckets_.end()) return;
    phase_ = 1;
    i_ = 0;
  }
  if (phase_ == 1) {
    if (i_ < g_->whole_.size()) return;
    phase_ = 2;
    i_ = 0;
  }
  if (phase_ == 2) {
    if (i_ == 0 && g_->open_.second > 0) return;
    phase_ = 3;
    i_ = 0;
  }
}

GapRuns::Run GapRuns::const_iterator::operator*() const {
  if (phase_ == 0) return decode(bucket_->first, bucket_->second[i_]);
  if (phase_ == 1) return g_->whole_[i_];
  return g_->open_;
}

GapRuns::const_iterator& GapRuns::const_iterator::operator++() {
  ++i_;
  settle();
  return *this;
}

void Recorder::rejected(Ns, std::uint64_t id, RejectReason why, const std::function<std::string()>& detail) {
  if (rejected_ == 0) first_rejection_ = detail();
  ++rejected_;
  ++rejected_by_[static_cast<std::size_t>(why)];
  if (streaming()) {
    pending_.emplace(id, Pending{kRejectedRow, {}});
    flush_ready();
  }
}

void Recorder::step_started(const StepEvent& e) {
  ++steps_.steps;
  steps_.tokens += e.total_tokens();
  steps_.seqs += e.num_seqs();
  steps_.preemptions += e.preempted;
  steps_.busy += e.end - e.start;
  steps_.compute_s += e.compute_s;
  steps_.memory_s += e.memory_s;
  steps_.communication_s += e.communication_s;
  steps_.overhead_s += e.overhead_s;
  const double usage = e.kv_blocks > 0 ? double(e.kv_used_blocks) / double(e.kv_blocks) : 0.0;
  steps_.kv_usage_sum += usage;
  steps_.kv_usage_peak = std::max(steps_.kv_usage_peak, usage);
  steps_.waiting_sum += e.waiting;
}

void Recorder::finished(const RequestRecord& r) {
  records_.push_back(r);
  if (streaming()) {
    Pending p{records_.size() - 1, {}};
    if (tokens_out_ != nullptr) {
      if (const auto it = live_tokens_.find(r.id); it != live_tokens_.end()) {
        p.tokens = std::move(it->second);
        live_tokens_.erase(it);
      }
    }
    pending_.emplace(r.id, std::move(p));
    flush_ready();
  }
}

void Recorder::stream_to(std::ostream* requests_csv, std::ostream* tokens_jsonl) {
  csv_out_ = requests_csv;
  tokens_out_ = tokens_jsonl;
  if (tokens_out_ != nullptr) logs_ = true;
  if (csv_out_ != nullptr) *csv_out_ << kRequestsCsvHeader;
}

void Recorder::write_row(const Pending& p) {
  if (p.row == kRejectedRow) return;
  const RequestRecord r = records_[p.row];
  if (csv_out_ != nullptr) {
    line_.clear();
    append_request_row(line_, r);
    *csv_out_ << line_;
  }
  if (tokens_out_ != nullptr) {
    MeasuredRequest m{ns_to_s(r.arrival), r.prompt_tokens, r.output_tokens, {}};
    m.token_times_s.reserve(p.tokens.size());
    for (const Ns t : p.tokens) m.token_times_s.push_back(ns_to_s(t));
    write_measured_jsonl(*tokens_out_, {m});
  }
}

void Recorder::flush_ready() {
  while (!pending_.empty() && pending_.begin()->first == next_id_) {
    write_row(pending_.begin()->second);
    pending_.erase(pending_.begin());
    ++next_id_;
  }
}

void Recorder::finish_streams() {
  for (const auto& [id, p] : pending_) write_row(p);
  pending_.clear();
  live_tokens_.clear();
}

}  // namespace servesim
