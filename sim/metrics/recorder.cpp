#include "sim/metrics/recorder.h"

#include <bit>
#include <boost/sort/pdqsort/pdqsort.hpp>
#include <limits>
#include <ostream>

#include "sim/io/measured.h"
#include "sim/metrics/sort_values.h"
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
          u64(r.cached_tokens),
          u64(r.dp_rank)};
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
  r.dp_rank = static_cast<std::int32_t>(i64(f[22]));
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
  if (c.record_bits == 0) {
    chunks_.push_back(std::move(c));
    open_.clear();
    return;
  }
  // The fields one after another, as a stream of bits: `acc` holds the bits of word w so far (`used` of them) and
  // is stored after every field (a plain store: no word is read back). One word more than the bits need, so
  // that the decoder may always read the word after a field's first (and the last store has a place).
  c.words.assign((open_.size() * c.record_bits + 63) / 64 + 1, 0);
  std::uint64_t* words = c.words.data();
  std::size_t w = 0;
  std::uint64_t acc = 0;
  unsigned used = 0;  // < 64
  for (const RequestRecord& r : open_) {
    const Fields f = fields_of(r);
    for (std::size_t k = 0; k < kFields; ++k) {
      const std::uint64_t v = f[k] - c.base[k];  // the offset from the base, below 2^width (0 at width 0)
      acc |= v << used;
      words[w] = acc;
      const unsigned total = used + c.width[k];
      const std::uint64_t carry = (v >> 1) >> (63 - used);  // v's bits beyond word w: v >> (64 - used), 0 at 0
      // Without a branch (whether a field ends a word varies from field to field): full is 1 when it does.
      const std::uint64_t full = total / 64;
      const std::uint64_t keep = full - 1;  // all ones when it does not
      acc = (acc & keep) | (carry & ~keep);
      w += full;
      used = total % 64;
    }
  }
  words[w] = acc;
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

namespace {

// The group (RecordStore::Parts) of each field of RecordStore::fields_of.
constexpr std::array<unsigned, 23> kFieldPart = {
    RecordStore::kIds,       RecordStore::kIds,       RecordStore::kCounts,    RecordStore::kCounts,
    RecordStore::kCounts,    RecordStore::kTimes,     RecordStore::kTimes,     RecordStore::kTimes,
    RecordStore::kTimes,     RecordStore::kTimes,     RecordStore::kBreakdown, RecordStore::kBreakdown,
    RecordStore::kBreakdown, RecordStore::kBreakdown, RecordStore::kBreakdown, RecordStore::kBreakdown,
    RecordStore::kBreakdown, RecordStore::kBreakdown, RecordStore::kIds,       RecordStore::kBreakdown,
    RecordStore::kBreakdown, RecordStore::kCounts,    RecordStore::kIds};

using Block = std::array<RequestRecord, RecordStore::kBlock>;
using Column = std::array<std::uint64_t, RecordStore::kBlock>;

template <class Set>
void set_each(Block& out, const Column& col, Set set) {
  for (std::size_t i = 0; i < out.size(); ++i) set(out[i], col[i]);
}

Ns ns_after(Ns t, std::uint64_t d) { return Ns{i64(u64(t.v) + d)}; }

// Stores the values of field k (RecordStore::fields_of's order) into the records, as RecordStore::record_of does; a
// time after arrival (k = 6 .. 9) is added to the time before it, stored before.
void set_field(std::size_t k, const Column& col, Block& out) {
  using R = RequestRecord;
  using V = std::uint64_t;
  switch (k) {
    case 0: return set_each(out, col, [](R& r, V v) { r.id = v; });
    case 1: return set_each(out, col, [](R& r, V v) { r.replica = static_cast<std::int32_t>(i64(v)); });
    case 2: return set_each(out, col, [](R& r, V v) { r.preemptions = static_cast<std::int32_t>(i64(v)); });
    case 3: return set_each(out, col, [](R& r, V v) { r.prompt_tokens = i64(v); });
    case 4: return set_each(out, col, [](R& r, V v) { r.output_tokens = i64(v); });
    case 5: return set_each(out, col, [](R& r, V v) { r.arrival = Ns{i64(v)}; });
    case 6: return set_each(out, col, [](R& r, V v) { r.ready = ns_after(r.arrival, v); });
    case 7: return set_each(out, col, [](R& r, V v) { r.first_scheduled = ns_after(r.ready, v); });
    case 8: return set_each(out, col, [](R& r, V v) { r.first_token = ns_after(r.first_scheduled, v); });
    case 9: return set_each(out, col, [](R& r, V v) { r.finish = ns_after(r.first_token, v); });
    case 10: return set_each(out, col, [](R& r, V v) { r.prefill = Ns{i64(v)}; });
    case 11: return set_each(out, col, [](R& r, V v) { r.prefill_preempted = Ns{i64(v)}; });
    case 12: return set_each(out, col, [](R& r, V v) { r.decode = Ns{i64(v)}; });
    case 13: return set_each(out, col, [](R& r, V v) { r.decode_preempted = Ns{i64(v)}; });
    case 14: return set_each(out, col, [](R& r, V v) { r.step_compute = Ns{i64(v)}; });
    case 15: return set_each(out, col, [](R& r, V v) { r.step_memory = Ns{i64(v)}; });
    case 16: return set_each(out, col, [](R& r, V v) { r.step_communication = Ns{i64(v)}; });
    case 17: return set_each(out, col, [](R& r, V v) { r.step_overhead = Ns{i64(v)}; });
    case 18: return set_each(out, col, [](R& r, V v) { r.prefill_replica = static_cast<std::int32_t>(i64(v)); });
    case 19: return set_each(out, col, [](R& r, V v) { r.decode_wait = Ns{i64(v)}; });
    case 20: return set_each(out, col, [](R& r, V v) { r.kv_transfer = Ns{i64(v)}; });
    case 21: return set_each(out, col, [](R& r, V v) { r.cached_tokens = i64(v); });
    case 22: return set_each(out, col, [](R& r, V v) { r.dp_rank = static_cast<std::int32_t>(i64(v)); });
    default: return;
  }
}

}  // namespace

void RecordStore::decode_block(std::size_t first, unsigned parts, std::array<RequestRecord, kBlock>& out) const {
  static_assert(kFieldPart.size() == kFields);
  const Chunk& c = chunks_[first / kChunk];
  const std::uint64_t* words = c.words.data();
  Column col;
  // Field by field (in order: a time after arrival needs the time before it): each field's width and bit offset
  // hold for the whole block.
  for (std::size_t k = 0; k < kFields; ++k) {
    if ((kFieldPart[k] & parts) == 0) continue;
    const unsigned width = c.width[k];
    const std::uint64_t base = c.base[k];
    if (width == 0) {
      col.fill(base);
    } else {
      const std::uint64_t mask = mask_of(width);
      std::size_t pos = (first % kChunk) * c.record_bits + c.offset[k];
      for (std::uint64_t& x : col) {
        const std::size_t w = pos / 64;
        const unsigned shift = pos % 64;
        // The bits from the next word (which pack() provides past the last bit, a field of width > 0 being
        // there): (next << 1) << (63 - shift) is next << (64 - shift), and 0 at shift 0.
        const std::uint64_t next = words[w + 1];
        x = base + (((words[w] >> shift) | ((next << 1) << (63 - shift))) & mask);
        pos += c.record_bits;
      }
    }
    set_field(k, col, out);
  }
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
    if (slot_.empty()) slot_.assign(kBuckets, 0);
    std::uint16_t& slot = slot_[key];
    if (slot == 0) {
      // Room for every bucket at once: the deques never move (a deque's move may allocate).
      if (buckets_.capacity() < kBuckets) buckets_.reserve(kBuckets);
      buckets_.emplace_back();
      slot = static_cast<std::uint16_t>(buckets_.size());
    }
    buckets_[slot - 1].push_back((low << kCountBits) | static_cast<std::uint32_t>(n));
  } else {
    whole_.push_back(open_);
  }
  ++stored_;
  sorted_ = false;
  open_ = {0, 0};
}

void GapRuns::sort() const {
  if (sorted_) return;
  // Within a bucket, the order of entries (low gap bits, then count) is the order of (gap, count). Each bucket is
  // sorted as a vector (sort_ascending: LSD radix sort, or pattern-defeating quicksort when small) and copied back.
  // A large bucket's vector and radix scratch are freed once it is sorted.
  constexpr std::size_t kSmall = 4096;
  std::vector<std::uint32_t> small;  // the entries of a small bucket
  std::vector<std::uint32_t> small_scratch;
  for (std::deque<std::uint32_t>& entries : buckets_) {
    if (entries.size() < kSmall) {
      small.assign(entries.begin(), entries.end());
      sort_ascending(small, small_scratch);
      std::copy(small.begin(), small.end(), entries.begin());
      continue;
    }
    std::vector<std::uint32_t> v(entries.begin(), entries.end());
    std::vector<std::uint32_t> scratch;
    sort_ascending(v, scratch);
    std::copy(v.begin(), v.end(), entries.begin());
  }
  boost::sort::pdqsort(whole_.begin(), whole_.end());
  sorted_ = true;
}

GapRuns::const_iterator::const_iterator(const GapRuns* g, int phase) : g_(g), phase_(phase) { settle(); }

void GapRuns::const_iterator::settle() {
  if (phase_ == 0) {
    for (; key_ < g_->slot_.size(); ++key_, i_ = 0) {
      const std::deque<std::uint32_t>* entries = g_->bucket(key_);
      if (entries != nullptr && i_ < entries->size()) return;
    }
    phase_ = 1;
    key_ = 0;
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
  if (phase_ == 0) return decode(key_, (*g_->bucket(key_))[i_]);
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
