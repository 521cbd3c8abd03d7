// Least outstanding requests ("least_loaded", also registered as "least_outstanding_requests": AWS ALB's
// least_outstanding_requests, Envoy's LEAST_REQUEST with every host compared).
//
// Contract: the replica with the fewest outstanding requests (ReplicaLoad::outstanding: admitted and not finished,
// whether in the front end, waiting, prefilling or decoding; a request that arrived earlier in the same instant is
// already counted); ties go to the lowest index.
//
// It counts requests, not work: a decoding request (one token a step) weighs as much as a waiting 4k-token prompt.
// On a busy cluster most outstanding requests decode, so the counts differ by the decodes that happen to be longer
// on one replica, and consecutive arrivals go to the replica with fewer of them, where their prompts share prefill
// steps. Round robin never sends two consecutive arrivals to one replica, so at 2 replicas x 40 req/s on the
// quickstart it has the lower TTFT tail (tests/unit/test_routing.cpp pins the mechanism; README "Routing and admission").
#include "sim/cluster/router.h"

namespace servesim {
namespace {

class LeastLoadedRouter final : public Router {
 public:
  std::size_t route(const Request&, const std::vector<std::unique_ptr<Replica>>& replicas) override {
    std::size_t best = 0;
    for (std::size_t i = 1; i < replicas.size(); ++i) {
      if (replicas[i]->outstanding() < replicas[best]->outstanding()) best = i;
    }
    return best;
  }
};

}  // namespace

std::unique_ptr<Router> make_least_loaded_router(const Config&) { return std::make_unique<LeastLoadedRouter>(); }

}  // namespace servesim
