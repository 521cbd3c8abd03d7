// Round robin: request i goes to replica i mod n.
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
