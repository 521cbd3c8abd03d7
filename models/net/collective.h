// Collective communication cost models (NCCL-like) on a Topology.
//
// Sizes follow nccl-tests: S is
//   all_reduce      the buffer each rank reduces (in = out = S)
//   all_gather      the gathered output on each rank (each rank contributes S/n)
//   reduce_scatter  the input on each rank (each rank ends with S/n)
//   all_to_all      each rank's send buffer (S/n to every rank)
//   broadcast       the buffer the root (group position 0) sends
//   send_recv       what every rank sends to the next group position (p -> p+1 mod n), as nccl-tests sendrecv
// algbw = S / t, busbw = algbw * busbw_factor: all_reduce 2(n-1)/n; all_gather, reduce_scatter, all_to_all
// (n-1)/n; broadcast, send_recv 1 (nccl-tests doc/PERFORMANCE.md).
//
// Cost model. An algorithm turns (op, group) into a plan of at most three sequential phases. A phase is a set
// of concurrent transfers (src rank -> dst rank, moving a fixed fraction of S) that takes `steps` latency steps:
//     T_phase = L * S + steps * alpha
//     L       = max over directed links e of (sum of the fractions of the transfers whose route uses e) / bw(e)
//     alpha   = max over the phase's transfers of the route latency + step_latency
// i.e. the bytes of all transfers share the links they cross (routes from Topology::route), and every step
// waits for the slowest hop (so a ring spanning nodes pays the network latency on every step, where NCCL's
// tuning model charges it only on the inter-node steps: conservative for small messages). step_latency is a
// per-step software constant (kernel flag polling / proxy progress between steps): Topology::step_latency(),
// 1 us unless the catalogue sets `step_latency`. NCCL's tuning model charges 0.5 - 4 us per step on NVLink
// depending on the protocol (src/graph/tuning.cc hwLat).
// T = sum of the phases. The plans (with uniform links of bandwidth B and per-step alpha: "star" = every rank
// on its own link of bandwidth B to one switch):
//   ring          2g channels (g = ranks per node; 2 for one node) of rings, half in each direction, each
//                 carrying an equal share; across nodes every ring enters and leaves a node on the same rail.
//                 all_reduce      2(n-1)/n * S/B + 2(n-1) alpha
//                 all_gather,
//                 reduce_scatter  (n-1)/n * S/B + (n-1) alpha
//                 broadcast       S/B + (n-1) alpha            (each channel cut open at the root, position 0,
//                                                               is a pipelined chain carrying its share)
//                 send_recv       S/B + alpha
//   tree          all_reduce only: NCCL's double binary tree (two complementary trees, each carrying S/2,
//                 reduce up and broadcast down pipelined). Every tree edge carries S/2 each way, so
//                 L = k_max / (2B) where k_max is the most tree edges at one rank over both trees: 4 for n >= 4
//                 (every rank is interior in one tree and a leaf in the other), giving NCCL's tree model
//                 (algbw = busbw_link / 2):  T = 2 S/B + 2 ceil(log2 n) alpha   (n = 2: S/B; n = 3: 1.5 S/B).
//   nvls          NVLink SHARP: only when every rank links directly to one NVLS-capable NVSwitch. The switch
//                 reduces (multimem.ld_reduce) and multicasts (multimem.st): each GPU sends S into the switch
//                 and receives S once. With eta = the switch's nvls_efficiency (0.85 on Hopper, NCCL):
//                 all_reduce      S/(eta B) + 2 alpha
//                 all_gather,
//                 reduce_scatter  (n-1)/n * S/(eta B) + alpha
//   direct        all pairs at once; each rank posts n-1 sends (one software step each):
//                 all_reduce      reduce-scatter + all-gather: 2(n-1)/n * S/B + 2(n-1) alpha on a star
//                 all_gather, reduce_scatter, all_to_all  (n-1)/n * S/B + (n-1) alpha on a star
//                 broadcast       (n-1) S/B + (n-1) alpha  (root sends to everyone)
//                 send_recv       as ring
//   hierarchical  two or more nodes with equal ranks per node g (K nodes):
//                 all_reduce      intra-node ring reduce-scatter ((g-1)/g S, g-1 steps), inter-node ring
//                                 all-reduce of S/g between the ranks of each rail (2(K-1)/K S/g, 2(K-1) steps),
//                                 intra-node ring all-gather; the phases run one after the other.
//                 all_gather      inter-node then intra-node all-gather; reduce_scatter the reverse.
//   auto          (CommGroup) the fastest valid plan for the size; ties go to ring, tree, nvls, hierarchical,
//                 direct in that order (then other registered names alphabetically).
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "models/common/registry.h"
#include "models/common/units.h"

namespace servesim {

class GroupPaths;

enum class CollectiveOp { all_reduce, all_gather, reduce_scatter, broadcast, send_recv, all_to_all };
inline constexpr int kNumCollectiveOps = 6;
inline constexpr std::array<CollectiveOp, kNumCollectiveOps> kAllCollectiveOps = {
    CollectiveOp::all_reduce, CollectiveOp::all_gather, CollectiveOp::reduce_scatter,
    CollectiveOp::broadcast,  CollectiveOp::send_recv,  CollectiveOp::all_to_all};

[[nodiscard]] std::string_view to_string(CollectiveOp op);
[[nodiscard]] std::optional<CollectiveOp> parse_collective_op(std::string_view text);
[[nodiscard]] std::string collective_op_names();
// nccl-tests bus-bandwidth factor of an op on n ranks (see above); 0 for n < 2.
[[nodiscard]] double busbw_factor(CollectiveOp op, int n);

struct CollectivePhase {
  double seconds_per_byte = 0.0;  // L: seconds per byte of S
  int steps = 0;
  Seconds alpha{0};  // per-step latency
  [[nodiscard]] Seconds time(Bytes s) const {
    return Seconds{seconds_per_byte * s.value() + static_cast<double>(steps) * alpha.value()};
  }
};

// Up to three sequential phases, stored inline (evaluating a plan never allocates).
class CollectivePlan {
 public:
  static constexpr int kMaxPhases = 3;
  void add(const CollectivePhase& p);
  [[nodiscard]] Seconds time(Bytes s) const {
    double t = 0.0;
    for (int i = 0; i < count_; ++i) t += phases_[static_cast<std::size_t>(i)].time(s).value();
    return Seconds{t};
  }
  [[nodiscard]] int phase_count() const { return count_; }
  [[nodiscard]] const CollectivePhase& phase(int i) const { return phases_.at(static_cast<std::size_t>(i)); }

 private:
  std::array<CollectivePhase, kMaxPhases> phases_{};
  int count_ = 0;
};

class CollectiveAlgorithm {
 public:
  virtual ~CollectiveAlgorithm() = default;
  // Why the algorithm cannot run on this group at all (empty when it can), e.g. nvls without a shared switch.
  [[nodiscard]] virtual std::string unusable_reason(const GroupPaths& group) const = 0;
  // The plan of `op` on a group with >= 2 ranks, or nullopt when the algorithm does not implement `op` there.
  [[nodiscard]] virtual std::optional<CollectivePlan> plan(CollectiveOp op, const GroupPaths& group) const = 0;
};

using CollectiveRegistry = Registry<CollectiveAlgorithm>;
// ring, tree, nvls, direct, hierarchical (models/net/collective_registry.cpp). "auto" is not an algorithm but
// CommGroup's choice among these.
[[nodiscard]] const CollectiveRegistry& collective_registry();
// "auto, direct, hierarchical, nvls, ring, tree"
[[nodiscard]] std::string collective_algorithm_names();

}  // namespace servesim
