// Router interface: picks the replica a new request goes to, from the replicas' loads (Replica::load()). Implementations registered by name in
// router_registry() ([router] impl = "..."). Contract: returns an index into `replicas`; deterministic.
#pragma once
#include <memory>
#include <vector>

#include "models/common/config.h"
#include "models/common/registry.h"
#include "sim/cluster/replica.h"

namespace servesim {

class Router {
 public:
  virtual ~Router() = default;
  [[nodiscard]] virtual std::size_t route(const Request& r, const std::vector<std::unique_ptr<Replica>>& replicas) = 0;
};

using RouterRegistry = Registry<Router, const Config&>;
[[nodiscard]] const RouterRegistry& router_registry();

// Implementations (one file each).
[[nodiscard]] std::unique_ptr<Router> make_round_robin_router(const Config& c);
[[nodiscard]] std::unique_ptr<Router> make_least_loaded_router(const Config& c);
[[nodiscard]] std::unique_ptr<Router> make_least_kv_usage_router(const Config& c);

}  // namespace servesim
