#include "sim/cluster/cluster.h"

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

}  // namespace servesim
