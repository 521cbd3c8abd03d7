// Direct (all-pairs) collectives, formulas in models/net/collective.h.
#include <vector>

#include "models/net/collective_algorithms.h"
#include "models/net/group_paths.h"

namespace servesim {
namespace {

std::vector<Transfer> all_pairs(int n, double fraction) { return GroupPaths::all_pairs_transfers(n, fraction); }

class DirectCollective final : public CollectiveAlgorithm {
 public:
  [[nodiscard]] std::string unusable_reason(const GroupPaths& /*group*/) const override { return {}; }

  [[nodiscard]] std::optional<CollectivePlan> plan(CollectiveOp op, const GroupPaths& g) const override {
    const int n = g.size();
    const double share = 1.0 / static_cast<double>(n);
    CollectivePlan p;
    switch (op) {
      case CollectiveOp::all_reduce: {
        const auto phase = g.phase(all_pairs(n, share), n - 1);  // reduce-scatter, then all-gather
        p.add(phase);
        p.add(phase);
        return p;
      }
      case CollectiveOp::all_gather:
      case CollectiveOp::reduce_scatter:
      case CollectiveOp::all_to_all:
        p.add(g.phase(all_pairs(n, share), n - 1));
        return p;
      case CollectiveOp::broadcast: {
        std::vector<Transfer> t;
        for (int d = 1; d < n; ++d) t.push_back(Transfer{0, d, 1.0});
        p.add(g.phase(t, n - 1));
        return p;
      }
      case CollectiveOp::send_recv:
        p.add(g.phase(GroupPaths::shift_transfers(n), 1));
        return p;
    }
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<CollectiveAlgorithm> make_direct_collective() { return std::make_unique<DirectCollective>(); }

}  // namespace servesim
