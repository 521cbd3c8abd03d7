// Round robin (vLLM production-stack's and SGLang's router's round_robin).
//
// Contract: the i-th request routed (counting from 0) goes to replica i mod n, whatever the loads.
#include "sim/cluster/router.h"

namespace servesim {
namespace {

class RoundRobinRouter final : public Router {
 public:
  std::size_t route(const Request&, const std::vector<std::unique_ptr<Replica>>& replicas) override {
    return next_++ % replicas.size();
  }

 private:
  std::size_t next_ = 0;
};

}  // namespace

std::unique_ptr<Router> make_round_robin_router(const Config&) { return std::make_unique<RoundRobinRouter>(); }

}  // namespace servesim
