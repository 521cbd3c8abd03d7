// Router interface: picks the replica a new request goes to, from what the replicas show (Replica::load(), and
// Replica::cached_prefix_tokens() for prefix-cache-aware routing). Implementations registered by name in
// router_registry() ([router] impl = "..." for arriving requests; [cluster] decode_router for hand-offs), each
// with its contract in the comment at the top of its file:
//   round_robin                  request i to replica i mod n
//   least_loaded                 fewest outstanding requests, ties to the lowest index
//   least_outstanding_requests   the same router under the name vLLM's production-stack and llm-d docs use
//   least_kv_usage               smallest fraction of KV blocks in use, ties to the lowest index
//   power_of_two                 two distinct replicas drawn uniformly, the one with fewer outstanding requests
//   prefix_cache_aware           longest cached prompt prefix among the replicas within a load cap
// Contract of every router: route() returns an index into `replicas` (non-empty); the same requests in the same
// states give the same choices (a randomised router draws from its own stream, seeded by start()).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/common/config.h"
#include "models/common/registry.h"
#include "sim/cluster/replica.h"

namespace servesim {

class Router {
 public:
  virtual ~Router() = default;
  // Called once before the first route() by whoever builds the router for a run: the scenario's [sim] seed and
  // the router's purpose ("router" for arrivals, "decode_router" for hand-offs), which names its random stream
  // (sim/core/random.h). Routers that draw no random numbers ignore it.
  virtual void start(std::uint64_t /*seed*/, const std::string& /*purpose*/) {}
  [[nodiscard]] virtual std::size_t route(const Request& r, const std::vector<std::unique_ptr<Replica>>& replicas) = 0;
};

using RouterRegistry = Registry<Router, const Config&>;
[[nodiscard]] const RouterRegistry& router_registry();

// Implementations (one file each).
[[nodiscard]] std::unique_ptr<Router> make_round_robin_router(const Config& c);
[[nodiscard]] std::unique_ptr<Router> make_least_loaded_router(const Config& c);
[[nodiscard]] std::unique_ptr<Router> make_least_kv_usage_router(const Config& c);
[[nodiscard]] std::unique_ptr<Router> make_power_of_two_router(const Config& c);
[[nodiscard]] std::unique_ptr<Router> make_prefix_cache_aware_router(const Config& c);

}  // namespace servesim
