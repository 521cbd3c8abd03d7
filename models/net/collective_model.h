// Collective cost models: how CommGroup turns (op, size) on a group of GPUs into a time and a choice of
// algorithm (and protocol). One interface, implementations registered by name (models/common/registry.h):
//   nccl       (default) NCCL's own tuning model, NCCL 2.30.7 (models/net/nccl_tuning.h, inputs derived from the
//              topology by models/net/nccl_inputs.h). Algorithms ring, tree, nvls, nvls_tree, collnet_direct,
//              collnet_chain, pat; protocols LL, LL128, Simple. send_recv and all_to_all are point-to-point in
//              NCCL and outside its tuning model: they use the link_load model's plans (protocol "").
//   link_load  servesim's link-load model (models/net/collective.h): plans of ring, tree, nvls, direct,
//              hierarchical costed by the load on every link of the topology (shows contention); no protocols.
// Options: `algo` constrains the algorithm like NCCL_ALGO ("auto": any; an algorithm that does not implement an
// op leaves that op unconstrained), `proto` the protocol like NCCL_PROTO ("auto": any; nccl model only).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/common/registry.h"
#include "models/common/units.h"
#include "models/net/collective.h"

namespace servesim {

class Topology;
class GroupPaths;

inline constexpr std::string_view kDefaultCollectiveModel = "nccl";

struct CollectiveModelOptions {
  std::string model{kDefaultCollectiveModel};  // a registered model name
  std::string algo = "auto";                    // algorithm constraint, in the model's names, or "auto"
  std::string proto = "auto";                   // protocol constraint: LL, LL128, Simple (case-insensitive) or "auto"
};

// What a model picked for one call. `algo` and `proto` point to strings owned by the model (or static).
struct CollectiveChoice {
  Seconds time{0};
  const std::string* algo = nullptr;
  const std::string* proto = nullptr;  // "" when the model has no protocols
};

class CollectiveCostModel {
 public:
  virtual ~CollectiveCostModel() = default;
  // The chosen algorithm/protocol and its time for op on the group (>= 2 ranks). Never allocates.
  [[nodiscard]] virtual CollectiveChoice choose(CollectiveOp op, Bytes size) const = 0;
  // Algorithms (with protocols, "ring/LL") this model may pick for op on the group, in preference order.
  [[nodiscard]] virtual std::vector<std::string> candidates(CollectiveOp op) const = 0;
};

// Factory arguments: the topology, the group's GPU indices (>= 2), their routes, the options. Factories throw
// InputError for an unknown algorithm or protocol (listing the valid ones) and for a named algorithm that cannot
// run on the group (with the reason).
using CollectiveModelRegistry = Registry<CollectiveCostModel, const Topology&, const std::vector<int>&,
                                         const GroupPaths&, const CollectiveModelOptions&>;
[[nodiscard]] const CollectiveModelRegistry& collective_model_registry();  // link_load, nccl
[[nodiscard]] std::string collective_model_names();                        // "link_load, nccl"

[[nodiscard]] std::unique_ptr<CollectiveCostModel> make_link_load_model(const Topology& topo,
                                                                        const std::vector<int>& gpus,
                                                                        const GroupPaths& paths,
                                                                        const CollectiveModelOptions& opt);
[[nodiscard]] std::unique_ptr<CollectiveCostModel> make_nccl_model(const Topology& topo, const std::vector<int>& gpus,
                                                                   const GroupPaths& paths,
                                                                   const CollectiveModelOptions& opt);

}  // namespace servesim
