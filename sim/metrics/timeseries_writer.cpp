#include "sim/metrics/timeseries_writer.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <stdexcept>

#include <fmt/format.h>

#include "models/common/error.h"

namespace servesim {

namespace {

constexpr std::int64_t kNsPerMs = 1'000'000;
constexpr std::int64_t kNsPerS = 1'000'000'000;

}  // namespace

TimeseriesWriter::TimeseriesWriter(std::ostream& out, Ns interval, std::int32_t replicas,
                                   std::int32_t engines_per_replica)
    : out_(&out), interval_(interval), engines_per_replica_(engines_per_replica) {
  if (interval.v <= 0) {
    throw InputError("--timeseries-interval: the interval must be > 0 s (got " + std::to_string(interval.v) + " ns)");
  }
  if (replicas < 1 || engines_per_replica < 1) {
    throw std::logic_error("TimeseriesWriter: replicas and engines_per_replica must be >= 1");
  }
  decimals_ = interval.v % kNsPerMs == 0 ? 3 : 9;
  replicas_.resize(static_cast<std::size_t>(replicas));
  for (auto& r : replicas_) {
    r.engines.resize(static_cast<std::size_t>(engines_per_replica));
    r.buckets.resize(1);
  }
  *out_ << kTimeseriesCsvHeader;
}

TimeseriesWriter::Engine& TimeseriesWriter::engine(std::int32_t replica, std::int32_t e) {
  if (replica < 0 || replica >= static_cast<std::int32_t>(replicas_.size()) || e < 0 || e >= engines_per_replica_) {
    throw std::logic_error(fmt::format("TimeseriesWriter: event of replica {} engine {} outside {} x {}", replica, e,
                                       replicas_.size(), engines_per_replica_));
  }
  return replicas_[static_cast<std::size_t>(replica)].engines[static_cast<std::size_t>(e)];
}

TimeseriesWriter::Bucket& TimeseriesWriter::bucket(Replica& r, std::int64_t index) {
  const auto j = static_cast<std::size_t>(index - current_);
  if (j >= r.buckets.size()) r.buckets.resize(j + 1);
  return r.buckets[j];
}

// Adds [from, to) to `field` of the buckets it overlaps (from >= the current interval's start).
void TimeseriesWriter::spread(Replica& r, Ns from, Ns to, std::int64_t Bucket::*field) {
  for (std::int64_t t = from.v; t < to.v;) {
    const std::int64_t k = t / interval_.v;
    const std::int64_t cut = std::min(to.v, (k + 1) * interval_.v);
    bucket(r, k).*field += cut - t;
    t = cut;
  }
}

void TimeseriesWriter::write_interval() {
  const std::int64_t end = (current_ + 1) * interval_.v;
  const double capacity = static_cast<double>(interval_.v) * engines_per_replica_;
  std::string time;
  if (decimals_ == 3) {
    time = fmt::format("{}.{:03}", end / kNsPerS, end % kNsPerS / kNsPerMs);
  } else {
    time = fmt::format("{}.{:09}", end / kNsPerS, end % kNsPerS);
  }
  for (std::size_t i = 0; i < replicas_.size(); ++i) {
    Replica& r = replicas_[i];
    std::int64_t waiting = 0, running = 0, used = 0, blocks = 0;
    for (const Engine& e : r.engines) {
      waiting += e.waiting;
      running += e.running;
      used += e.kv_used;
      blocks += e.kv_blocks;
    }
    const Bucket b = r.buckets.front();
    line_.clear();
    fmt::format_to(std::back_inserter(line_), "{},{},{},{},{:.6f},{},{:.6f},{:.6f},{:.6f}\n", time, i, waiting, running,
                   blocks > 0 ? static_cast<double>(used) / static_cast<double>(blocks) : 0.0, r.steps,
                   r.steps > 0 ? static_cast<double>(r.step_ns) / static_cast<double>(r.steps) / kNsPerMs : 0.0,
                   static_cast<double>(b.busy) / capacity, static_cast<double>(b.communication) / capacity);
    *out_ << line_;
    ++rows_;
    r.steps = 0;
    r.step_ns = 0;
    r.buckets.pop_front();
    if (r.buckets.empty()) r.buckets.resize(1);
  }
  ++current_;
}

// Writes the rows of every interval that ends at or before `t` (events at `t` belong to a later interval).
void TimeseriesWriter::advance(Ns t) {
  last_ = std::max(last_, t);
  while ((current_ + 1) * interval_.v <= t.v) write_interval();
}

void TimeseriesWriter::finish(Ns end) {
  if (finished_) return;
  const std::int64_t until = std::max(end.v, last_.v);
  const std::int64_t intervals = std::max<std::int64_t>(1, (until + interval_.v - 1) / interval_.v);
  advance(Ns{intervals * interval_.v});
  finished_ = true;
}

void TimeseriesWriter::arrived(Ns t, const Request& /*r*/, std::int32_t /*replica*/) {
  if (!finished_) advance(t);
}

void TimeseriesWriter::rejected(Ns t, std::uint64_t /*id*/, RejectReason /*why*/,
                                const std::function<std::string()>& /*detail*/) {
  if (!finished_) advance(t);
}

void TimeseriesWriter::queued(Ns t, std::uint64_t /*id*/, std::int32_t replica, std::int32_t e,
                              std::int64_t waiting) {
  if (finished_) return;
  advance(t);
  engine(replica, e).waiting = waiting;
}

void TimeseriesWriter::scheduled(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t e) {
  if (finished_) return;
  advance(t);
  Engine& g = engine(replica, e);
  if (where_.emplace(id, std::make_pair(replica, e)).second) {
    ++g.running;
    g.waiting = std::max<std::int64_t>(0, g.waiting - 1);
  }
}

void TimeseriesWriter::preempted(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t e) {
  if (finished_) return;
  advance(t);
  Engine& g = engine(replica, e);
  ++g.waiting;
  if (where_.erase(id) != 0) g.running = std::max<std::int64_t>(0, g.running - 1);
  if (g.running == 0 && g.waiting == 0) g.kv_used = 0;
}

void TimeseriesWriter::finished(const RequestRecord& r) {
  if (finished_) return;
  advance(r.finish);
  const auto it = where_.find(r.id);
  if (it == where_.end()) return;
  Engine& g = engine(it->second.first, it->second.second);
  where_.erase(it);
  g.running = std::max<std::int64_t>(0, g.running - 1);
  if (g.running == 0 && g.waiting == 0) g.kv_used = 0;
}

void TimeseriesWriter::step_started(const StepEvent& s) {
  if (finished_) return;
  advance(s.start);
  Engine& g = engine(s.replica, s.engine);
  g.waiting = s.waiting;
  g.running = s.running;
  g.kv_used = s.kv_used_blocks;
  g.kv_blocks = s.kv_blocks;
  Replica& r = replicas_[static_cast<std::size_t>(s.replica)];
  const Ns dur = s.end - s.start;
  ++r.steps;
  r.step_ns += dur.v;
  spread(r, s.start, s.end, &Bucket::busy);
  const double comm = std::round(s.communication_s * 1e9);
  if (comm > 0) {
    const Ns c = comm >= static_cast<double>(dur.v) ? dur : Ns{static_cast<std::int64_t>(comm)};
    spread(r, s.end - c, s.end, &Bucket::communication);
  }
}

void TimeseriesWriter::step_ended(const StepEvent& s) {
  if (!finished_) advance(s.end);
}

}  // namespace servesim
