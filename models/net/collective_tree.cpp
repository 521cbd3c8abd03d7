// NCCL's double binary tree all-reduce, formulas in models/net/collective.h.
#include <utility>
#include <vector>

#include "models/net/collective_algorithms.h"
#include "models/net/group_paths.h"

namespace servesim {
namespace {

// Parent of rank r in the binary tree NCCL builds on ranks 0..n-1 (src/graph/trees.cc): a rank's lowest set bit
// b decides its level; its parent is (r ^ b) | (b << 1), or r ^ b when that is out of range. Rank 0 is the root.
int btree_parent(int r, int n) {
  if (r == 0) return -1;
  int bit = 1;
  while ((r & bit) == 0) bit <<= 1;
  const int up = (r ^ bit) | (bit << 1);
  return up < n ? up : (r ^ bit);
}

// Edges (parent, child) of the two complementary trees, in rank numbers. The second tree mirrors the first
// (r -> n-1-r) for even n and shifts it by one rank (r -> (r+1) mod n) for odd n, as NCCL does, so that a rank
// interior in one tree is a leaf in the other.
std::vector<std::pair<int, int>> double_tree_edges(int n) {
  std::vector<std::pair<int, int>> edges;
  for (int r = 1; r < n; ++r) edges.emplace_back(btree_parent(r, n), r);
  const std::size_t first = edges.size();
  for (std::size_t i = 0; i < first; ++i) {
    const auto [p, c] = edges[i];
    if (n % 2 == 0) {
      edges.emplace_back(n - 1 - p, n - 1 - c);
    } else {
      edges.emplace_back((p + 1) % n, (c + 1) % n);
    }
  }
  return edges;
}

class TreeCollective final : public CollectiveAlgorithm {
 public:
  [[nodiscard]] std::string unusable_reason(const GroupPaths& /*group*/) const override { return {}; }

  [[nodiscard]] std::optional<CollectivePlan> plan(CollectiveOp op, const GroupPaths& g) const override {
    if (op != CollectiveOp::all_reduce) return std::nullopt;
    const int n = g.size();
    // Tree ranks are the group positions grouped by node, so that most tree edges stay inside a node.
    std::vector<int> order;
    for (const auto& m : g.node_members()) order.insert(order.end(), m.begin(), m.end());
    std::vector<Transfer> t;
    for (const auto& [parent, child] : double_tree_edges(n)) {
      const int pp = order[static_cast<std::size_t>(parent)];
      const int cp = order[static_cast<std::size_t>(child)];
      t.push_back(Transfer{cp, pp, 0.5});  // reduce up, half of S per tree
      t.push_back(Transfer{pp, cp, 0.5});  // broadcast down
    }
    int depth = 0;  // ceil(log2 n)
    while ((1 << depth) < n) ++depth;
    CollectivePlan p;
    p.add(g.phase(t, 2 * depth));
    return p;
  }
};

}  // namespace

std::unique_ptr<CollectiveAlgorithm> make_tree_collective() { return std::make_unique<TreeCollective>(); }

}  // namespace servesim
