#include "sim/cluster/cluster.h"

#include "sim/cluster/kv_handoff.h"

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace servesim {

Cluster::Cluster(std::unique_ptr<WorkloadSource> source, std::unique_ptr<Router> router,
                 std::vector<std::unique_ptr<Replica>> replicas, std::vector<std::unique_ptr<Replica>> decode)
    : source_(std::move(source)),
      router_(std::move(router)),
      replicas_(std::move(replicas)),
      decode_(std::move(decode)) {}

Cluster::~Cluster() = default;

void Cluster::set_handoff(std::unique_ptr<KvHandOff> handoff) { handoff_ = std::move(handoff); }

void Cluster::set_admission(const AdmissionLimits& limits, RunSink& sink) {
  admission_ = limits;
  sink_ = &sink;
}

bool Cluster::refused(Simulator& sim, const Request& r, const Replica* to) {
  if (to == nullptr) {
    if (!admission_.max_total_queued_requests) return false;
    std::int64_t queued = 0;
    for (const auto& rep : replicas_) queued += rep->load().waiting;
    if (queued < *admission_.max_total_queued_requests) return false;
    sink_->rejected(sim.now(), r.id, RejectReason::global_queue_full, [&] {
      return fmt::format("request {} arrived when {} requests were queued over the replicas "
                         "(cluster.admission.max_total_queued_requests = {})",
                         r.id, queued, *admission_.max_total_queued_requests);
    });
    return true;
  }
  if (!admission_.max_queued_requests) return false;
  const std::int64_t queued = to->load().waiting;
  if (queued < *admission_.max_queued_requests) return false;
  sink_->arrived(sim.now(), r, to->index());
  sink_->rejected(sim.now(), r.id, RejectReason::queue_full, [&] {
    return fmt::format("request {} was routed to replica {} when {} requests were queued there "
                       "(cluster.admission.max_queued_requests = {})",
                       r.id, to->index(), queued, *admission_.max_queued_requests);
  });
  return true;
}

void Cluster::start(Simulator& sim) {
  pending_ = source_->next();
  if (pending_) sim.schedule(pending_->arrival, Priority::arrival, this);
}

std::int64_t Cluster::outstanding() const {
  std::int64_t n = 0;
  for (const auto& r : replicas_) n += r->outstanding();
  for (const auto& r : decode_) n += r->outstanding();
  return n;
}

void Cluster::on_event(Simulator& sim, std::uint64_t) {
  const Request r = *pending_;
  ++arrived_;
  last_arrival_ = sim.now();
  Replica* to = nullptr;
  if (!refused(sim, r, nullptr)) {
    const std::size_t target = router_->route(r, replicas_);
    if (target >= replicas_.size()) throw std::logic_error("router returned a replica out of range");
    to = replicas_[target].get();
    if (refused(sim, r, to)) to = nullptr;
  }
  if (to != nullptr) {
    if (handoff_ && to->engines().front()->role() == EngineRole::prefill && !handoff_->decodable(r)) {
      handoff_->refuse(sim, r, to->index());
    } else {
      to->submit(sim, r);
    }
  }
  pending_ = source_->next();
  if (pending_) {
    sim.schedule(std::max(pending_->arrival, sim.now()), Priority::arrival, this);
  } else {
    backlog_at_last_arrival_ = outstanding();
  }
}

RunAccounting Cluster::accounting(std::int64_t completed, std::int64_t rejected) const {
  RunAccounting a;
  a.arrived = arrived_;
  a.completed = completed;
  a.rejected = rejected;
  a.unfinished = outstanding();
  for (const auto* list : {&replicas_, &decode_}) {
    for (const auto& r : *list) {
      for (const auto& e : r->engines()) a.engines.push_back(e->account());
    }
  }
  if (handoff_) {
    const HandOffCounts& c = handoff_->counts();
    a.handed_off = c.handed_off;
    a.received = c.received;
    a.waiting_for_blocks = c.waiting;
    // A layer-streamed transfer that started with a prefill step still running (the run's horizon cut it) is not
    // handed off yet.
    a.in_transfer = c.in_transfer - c.streaming;
  }
  return a;
}

void check_run_accounting(const RunAccounting& a) {
  std::string bad;
  if (a.arrived != a.completed + a.rejected + a.unfinished) {
    bad += fmt::format("; arrived {} != completed {} + rejected {} + unfinished {}", a.arrived, a.completed,
                       a.rejected, a.unfinished);
  }
  if (a.handed_off != a.received + a.waiting_for_blocks + a.in_transfer) {
    bad += fmt::format("; handed off {} != received {} + waiting for decode blocks {} + in transfer {}",
                       a.handed_off, a.received, a.waiting_for_blocks, a.in_transfer);
  }
  std::int64_t outstanding = 0;
  for (const auto& e : a.engines) {
    outstanding += e.outstanding;
    if (e.kv_free + e.kv_held != e.kv_blocks || e.kv_free < 0 || e.kv_held < 0) {
      bad += fmt::format("; replica {} engine {}: {} free + {} held KV blocks != {} blocks", e.replica, e.engine,
                         e.kv_free, e.kv_held, e.kv_blocks);
    }
    if (e.outstanding != e.queued) {
      bad += fmt::format("; replica {} engine {}: {} requests outstanding but {} sequences held", e.replica,
                         e.engine, e.outstanding, e.queued);
    }
  }
  if (!a.engines.empty() && outstanding != a.unfinished) {
    bad += fmt::format("; unfinished {} != {} outstanding over the engines", a.unfinished, outstanding);
  }
  if (!bad.empty()) throw std::logic_error("run accounting does not balance at the end of the run" + bad);
}

}  // namespace servesim
