// Ring collectives (NCCL's ring algorithm), formulas in models/net/collective.h.
#include "models/net/collective_algorithms.h"
#include "models/net/group_paths.h"

namespace servesim {
namespace {

class RingCollective final : public CollectiveAlgorithm {
 public:
  [[nodiscard]] std::string unusable_reason(const GroupPaths& /*group*/) const override { return {}; }

  [[nodiscard]] std::optional<CollectivePlan> plan(CollectiveOp op, const GroupPaths& g) const override {
    const int n = g.size();
    const double nd = static_cast<double>(n);
    CollectivePlan p;
    switch (op) {
      case CollectiveOp::all_reduce:
        p.add(g.phase(GroupPaths::ring_transfers(g.rings(), 2.0 * (nd - 1.0) / nd), 2 * (n - 1)));
        return p;
      case CollectiveOp::all_gather:
      case CollectiveOp::reduce_scatter:
        p.add(g.phase(GroupPaths::ring_transfers(g.rings(), (nd - 1.0) / nd), n - 1));
        return p;
      case CollectiveOp::broadcast: {
        // Every ring channel, cut open at the root (position 0), is a pipelined chain carrying its share.
        const double share = 1.0 / static_cast<double>(g.rings().size());
        std::vector<Transfer> chains;
        for (const auto& ring : g.rings()) {
          std::size_t start = 0;
          while (ring[start] != 0) ++start;
          for (std::size_t i = 0; i + 1 < ring.size(); ++i) {
            chains.push_back(Transfer{ring[(start + i) % ring.size()], ring[(start + i + 1) % ring.size()], share});
          }
        }
        p.add(g.phase(chains, n - 1));
        return p;
      }
      case CollectiveOp::send_recv:
        p.add(g.phase(GroupPaths::shift_transfers(n), 1));
        return p;
      case CollectiveOp::all_to_all:
        return std::nullopt;
    }
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<CollectiveAlgorithm> make_ring_collective() { return std::make_unique<RingCollective>(); }

}  // namespace servesim
