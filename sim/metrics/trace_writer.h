// A run as a timeline: Chrome trace-event JSON (the "JSON Object Format") that ui.perfetto.dev and
// chrome://tracing open. Events are written to the stream as the run reports them; nothing of the run is held
// except the few requests and transfers in flight.
//
// File layout: {"traceEvents":[ EVENT, ... ],"displayTimeUnit":"ms","otherData":{"sample_every":"N"}}.
// Timestamps ("ts") and durations ("dur") are microseconds, as the format requires, printed as the exact
// simulated ns / 1000 with three decimals (so the output is exact and the same run gives the same bytes).
//
// Processes and tracks (pid, tid):
//   pid R            "replica R" (process_name metadata, emitted when the replica first appears)
//   tid E            "engine E": one complete event ("ph":"X", name "step") per engine step, args
//                    {prefill_tokens, decode_seqs, batch_seqs, waiting, running, bound, overhead_ms, compute_ms,
//                    memory_ms, communication_ms}; bound is the kind with the largest modeled time (compute, memory,
//                    communication, overhead; the first of these on a tie). Preemptions of sampled requests are
//                    thread-scoped instants ("ph":"i", name "preempt") on the engine's track, args {request}.
//   tid 1000 + E     "communication" (engine 0) / "communication E": per step with modeled communication time
//                    > 0, a span "communication" of that length (clamped to the step) that ENDS when the step
//                    ends, i.e. the collectives are drawn as the tail of the step's GPU part. One track per engine
//                    because pipeline engines' steps overlap in time, and spans on one track must nest.
//   tid 2000 + L     "kv transfer" (lane 0) / "kv transfer L": KV-cache transfers between replicas. A transfer
//                    is a span "kv send" on a free lane of the source replica and a span "kv receive" on a free
//                    lane of the destination, both [start, end], joined by a flow ("ph":"s" then "ph":"f" with
//                    "bp":"e", cat "kv_transfer", the same id: the transfer's sequence number from 1), both
//                    points at the transfer's start so each binds to its enclosing span. Lanes keep concurrent
//                    transfers of one replica from overlapping on one track.
//   async, pid R     per sampled request (cat "request", id = request id), written when it finishes: a span
//                    "request I" from arrival to finish (args prompt_tokens, output_tokens, preemptions, ttft_ms,
//                    e2el_ms) holding "front end" (arrival -> ready; only when not empty), "queue" (ready -> first
//                    scheduled), "prefill" (first scheduled -> first token), "decode" (first token -> finish).
//                    Requests unfinished when the run stops have no spans.
//
// Sampling (sample_every = N >= 1): requests with id % N == 0 are kept (their spans, preemptions and transfers);
// a replica's steps (and communication spans) are kept only while at least one kept request is in flight on it
// (arrived there, not yet finished or rejected). N = 1 keeps everything.
#pragma once
#include <cstdint>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/metrics/sink.h"

namespace servesim {

class TraceWriter final : public RunSink {
 public:
  static constexpr std::int32_t kCommunicationTid = 1000;  // + engine
  static constexpr std::int32_t kTransferTid = 2000;       // + lane

  // Writes the file's opening to `out` now. `sample_every` >= 1 (InputError naming --trace-sample otherwise).
  explicit TraceWriter(std::ostream& out, std::int64_t sample_every = 1);
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Ends the JSON (call once, after the run); later events are ignored.
  void close();
  // Events written so far (metadata included).
  [[nodiscard]] std::uint64_t events() const { return events_; }

  void arrived(Ns t, const Request& r, std::int32_t replica) override;
  void rejected(Ns t, std::uint64_t id, RejectReason why, const std::function<std::string()>& detail) override;
  void preempted(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine) override;
  void finished(const RequestRecord& r) override;
  void step_started(const StepEvent& s) override;
  void transfer_started(const TransferEvent& x) override;
  void transfer_ended(const TransferEvent& x) override;

  // The largest of a step's modeled times by kind: "compute", "memory", "communication" or "overhead".
  [[nodiscard]] static const char* bound_of(const StepEvent& s);

 private:
  struct Lanes {
    std::uint64_t src_lane = 0;
    std::uint64_t dst_lane = 0;
  };
  [[nodiscard]] bool kept(std::uint64_t id) const { return id % sample_every_ == 0; }
  void begin_event();
  void flush_if_large();
  void process(std::int32_t pid);
  void thread(std::int32_t pid, std::int32_t tid);
  std::uint64_t take_lane(std::int32_t replica);
  void drop_in_flight(std::uint64_t id);
  void async(char ph, const char* name, std::uint64_t id, std::int32_t pid, Ns t);

  std::ostream* out_;
  std::int64_t sample_every_;
  bool closed_ = false;
  std::uint64_t events_ = 0;
  std::uint64_t flows_ = 0;
  std::string buf_;
  std::vector<bool> process_named_;                        // by replica
  std::set<std::pair<std::int32_t, std::int32_t>> thread_named_;
  std::unordered_map<std::uint64_t, std::int32_t> kept_in_flight_;  // kept request -> replica
  std::vector<std::int64_t> kept_on_replica_;               // kept requests in flight, by replica
  std::vector<std::vector<bool>> lane_busy_;                // by replica, by lane
  std::map<std::tuple<std::uint64_t, std::int32_t, std::int32_t>, Lanes> transfers_;  // (request, from, to)
};

}  // namespace servesim
