// The router registry: one line per implementation.
#include "sim/cluster/router.h"

namespace servesim {

const RouterRegistry& router_registry() {
  static const RouterRegistry r = [] {
    RouterRegistry reg("router");
    reg.add("round_robin", make_round_robin_router);
    reg.add("least_loaded", make_least_loaded_router);
    reg.add("least_outstanding_requests", make_least_loaded_router);
    reg.add("least_kv_usage", make_least_kv_usage_router);
    reg.add("power_of_two", make_power_of_two_router);
    reg.add("prefix_cache_aware", make_prefix_cache_aware_router);
    return reg;
  }();
  return r;
}

}  // namespace servesim
