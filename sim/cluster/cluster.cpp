#include "sim/cluster/cluster.h"

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace servesim {

Cluster::Cluster(std::unique_ptr<WorkloadSource> source, std::unique_ptr<Router> router,
                 std::vector<std::unique_ptr<Replica>> replicas)
    : source_(std::move(source)), router_(std::move(router)), replicas_(std::move(replicas)) {}

void Cluster::start(Simulator& sim) {
  pending_ = source_->next();
  if (pending_) sim.schedule(pending_->arrival, Priority::arrival, this);
}

std::int64_t Cluster::outstanding() const {
  std::int64_t n = 0;
  for (const auto& r : replicas_) n += r->outstanding();
  return n;
}

void Cluster::on_event(Simulator& sim, std::uint64_t) {
  const Request r = *pending_;
  ++arrived_;
  last_arrival_ = sim.now();
  const std::size_t target = router_->route(r, replicas_);
  replicas_[target]->submit(sim, r);
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
  for (const auto& r : replicas_) {
    for (const auto& e : r->engines()) a.engines.push_back(e->account());
  }
  return a;
}

void check_run_accounting(const RunAccounting& a) {
  std::string bad;
  if (a.arrived != a.completed + a.rejected + a.unfinished) {
    bad += fmt::format("; arrived {} != completed {} + rejected {} + unfinished {}", a.arrived, a.completed,
                       a.rejected, a.unfinished);
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
