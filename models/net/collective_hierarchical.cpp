// Hierarchical collectives for groups spanning nodes, formulas in models/net/collective.h.
#include <vector>

#include "models/net/collective_algorithms.h"
#include "models/net/group_paths.h"

namespace servesim {
namespace {

class HierarchicalCollective final : public CollectiveAlgorithm {
 public:
  [[nodiscard]] std::string unusable_reason(const GroupPaths& g) const override {
    if (g.node_count() < 2) return "GPUs " + g.describe() + " are all on one node";
    if (!g.uniform_ranks_per_node()) return "GPUs " + g.describe() + " are not spread evenly over their nodes";
    return {};
  }

  [[nodiscard]] std::optional<CollectivePlan> plan(CollectiveOp op, const GroupPaths& g) const override {
    if (op != CollectiveOp::all_reduce && op != CollectiveOp::all_gather && op != CollectiveOp::reduce_scatter) {
      return std::nullopt;
    }
    if (!unusable_reason(g).empty()) return std::nullopt;
    const int k = g.node_count();
    const int gpn = *g.uniform_ranks_per_node();
    const double kd = static_cast<double>(k);
    const double gd = static_cast<double>(gpn);

    // Intra-node rings of every node, all nodes at once.
    auto intra = [&](double fraction) {
      std::vector<Transfer> t;
      for (const auto& m : g.node_members()) {
        const auto r = GroupPaths::ring_transfers(GroupPaths::two_way_rings(m), fraction);
        t.insert(t.end(), r.begin(), r.end());
      }
      return g.phase(t, gpn - 1);
    };
    // Inter-node rings between the ranks with the same local index (one rail each), all rails at once.
    auto inter = [&](double fraction, int steps) {
      std::vector<Transfer> t;
      for (int j = 0; j < gpn; ++j) {
        std::vector<int> rail;
        for (const auto& m : g.node_members()) rail.push_back(m[static_cast<std::size_t>(j)]);
        const auto r = GroupPaths::ring_transfers(GroupPaths::two_way_rings(rail), fraction);
        t.insert(t.end(), r.begin(), r.end());
      }
      return g.phase(t, steps);
    };

    CollectivePlan p;
    const auto local = intra((gd - 1.0) / gd);
    switch (op) {
      case CollectiveOp::all_reduce:
        p.add(local);
        p.add(inter(2.0 * (kd - 1.0) / kd / gd, 2 * (k - 1)));
        p.add(local);
        return p;
      case CollectiveOp::all_gather:
        p.add(inter((kd - 1.0) / kd / gd, k - 1));
        p.add(local);
        return p;
      case CollectiveOp::reduce_scatter:
        p.add(local);
        p.add(inter((kd - 1.0) / kd / gd, k - 1));
        return p;
      default:
        return std::nullopt;
    }
  }
};

}  // namespace

std::unique_ptr<CollectiveAlgorithm> make_hierarchical_collective() {
  return std::make_unique<HierarchicalCollective>();
}

}  // namespace servesim
