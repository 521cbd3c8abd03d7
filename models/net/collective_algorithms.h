// Factories of the collective algorithms, one file each; collective_registry.cpp adds them by name.
// The cost formulas are documented in models/net/collective.h.
#pragma once
#include <memory>

#include "models/net/collective.h"

namespace servesim {

[[nodiscard]] std::unique_ptr<CollectiveAlgorithm> make_ring_collective();
[[nodiscard]] std::unique_ptr<CollectiveAlgorithm> make_tree_collective();
[[nodiscard]] std::unique_ptr<CollectiveAlgorithm> make_nvls_collective();
[[nodiscard]] std::unique_ptr<CollectiveAlgorithm> make_direct_collective();
[[nodiscard]] std::unique_ptr<CollectiveAlgorithm> make_hierarchical_collective();

}  // namespace servesim
