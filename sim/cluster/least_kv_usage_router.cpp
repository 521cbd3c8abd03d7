// Least KV usage (routing on the KV-cache usage an engine reports, as llm-d's KV-cache utilization scorer does).
//
// Contract: the replica whose KV cache has the smallest fraction of its blocks in use (ReplicaLoad::kv_usage,
// blocks reserved for incoming KV transfers included); ties go to the lowest index. As a decode router it sends a
// handed-over request where its KV is most likely to fit now.
#include "sim/cluster/router.h"

namespace servesim {
namespace {

class LeastKvUsageRouter final : public Router {
 public:
  std::size_t route(const Request&, const std::vector<std::unique_ptr<Replica>>& replicas) override {
    std::size_t best = 0;
    double best_usage = replicas[0]->load().kv_usage();
    for (std::size_t i = 1; i < replicas.size(); ++i) {
      const double u = replicas[i]->load().kv_usage();
      if (u < best_usage) {
        best = i;
        best_usage = u;
      }
    }
    return best;
  }
};

}  // namespace

std::unique_ptr<Router> make_least_kv_usage_router(const Config&) { return std::make_unique<LeastKvUsageRouter>(); }

}  // namespace servesim
