#include "models/net/group_paths.h"

#include <algorithm>
#include <map>
#include <utility>

#include "models/common/error.h"

namespace servesim {

GroupPaths::GroupPaths(const Topology& topo, std::vector<int> gpu_indices)
    : topo_(&topo), gpus_(std::move(gpu_indices)) {
  const std::size_t n = gpus_.size();
  if (n == 0) throw InputError("topology '" + topo.name() + "': a GPU group needs at least one GPU");
  for (std::size_t i = 0; i < n; ++i) {
    topo.check_gpu_index(gpus_[i]);
    for (std::size_t j = 0; j < i; ++j) {
      if (gpus_[j] == gpus_[i]) {
        throw InputError(topo.vertex(topo.gpu_vertex(gpus_[i])).where + ": GPU " + std::to_string(gpus_[i]) +
                         " appears twice in the group " + describe());
      }
    }
  }
  // Nodes in order of first appearance.
  std::map<int, int> ordinal;
  for (std::size_t p = 0; p < n; ++p) {
    const int node = topo.node_of_gpu(gpus_[p]);
    auto [it, inserted] = ordinal.emplace(node, static_cast<int>(members_.size()));
    if (inserted) members_.emplace_back();
    members_[static_cast<std::size_t>(it->second)].push_back(static_cast<int>(p));
    node_of_.push_back(it->second);
  }
  // Routes between all members: one Dijkstra per member, stopping once it has settled every member.
  std::vector<int> vertices(n);
  for (std::size_t p = 0; p < n; ++p) vertices[p] = topo.gpu_vertex(gpus_[p]);
  std::vector<std::vector<std::optional<Route>>> from(n);
  std::vector<int> reach(n, 0);
  for (std::size_t p = 0; p < n; ++p) {
    from[p] = topo.routes_to(vertices[p], vertices);
    for (std::size_t q = 0; q < n; ++q) {
      if (from[p][q]) ++reach[p];
    }
  }
  routes_.resize(n * n);
  for (std::size_t p = 0; p < n; ++p) {
    for (std::size_t q = 0; q < n; ++q) {
      auto& r = from[p][q];
      if (!r) {
        // Blame the GPU that reaches nobody, else the one that cannot be reached.
        const std::size_t bad = reach[p] <= 1 ? p : q;
        const std::size_t other = bad == p ? q : p;
        const auto& v = topo.vertex(topo.gpu_vertex(gpus_[bad]));
        const auto& o = topo.vertex(topo.gpu_vertex(gpus_[other]));
        const std::string& where = v.where.empty() ? topo.source() : v.where;
        throw InputError((where.empty() ? std::string() : where + ": ") + "GPU " + std::to_string(gpus_[bad]) + " ('" +
                         v.name + "') has no route " + (bad == p ? "to" : "from") + " GPU " +
                         std::to_string(gpus_[other]) + " ('" + o.name + "') of the group " + describe() +
                         " in topology '" + topo.name() + "'");
      }
      routes_[p * n + q] = std::move(*r);
    }
  }
  build_rings();
}

std::optional<int> GroupPaths::uniform_ranks_per_node() const {
  const std::size_t g = members_.front().size();
  for (const auto& m : members_) {
    if (m.size() != g) return std::nullopt;
  }
  return static_cast<int>(g);
}

std::string GroupPaths::describe() const {
  std::string out = "[";
  for (std::size_t i = 0; i < gpus_.size(); ++i) out += (i ? ", " : "") + std::to_string(gpus_[i]);
  return out + "]";
}

std::vector<std::vector<int>> GroupPaths::two_way_rings(const std::vector<int>& order) {
  if (order.size() < 2) return {};
  std::vector<int> rev(order.rbegin(), order.rend());
  return {order, rev};
}

std::vector<Transfer> GroupPaths::ring_transfers(const std::vector<std::vector<int>>& rings, double total_fraction) {
  std::vector<Transfer> out;
  if (rings.empty()) return out;
  const double share = total_fraction / static_cast<double>(rings.size());
  for (const auto& r : rings) {
    for (std::size_t i = 0; i < r.size(); ++i) out.push_back(Transfer{r[i], r[(i + 1) % r.size()], share});
  }
  return out;
}

void GroupPaths::build_rings() {
  rings_.clear();
  const int k_nodes = node_count();
  const auto g_opt = uniform_ranks_per_node();
  if (k_nodes == 1 || !g_opt || *g_opt < 2) {
    std::vector<int> order;
    for (const auto& m : members_) order.insert(order.end(), m.begin(), m.end());
    rings_ = two_way_rings(order);
    return;
  }
  // Rail-aligned rings: channel c enters node k at local rank e_k and leaves at x_k = e_{k+1}, so every
  // inter-node hop joins ranks with the same local index (the same NIC rail).
  const int g = *g_opt;
  for (int c = 0; c < g; ++c) {
    std::vector<int> entry(static_cast<std::size_t>(k_nodes));
    for (int k = 0; k < k_nodes; ++k) entry[static_cast<std::size_t>(k)] = (c + k % 2) % g;
    if (k_nodes % 2 == 1 && k_nodes >= 3 && g >= 3) entry[static_cast<std::size_t>(k_nodes - 1)] = (c + 2) % g;
    std::vector<int> ring;
    for (int k = 0; k < k_nodes; ++k) {
      const int e = entry[static_cast<std::size_t>(k)];
      int x = entry[static_cast<std::size_t>((k + 1) % k_nodes)];
      if (x == e) x = (e + 1) % g;  // no rail-aligned choice left (odd node count, 2 ranks per node)
      const auto& m = members_[static_cast<std::size_t>(k)];
      ring.push_back(m[static_cast<std::size_t>(e)]);
      for (int step = 1; step < g; ++step) {
        const int local = (e + step) % g;
        if (local != x) ring.push_back(m[static_cast<std::size_t>(local)]);
      }
      ring.push_back(m[static_cast<std::size_t>(x)]);
    }
    rings_.push_back(ring);
    rings_.emplace_back(ring.rbegin(), ring.rend());
  }
}

std::vector<Transfer> GroupPaths::shift_transfers(int n) {
  std::vector<Transfer> shift;
  for (int i = 0; i < n; ++i) shift.push_back(Transfer{i, (i + 1) % n, 1.0});
  return shift;
}

std::vector<Transfer> GroupPaths::all_pairs_transfers(int n, double fraction) {
  std::vector<Transfer> t;
  for (int s = 0; s < n; ++s) {
    for (int d = 0; d < n; ++d) {
      if (s != d) t.push_back(Transfer{s, d, fraction});
    }
  }
  return t;
}

CollectivePhase GroupPaths::phase(const std::vector<Transfer>& transfers, int steps) const {
  CollectivePhase out;
  // (link id, fraction) of every transfer over every link of its route, in transfer order; sorted stably by link,
  // each link's load is summed in transfer order. Only the links used are touched (not all of a large cluster's).
  std::vector<std::pair<int, double>> use;
  double latency = 0.0;
  bool any = false;
  for (const auto& t : transfers) {
    if (t.src == t.dst || t.fraction <= 0.0) continue;
    const Route& r = route(t.src, t.dst);
    for (int id : r.links) use.emplace_back(id, t.fraction);
    latency = std::max(latency, r.latency.value());
    any = true;
  }
  if (!any) return out;
  std::stable_sort(use.begin(), use.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double l = 0.0;
  for (std::size_t i = 0; i < use.size();) {
    const int id = use[i].first;
    double load = 0.0;
    for (; i < use.size() && use[i].first == id; ++i) load += use[i].second;
    if (load > 0.0) l = std::max(l, load / topo_->links()[static_cast<std::size_t>(id)].effective_bandwidth().value());
  }
  out.seconds_per_byte = l;
  out.steps = steps;
  out.alpha = Seconds{latency + topo_->step_latency().value()};
  return out;
}

}  // namespace servesim
