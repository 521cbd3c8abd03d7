#include "sim/cluster/step_network.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

namespace servesim {

void StepNetwork::add_replica(std::int32_t replica, std::shared_ptr<const StepModel> model, StepTraffic traffic) {
  if (replicas_.contains(replica)) {
    throw std::logic_error("StepNetwork: replica " + std::to_string(replica) + " added twice");
  }
  replicas_.emplace(replica, Entry{std::move(model), std::move(traffic), {}});
  ++counts_.replicas;
}

const StepNetwork::Plan& StepNetwork::plan(Entry& e, const BatchShape& batch) {
  // The step's communication depends on its token and sample counts, whether it decodes only (CUDA graphs), and with
  // data-parallel attention on the busiest rank's tokens (how its chunks split over the ranks: the graph and the
  // padding follow that rank's count).
  const std::int64_t rank_tokens =
      e.model->parallel().data > 1 ? e.model->busiest_rank(batch).total_tokens() : batch.total_tokens();
  const PlanKey key{batch.prefills.empty(), batch.total_tokens(), batch.num_sampled, rank_tokens};
  if (const auto it = e.plans.find(key); it != e.plans.end()) return it->second;
  Plan p;
  const StepTraffic::Load load = e.traffic.of(e.model->breakdown(batch).ops);
  const double time = load.time.value();
  if (time > 0) {
    for (std::size_t k = 0; k < load.bytes.size(); ++k) {
      if (load.bytes[k] > 0) p.flows.emplace_back(k, load.bytes[k]);
    }
  }
  if (!p.flows.empty()) {
    // Caps that move each pair's bytes in the operators' time; scaled down together if they overfill a link.
    std::map<int, double> on_link;
    for (const auto& [k, bytes] : p.flows) {
      for (const int l : e.traffic.pairs()[k].links) on_link[l] += bytes / time;
    }
    double scale = 1.0;
    for (const auto& [l, sum] : on_link) scale = std::max(scale, sum / net_.capacity(l).value());
    for (const auto& [k, bytes] : p.flows) p.caps.push_back(bytes / time / scale);
    p.alone = 0;
    for (std::size_t i = 0; i < p.flows.size(); ++i) p.alone = std::max(p.alone, p.flows[i].second / p.caps[i]);
  }
  return e.plans.emplace(key, std::move(p)).first->second;
}

Ns StepNetwork::step_started(Simulator& sim, const Engine& engine, const BatchShape& batch) {
  const auto it = replicas_.find(engine.replica());
  if (it == replicas_.end()) throw std::logic_error("StepNetwork: an engine of a replica not on the network");
  Entry& e = it->second;
  ++counts_.steps;
  const Plan& p = plan(e, batch);
  if (p.flows.empty()) return Ns{0};
  if (sampler_ != nullptr) sampler_->observe(sim.now());
  ids_.clear();
  for (std::size_t i = 0; i < p.flows.size(); ++i) {
    const InterNodePair& pair = e.traffic.pairs()[p.flows[i].first];
    ids_.push_back(net_.start(sim, FlowDemand{pair.links, BytesPerSec{p.caps[i]}}, Bytes{p.flows[i].second}, this, 0));
  }
  counts_.flows += static_cast<std::int64_t>(p.flows.size());
  double worst = 0;
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    worst = std::max(worst, p.flows[i].second / net_.rate(ids_[i]).value());
  }
  // Rates equal to the caps up to rounding: no contention.
  if (!(worst > p.alone * (1.0 + 1e-9))) return Ns{0};
  const Ns extra = std::max(Ns{0}, to_ns(Seconds{worst}) - to_ns(Seconds{p.alone}));
  if (extra.v > 0) {
    ++counts_.slowed;
    counts_.extra = counts_.extra + extra;
  }
  return extra;
}

void StepNetwork::flow_done(Simulator& sim, std::uint64_t) {
  if (sampler_ != nullptr) sampler_->observe(sim.now());
}

}  // namespace servesim
