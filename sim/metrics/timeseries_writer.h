// A run sampled at a fixed interval: timeseries.csv, one row per replica per interval, written as the run passes
// each interval's end (nothing of the run is held but the current interval and the requests in flight).
//
// Columns (interval k covers simulated time [k*I, (k+1)*I), I = the interval):
//   time_s                  the interval's end (k+1)*I in seconds: 3 decimals when I is a whole number of ms, else 9
//   replica                 replica index
//   waiting                 requests in the replica's waiting queues       } the state at the interval's end: after
//   running                 running sequences                              } every event before it, summed over
//   kv_usage                KV blocks in use / KV blocks (6 decimals)      } the replica's engines
//   steps                   engine steps that started in the interval
//   mean_step_ms            their mean duration (ms, 6 decimals; 0 without steps)
//   busy_fraction           step time overlapping the interval / (I x engines)
//   communication_fraction  modeled communication time overlapping the interval / (I x engines): the share of
//                           time the replica's TP/PP links carry traffic, as the step model prices it (no
//                           flow-level network model yet). A step's communication is placed at the end of the
//                           step, as in the trace (sim/metrics/trace_writer.h), so it splits across intervals the
//                           same way.
// How the state is tracked: waiting as the engine last reported it (a request queued, a step scheduled),
// running as the last step started reported it, minus the requests that finished or were preempted since;
// KV blocks in use as the last step started reported them, and 0 once the engine has neither running nor waiting
// sequences (a finished request's blocks are freed; there is no prefix cache that keeps them).
// Every interval from 0 to the run's end has its rows; an interval without events repeats the state, with 0
// steps. Numbers are formatted with fmt at fixed precision, so the same run gives the same bytes.
#pragma once
#include <cstdint>
#include <deque>
#include <ostream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/metrics/sink.h"

namespace servesim {

inline constexpr const char* kTimeseriesCsvHeader =
    "time_s,replica,waiting,running,kv_usage,steps,mean_step_ms,busy_fraction,communication_fraction\n";

class TimeseriesWriter final : public RunSink {
 public:
  // Writes the header now. `interval` > 0 (InputError naming --timeseries-interval otherwise); `replicas` and
  // `engines_per_replica` (pipeline engines) >= 1: events of other replicas or engines are a std::logic_error.
  TimeseriesWriter(std::ostream& out, Ns interval, std::int32_t replicas, std::int32_t engines_per_replica);

  // The run ended at `end` (ns): writes the rows of every interval up to ceil(end / interval) (at least one, and
  // through the last event seen), then ignores further events. Call once, after the run.
  void finish(Ns end);
  [[nodiscard]] std::int64_t rows() const { return rows_; }

  void arrived(Ns t, const Request& r, std::int32_t replica) override;
  void rejected(Ns t, std::uint64_t id, RejectReason why, const std::function<std::string()>& detail) override;
  void queued(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine, std::int64_t waiting) override;
  void scheduled(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine) override;
  void preempted(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine) override;
  void finished(const RequestRecord& r) override;
  void step_started(const StepEvent& s) override;
  void step_ended(const StepEvent& s) override;

 private:
  struct Engine {
    std::int64_t waiting = 0;
    std::int64_t running = 0;
    std::int64_t kv_used = 0;
    std::int64_t kv_blocks = 0;
  };
  struct Bucket {  // time overlapping one interval, ns
    std::int64_t busy = 0;
    std::int64_t communication = 0;
  };
  struct Replica {
    std::vector<Engine> engines;
    std::int64_t steps = 0;
    std::int64_t step_ns = 0;
    std::deque<Bucket> buckets;  // [0]: the current interval, [j]: j intervals later
  };
  Engine& engine(std::int32_t replica, std::int32_t engine);
  Bucket& bucket(Replica& r, std::int64_t index);
  void spread(Replica& r, Ns from, Ns to, std::int64_t Bucket::*field);
  void advance(Ns t);
  void write_interval();

  std::ostream* out_;
  Ns interval_;
  std::int32_t engines_per_replica_;
  int decimals_;
  std::vector<Replica> replicas_;
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> where_;  // running request -> engine
  std::int64_t current_ = 0;  // index of the interval being accumulated
  std::int64_t rows_ = 0;
  Ns last_{0};
  bool finished_ = false;
  std::string line_;
};

}  // namespace servesim
