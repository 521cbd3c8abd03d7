// The collective algorithms by name: one line each. Formulas: models/net/collective.h.
#include "models/net/collective_algorithms.h"

namespace servesim {

const CollectiveRegistry& collective_registry() {
  static const CollectiveRegistry registry = [] {
    CollectiveRegistry r("collective algorithm");
    r.add("ring", [] { return make_ring_collective(); });
    r.add("tree", [] { return make_tree_collective(); });
    r.add("nvls", [] { return make_nvls_collective(); });
    r.add("direct", [] { return make_direct_collective(); });
    r.add("hierarchical", [] { return make_hierarchical_collective(); });
    return r;
  }();
  return registry;
}

std::string collective_algorithm_names() { return "auto, " + collective_registry().names(); }

}  // namespace servesim
