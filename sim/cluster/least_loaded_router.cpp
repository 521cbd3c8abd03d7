// Least loaded: the replica with the fewest outstanding (admitted, unfinished) requests; ties go to the lowest
// index.
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
