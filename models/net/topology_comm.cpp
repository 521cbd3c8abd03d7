#include "models/net/topology_comm.h"

#include <algorithm>

namespace servesim {

TopologyComm::TopologyComm(std::shared_ptr<const Topology> topo, const std::vector<int>& gpus,
                           const ParallelConfig& parallel, const std::string& algo,
                           std::shared_ptr<const CollectiveCalibration> cal, const std::string& model,
                           const std::string& proto) {
  const auto t = static_cast<std::size_t>(parallel.tensor);
  const auto stride = t * static_cast<std::size_t>(parallel.data);  // GPUs per stage
  for (std::size_t s = 0; s < static_cast<std::size_t>(parallel.pipeline); ++s) {
    const auto first = gpus.begin() + static_cast<std::ptrdiff_t>(s * stride);
    stages_.emplace_back(topo, std::vector<int>(first, first + static_cast<std::ptrdiff_t>(t)), algo, cal, model, proto);
    if (parallel.data > 1) {
      expert_stages_.emplace_back(topo, std::vector<int>(first, first + static_cast<std::ptrdiff_t>(stride)), algo, cal,
                                  model, proto);
    }
    if (s > 0) boundaries_.emplace_back(gpus[(s - 1) * stride], gpus[s * stride]);
  }
  // A boundary send between GPUs not both in the first stage's group is routed once here, not at every
  // send_recv(); one without a route is left to p2p_time(), which reports it when it is costed.
  const auto& first = stages_.front().gpus();
  const auto in_first = [&](int gpu) { return std::find(first.begin(), first.end(), gpu) != first.end(); };
  for (const auto& [a, b] : boundaries_) {
    std::optional<Route> r;
    if (a != b && !(in_first(a) && in_first(b))) {
      r = std::move(topo->routes_to(topo->gpu_vertex(a), {topo->gpu_vertex(b)}).front());
    }
    boundary_routes_.push_back(std::move(r));
  }
}

// The step model multiplies one layer's time by every layer of the pipeline and one send by the number of stage
// boundaries, so the mean over stages (and over boundaries) makes their sums exact.
OpCost TopologyComm::all_reduce(Bytes bytes) const {
  Seconds sum{0.0};
  for (const auto& g : stages_) sum += g.time(CollectiveOp::all_reduce, bytes);
  return {sum / double(stages_.size()), Bound::communication};
}

OpCost TopologyComm::send_recv(Bytes bytes) const {
  if (boundaries_.empty()) return {Seconds{0.0}, Bound::communication};
  Seconds sum{0.0};
  const CommGroup& first = stages_.front();
  for (std::size_t i = 0; i < boundaries_.size(); ++i) {
    const auto& [a, b] = boundaries_[i];
    const auto& r = boundary_routes_[i];
    sum += r ? CommGroup::route_time(*r, first.topology().step_latency(), bytes) : first.p2p_time(a, b, bytes);
  }
  return {sum / double(boundaries_.size()), Bound::communication};
}

OpCost TopologyComm::all_to_all(Bytes per_rank) const {
  if (expert_stages_.empty()) return GroupComm::all_to_all(per_rank);
  Seconds sum{0.0};
  for (const auto& g : expert_stages_) sum += g.time(CollectiveOp::all_to_all, per_rank);
  return {sum / double(expert_stages_.size()), Bound::communication};
}

OpCost TopologyComm::gather(Bytes per_rank) const {
  const CommGroup& last = stages_.back();
  return {last.time(CollectiveOp::all_gather, per_rank * double(last.size())), Bound::communication};
}

}  // namespace servesim
