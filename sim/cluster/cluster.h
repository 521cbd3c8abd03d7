// The serving cluster: a workload source feeding a router feeding replicas (each owning its engines), with admission
// caps on queued requests in front of them (sim/cluster/admission.h). Arrivals are drawn lazily, one pending arrival
// event at a time.
#pragma once
#include <memory>
#include <vector>

#include "sim/cluster/admission.h"
#include "sim/cluster/router.h"
#include "sim/core/simulator.h"
#include "sim/cluster/replica.h"
#include "sim/metrics/sink.h"
#include "sim/workload/workload.h"

namespace servesim {

// The books of a whole run when it stops (completion or horizon).
struct RunAccounting {
  std::int64_t arrived = 0;
  // Disaggregated serving: requests handed over after their prefill, received by a decode replica, waiting for
  // decode blocks and in transfer at the end (handed_off = received + waiting + in_transfer).
  std::int64_t handed_off = 0, received = 0, waiting_for_blocks = 0, in_transfer = 0;
  std::int64_t completed = 0;
  std::int64_t rejected = 0;
  std::int64_t unfinished = 0;  // admitted and still in flight
  std::vector<EngineAccount> engines;
};

// The cheap invariant checked at the end of every run: arrived = completed + rejected + unfinished; every engine's
// KV blocks are free or held by its in-flight sequences (so all free once nothing is in flight), and its
// outstanding count matches the sequences it holds. A violation is a bug: throws std::logic_error with the numbers.
void check_run_accounting(const RunAccounting& a);

class KvHandOff;

class Cluster final : public EventTarget {
 public:
  // `replicas`: where requests arrive (aggregated and prefill replicas), chosen by `router`; `decode`: the decode
  // replicas of a disaggregated cluster (empty otherwise), reached only through the hand-off (set_handoff).
  Cluster(std::unique_ptr<WorkloadSource> source, std::unique_ptr<Router> router,
          std::vector<std::unique_ptr<Replica>> replicas, std::vector<std::unique_ptr<Replica>> decode = {});
  ~Cluster() override;
  // Disaggregated serving: requests that arrive at a prefill replica and that no decode replica could ever hold
  // are refused at arrival (RejectReason::exceeds_kv_cache, reported by the hand-off).
  void set_handoff(std::unique_ptr<KvHandOff> handoff);
  // Admission control (sim/cluster/admission.h): caps on queued requests at the replicas that take arrivals; a
  // refused request is reported to `sink` (arrived at its replica, then rejected, for queue_full; rejected alone,
  // routed nowhere, for global_queue_full). Without it nothing is refused for queue length.
  void set_admission(const AdmissionLimits& limits, RunSink& sink);
  [[nodiscard]] const std::vector<std::unique_ptr<Replica>>& decode_replicas() const { return decode_; }
  [[nodiscard]] const KvHandOff* handoff() const { return handoff_.get(); }
  [[nodiscard]] KvHandOff* mutable_handoff() { return handoff_.get(); }

  // Schedules the first arrival.
  void start(Simulator& sim);
  void on_event(Simulator& sim, std::uint64_t arg) override;

  [[nodiscard]] std::int64_t arrived() const { return arrived_; }
  [[nodiscard]] Ns last_arrival() const { return last_arrival_; }
  // Requests admitted but unfinished, over all replicas (a request in a KV transfer counts at its prefill replica).
  [[nodiscard]] std::int64_t outstanding() const;
  // Outstanding requests at the moment the last request arrived (the backlog the load built up).
  [[nodiscard]] std::int64_t backlog_at_last_arrival() const { return backlog_at_last_arrival_; }
  [[nodiscard]] const std::vector<std::unique_ptr<Replica>>& replicas() const { return replicas_; }
  // The run's books, with the recorder's completed and rejected counts.
  [[nodiscard]] RunAccounting accounting(std::int64_t completed, std::int64_t rejected) const;

 private:
  std::unique_ptr<WorkloadSource> source_;
  std::unique_ptr<Router> router_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<std::unique_ptr<Replica>> decode_;
  std::unique_ptr<KvHandOff> handoff_;  // after decode_: it refers to them
  AdmissionLimits admission_;
  RunSink* sink_ = nullptr;  // set with admission_
  std::optional<Request> pending_;
  std::int64_t arrived_ = 0;
  Ns last_arrival_{0};
  std::int64_t backlog_at_last_arrival_ = 0;

  // Admission: whether `r`, arriving now, is refused by a cap (reported to sink_); `to`: its replica (null: before
  // routing, the total cap).
  bool refused(Simulator& sim, const Request& r, const Replica* to);
};

}  // namespace servesim
