#include "sim/metrics/trace_writer.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

#include "models/common/error.h"

namespace servesim {

namespace {

// Exact ns as microseconds with three decimals ("12.345" for 12345 ns).
struct Us {
  Ns t;
};

// ms of a modeled time in seconds, to the ns.
double ms_of(double seconds) { return seconds * 1e3; }

Ns clamp_ns(double seconds, Ns most) {
  const double ns = std::round(seconds * 1e9);
  if (!(ns > 0)) return Ns{0};
  if (ns >= static_cast<double>(most.v)) return most;
  return Ns{static_cast<std::int64_t>(ns)};
}

}  // namespace

}  // namespace servesim

template <>
struct fmt::formatter<servesim::Us> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class Ctx>
  auto format(const servesim::Us& u, Ctx& ctx) const {
    const std::int64_t v = u.t.v;
    const std::uint64_t a = v < 0 ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
    return fmt::format_to(ctx.out(), "{}{}.{:03}", v < 0 ? "-" : "", a / 1000, a % 1000);
  }
};

namespace servesim {

TraceWriter::TraceWriter(std::ostream& out, std::int64_t sample_every) : out_(&out), sample_every_(sample_every) {
  if (sample_every < 1) {
    throw InputError("--trace-sample: " + std::to_string(sample_every) + " is not an integer >= 1");
  }
  buf_ = "{\"traceEvents\":[";
}

const char* TraceWriter::bound_of(const StepEvent& s) {
  const char* name = "compute";
  double best = s.compute_s;
  if (s.memory_s > best) {
    name = "memory";
    best = s.memory_s;
  }
  if (s.communication_s > best) {
    name = "communication";
    best = s.communication_s;
  }
  if (s.overhead_s > best) name = "overhead";
  return name;
}

void TraceWriter::begin_event() {
  buf_ += events_ == 0 ? "\n" : ",\n";
  ++events_;
}

void TraceWriter::flush_if_large() {
  if (buf_.size() >= (std::size_t{1} << 16)) {
    out_->write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    buf_.clear();
  }
}

void TraceWriter::close() {
  if (closed_) return;
  closed_ = true;
  fmt::format_to(std::back_inserter(buf_), "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{{\"sample_every\":\"{}\"}}}}\n",
                 sample_every_);
  out_->write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  buf_.clear();
  buf_.shrink_to_fit();
}

void TraceWriter::process(std::int32_t pid) {
  const auto i = static_cast<std::size_t>(pid);
  if (i >= process_named_.size()) process_named_.resize(i + 1, false);
  if (process_named_[i]) return;
  process_named_[i] = true;
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"process_name","ph":"M","pid":{},"tid":0,"args":{{"name":"replica {}"}}}})", pid, pid);
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"process_sort_index","ph":"M","pid":{},"tid":0,"args":{{"sort_index":{}}}}})", pid, pid);
}

void TraceWriter::thread(std::int32_t pid, std::int32_t tid) {
  process(pid);
  if (!thread_named_.emplace(pid, tid).second) return;
  std::string name;
  if (tid >= kTransferTid) {
    name = tid == kTransferTid ? "kv transfer" : fmt::format("kv transfer {}", tid - kTransferTid);
  } else if (tid >= kCommunicationTid) {
    name = tid == kCommunicationTid ? "communication" : fmt::format("communication {}", tid - kCommunicationTid);
  } else {
    name = fmt::format("engine {}", tid);
  }
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"thread_name","ph":"M","pid":{},"tid":{},"args":{{"name":"{}"}}}})", pid, tid, name);
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"thread_sort_index","ph":"M","pid":{},"tid":{},"args":{{"sort_index":{}}}}})", pid, tid,
                 tid);
}

void TraceWriter::arrived(Ns /*t*/, const Request& r, std::int32_t replica) {
  if (closed_ || !kept(r.id)) return;
  const auto i = static_cast<std::size_t>(replica);
  if (i >= kept_on_replica_.size()) kept_on_replica_.resize(i + 1, 0);
  ++kept_on_replica_[i];
  kept_in_flight_[r.id] = replica;
}

void TraceWriter::drop_in_flight(std::uint64_t id) {
  const auto it = kept_in_flight_.find(id);
  if (it == kept_in_flight_.end()) return;
  --kept_on_replica_[static_cast<std::size_t>(it->second)];
  kept_in_flight_.erase(it);
}

void TraceWriter::rejected(Ns /*t*/, std::uint64_t id, RejectReason /*why*/,
                           const std::function<std::string()>& /*detail*/) {
  drop_in_flight(id);
}

void TraceWriter::preempted(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine) {
  if (closed_ || !kept(id)) return;
  thread(replica, engine);
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"preempt","cat":"request","ph":"i","s":"t","pid":{},"tid":{},"ts":{},"args":{{"request":{}}}}})",
                 replica, engine, Us{t}, id);
  flush_if_large();
}

void TraceWriter::async(char ph, const char* name, std::uint64_t id, std::int32_t pid, Ns t) {
  begin_event();
  fmt::format_to(std::back_inserter(buf_), R"({{"name":"{}","cat":"request","ph":"{}","id":{},"pid":{},"tid":0,"ts":{}}})",
                 name, ph, id, pid, Us{t});
}

void TraceWriter::finished(const RequestRecord& r) {
  drop_in_flight(r.id);
  if (closed_ || !kept(r.id)) return;
  // The request lives on the replica that ran its prefill; a disaggregated request's decode is drawn on its decode
  // replica, from the moment its KV arrived (the transfer has its own spans).
  const std::int32_t home = r.prefill_replica;
  process(home);
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"request {}","cat":"request","ph":"b","id":{},"pid":{},"tid":0,"ts":{},)"
                 R"("args":{{"prompt_tokens":{},"output_tokens":{},"preemptions":{},"ttft_ms":{:.6f},"e2el_ms":{:.6f}}}}})",
                 r.id, r.id, home, Us{r.arrival}, r.prompt_tokens, r.output_tokens, r.preemptions,
                 ns_to_ms(r.first_token - r.arrival), ns_to_ms(r.finish - r.arrival));
  if (r.ready > r.arrival) {
    async('b', "front end", r.id, home, r.arrival);
    async('e', "front end", r.id, home, r.ready);
  }
  async('b', "queue", r.id, home, r.ready);
  async('e', "queue", r.id, home, r.first_scheduled);
  async('b', "prefill", r.id, home, r.first_scheduled);
  async('e', "prefill", r.id, home, r.first_token);
  if (home == r.replica) {
    async('b', "decode", r.id, home, r.first_token);
    async('e', "decode", r.id, home, r.finish);
  } else {
    process(r.replica);
    async('b', "decode", r.id, r.replica, r.first_token + r.decode_wait + r.kv_transfer);
    async('e', "decode", r.id, r.replica, r.finish);
  }
  begin_event();
  fmt::format_to(std::back_inserter(buf_), R"({{"name":"request {}","cat":"request","ph":"e","id":{},"pid":{},"tid":0,"ts":{}}})",
                 r.id, r.id, home, Us{r.finish});
  flush_if_large();
}

void TraceWriter::step_started(const StepEvent& s) {
  if (closed_) return;
  if (sample_every_ > 1) {
    const auto i = static_cast<std::size_t>(s.replica);
    if (i >= kept_on_replica_.size() || kept_on_replica_[i] == 0) return;
  }
  thread(s.replica, s.engine);
  const Ns dur = s.end - s.start;
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"step","cat":"step","ph":"X","pid":{},"tid":{},"ts":{},"dur":{},"args":{{)"
                 R"("prefill_tokens":{},"decode_seqs":{},"batch_seqs":{},"waiting":{},"running":{},"bound":"{}",)"
                 R"("overhead_ms":{:.6f},"compute_ms":{:.6f},"memory_ms":{:.6f},"communication_ms":{:.6f}}}}})",
                 s.replica, s.engine, Us{s.start}, Us{dur}, s.prefill_tokens, s.decode_seqs, s.num_seqs(), s.waiting,
                 s.running, bound_of(s), ms_of(s.overhead_s), ms_of(s.compute_s), ms_of(s.memory_s),
                 ms_of(s.communication_s));
  const Ns comm = clamp_ns(s.communication_s, dur);
  if (comm.v > 0) {
    const std::int32_t tid = kCommunicationTid + s.engine;
    thread(s.replica, tid);
    begin_event();
    fmt::format_to(std::back_inserter(buf_),
                   R"({{"name":"communication","cat":"communication","ph":"X","pid":{},"tid":{},"ts":{},"dur":{}}})",
                   s.replica, tid, Us{s.end - comm}, Us{comm});
  }
  flush_if_large();
}

std::uint64_t TraceWriter::take_lane(std::int32_t replica) {
  const auto i = static_cast<std::size_t>(replica);
  if (i >= lane_busy_.size()) lane_busy_.resize(i + 1);
  auto& lanes = lane_busy_[i];
  const auto free = std::find(lanes.begin(), lanes.end(), false);
  const auto lane = static_cast<std::uint64_t>(free - lanes.begin());
  if (free == lanes.end()) {
    lanes.push_back(true);
  } else {
    *free = true;
  }
  return lane;
}

void TraceWriter::transfer_started(const TransferEvent& x) {
  if (closed_ || !kept(x.request)) return;
  const auto key = std::make_tuple(x.request, x.from_replica, x.to_replica);
  if (transfers_.count(key) != 0) return;
  Lanes l;
  l.src_lane = take_lane(x.from_replica);
  l.dst_lane = take_lane(x.to_replica);
  transfers_.emplace(key, l);
}

void TraceWriter::transfer_ended(const TransferEvent& x) {
  if (closed_ || !kept(x.request)) return;
  const auto key = std::make_tuple(x.request, x.from_replica, x.to_replica);
  if (transfers_.count(key) == 0) transfer_started(x);
  const Lanes l = transfers_.at(key);
  transfers_.erase(key);
  lane_busy_[static_cast<std::size_t>(x.from_replica)][l.src_lane] = false;
  lane_busy_[static_cast<std::size_t>(x.to_replica)][l.dst_lane] = false;
  const auto src_tid = kTransferTid + static_cast<std::int32_t>(l.src_lane);
  const auto dst_tid = kTransferTid + static_cast<std::int32_t>(l.dst_lane);
  const std::uint64_t flow = ++flows_;
  const Ns dur = x.end - x.start;
  thread(x.from_replica, src_tid);
  thread(x.to_replica, dst_tid);
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"kv send","cat":"kv_transfer","ph":"X","pid":{},"tid":{},"ts":{},"dur":{},)"
                 R"("args":{{"request":{},"to_replica":{},"bytes":{:.0f}}}}})",
                 x.from_replica, src_tid, Us{x.start}, Us{dur}, x.request, x.to_replica, x.bytes);
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"kv transfer","cat":"kv_transfer","ph":"s","id":{},"pid":{},"tid":{},"ts":{}}})", flow,
                 x.from_replica, src_tid, Us{x.start});
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"kv receive","cat":"kv_transfer","ph":"X","pid":{},"tid":{},"ts":{},"dur":{},)"
                 R"("args":{{"request":{},"from_replica":{},"bytes":{:.0f}}}}})",
                 x.to_replica, dst_tid, Us{x.start}, Us{dur}, x.request, x.from_replica, x.bytes);
  begin_event();
  fmt::format_to(std::back_inserter(buf_),
                 R"({{"name":"kv transfer","cat":"kv_transfer","ph":"f","bp":"e","id":{},"pid":{},"tid":{},"ts":{}}})",
                 flow, x.to_replica, dst_tid, Us{x.start});
  flush_if_large();
}

}  // namespace servesim
