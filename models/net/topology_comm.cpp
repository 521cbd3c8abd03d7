#include "models/net/topology_comm.h"

#include <algorithm>
#include <stdexcept>

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
      const std::vector<int> all(first, first + static_cast<std::ptrdiff_t>(stride));
      expert_stages_.emplace_back(topo, all, algo, cal, model, proto);
      add_expert_tiers(topo, all, algo, cal, model, proto);
    }
    if (s > 0) boundaries_.emplace_back(gpus[(s - 1) * stride], gpus[s * stride]);
  }
  // Node and rail tiers only when every stage splits the same way.
  if (!expert_nodes_groups_.empty()) {
    expert_nodes_ = static_cast<std::int64_t>(expert_nodes_groups_.front().size());
    for (const auto& tier : expert_nodes_groups_) {
      if (static_cast<std::int64_t>(tier.size()) != expert_nodes_) expert_nodes_ = 0;
    }
    if (expert_nodes_ <= 1) {
      expert_nodes_ = 1;
      for (auto& tier : expert_nodes_groups_) tier.clear();
      for (auto& tier : expert_rails_) tier.clear();
    }
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

OpCost TopologyComm::all_gather(Bytes size) const {
  Seconds sum{0.0};
  for (const auto& g : stages_) sum += g.time(CollectiveOp::all_gather, size);
  return {sum / double(stages_.size()), Bound::communication};
}

void TopologyComm::add_expert_tiers(const std::shared_ptr<const Topology>& topo, const std::vector<int>& all,
                                    const std::string& algo, const std::shared_ptr<const CollectiveCalibration>& cal,
                                    const std::string& model, const std::string& proto) {
  // Equal contiguous blocks of GPUs per node (each node once), or no tiers for this stage.
  std::vector<std::vector<int>> nodes;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i == 0 || topo->node_of_gpu(all[i]) != topo->node_of_gpu(all[i - 1])) nodes.emplace_back();
    nodes.back().push_back(all[i]);
  }
  bool even = nodes.size() > 1;
  for (std::size_t a = 0; even && a < nodes.size(); ++a) {
    even = nodes[a].size() == nodes.front().size();
    for (std::size_t b = a + 1; even && b < nodes.size(); ++b) {
      even = topo->node_of_gpu(nodes[a].front()) != topo->node_of_gpu(nodes[b].front());
    }
  }
  std::vector<CommGroup> node_groups, rails;
  if (even) {
    for (const auto& n : nodes) node_groups.emplace_back(topo, n, algo, cal, model, proto);
    for (std::size_t i = 0; i < nodes.front().size(); ++i) {
      std::vector<int> rail;
      for (const auto& n : nodes) rail.push_back(n[i]);
      rails.emplace_back(topo, std::move(rail), algo, cal, model, proto);
    }
  }
  expert_nodes_groups_.push_back(std::move(node_groups));
  expert_rails_.push_back(std::move(rails));
}

OpCost TopologyComm::expert_collective(CollectiveOp op, Bytes size, ExpertScope scope, bool one_shot) const {
  if (expert_stages_.empty()) return GroupComm::expert_collective(op, size, scope, one_shot);
  if (one_shot && op != CollectiveOp::all_to_all) {
    throw std::logic_error("TopologyComm::expert_collective: a one-shot collective must be an all_to_all");
  }
  const auto time = [&](const CommGroup& g) { return one_shot ? g.one_shot_all_to_all(size) : g.time(op, size); };
  Seconds sum{0.0};
  for (std::size_t s = 0; s < expert_stages_.size(); ++s) {
    const auto& tier = scope == ExpertScope::node ? expert_nodes_groups_[s] : expert_rails_[s];
    if (scope == ExpertScope::group || expert_nodes_ == 1 || tier.empty()) {
      sum += time(expert_stages_[s]);
      continue;
    }
    Seconds slowest{0.0};
    for (const auto& g : tier) slowest = std::max(slowest, time(g));
    sum += slowest;
  }
  return {sum / double(expert_stages_.size()), Bound::communication};
}

OpCost TopologyComm::gather(Bytes per_rank) const {
  const CommGroup& last = stages_.back();
  return {last.time(CollectiveOp::all_gather, per_rank * double(last.size())), Bound::communication};
}

}  // namespace servesim
