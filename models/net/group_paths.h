// The topology facts of one GPU group that collective algorithms need, computed once: the routes between all
// members (one Dijkstra per member, stopping once it has reached them all), the members' nodes, the ring channel
// orders, and the link-load arithmetic that turns a set of concurrent transfers into a CollectivePhase (see
// models/net/collective.h). Cost grows with the group and the part of the topology its routes explore, not with
// the whole topology.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "models/net/collective.h"
#include "models/net/topology.h"

namespace servesim {

// A transfer of `fraction` * S bytes from group position src to group position dst.
struct Transfer {
  int src = 0;
  int dst = 0;
  double fraction = 0.0;
};

class GroupPaths {
 public:
  // Throws InputError when a GPU index is out of range or repeated, or when a member has no route to another
  // (naming the GPU's declaration).
  GroupPaths(const Topology& topo, std::vector<int> gpu_indices);

  [[nodiscard]] const Topology& topology() const { return *topo_; }
  [[nodiscard]] int size() const { return static_cast<int>(gpus_.size()); }
  [[nodiscard]] const std::vector<int>& gpus() const { return gpus_; }
  // Dense node ordinal of a position (0 .. node_count()-1 in order of first appearance in the group).
  [[nodiscard]] int node_of(int pos) const { return node_of_[static_cast<std::size_t>(pos)]; }
  [[nodiscard]] int node_count() const { return static_cast<int>(members_.size()); }
  // Positions of each node's members, in group order.
  [[nodiscard]] const std::vector<std::vector<int>>& node_members() const { return members_; }
  // Ranks per node when every node has the same number, else nullopt.
  [[nodiscard]] std::optional<int> uniform_ranks_per_node() const;
  [[nodiscard]] const Route& route(int src_pos, int dst_pos) const {
    return routes_[static_cast<std::size_t>(src_pos) * gpus_.size() + static_cast<std::size_t>(dst_pos)];
  }
  // "[0, 1, 2, 3]" for messages.
  [[nodiscard]] std::string describe() const;

  // Ring channels over the whole group (each a cyclic order of all positions); see collective.h.
  [[nodiscard]] const std::vector<std::vector<int>>& rings() const { return rings_; }
  // Transfers of every ring edge of `rings`, each ring carrying total_fraction / rings.size().
  [[nodiscard]] static std::vector<Transfer> ring_transfers(const std::vector<std::vector<int>>& rings,
                                                            double total_fraction);
  // Forward and reverse ring over `order` (two channels); a single position gives no channel.
  [[nodiscard]] static std::vector<std::vector<int>> two_way_rings(const std::vector<int>& order);

  // Every position sends the whole message to the next one (i -> i+1 mod n): a point-to-point send_recv.
  [[nodiscard]] static std::vector<Transfer> shift_transfers(int n);
  // Every position sends `fraction` of S to every other position (the direct plan's all-pairs phase).
  [[nodiscard]] static std::vector<Transfer> all_pairs_transfers(int n, double fraction);

  // The phase of concurrent transfers that takes `steps` latency steps.
  [[nodiscard]] CollectivePhase phase(const std::vector<Transfer>& transfers, int steps) const;

 private:
  void build_rings();

  const Topology* topo_;
  std::vector<int> gpus_;
  std::vector<int> node_of_;
  std::vector<std::vector<int>> members_;
  std::vector<Route> routes_;  // size*size, row-major by source
  std::vector<std::vector<int>> rings_;
};

}  // namespace servesim
