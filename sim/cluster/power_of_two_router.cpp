// Power of two choices (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing", IEEE TPDS 12(10),
// 2001; SGLang's router policy power_of_two; Envoy's LEAST_REQUEST with its default choice_count = 2).
//
// Contract: draws two distinct replicas uniformly at random and takes the one with fewer outstanding requests
// (ReplicaLoad::outstanding, the measure of least_loaded); a tie goes to the first drawn. With one replica it is
// that replica and draws nothing; with two it always compares both, so it is least_loaded with ties broken at
// random. The draws come from the router's own stream (sim/core/random.h), named "<purpose>/power_of_two" and seeded
// from the scenario seed by start(): the same scenario and seed route the same way. route() before start() throws
// std::logic_error.
#include <optional>
#include <stdexcept>

#include <boost/random/uniform_int_distribution.hpp>

#include "sim/cluster/router.h"
#include "sim/core/random.h"

namespace servesim {
namespace {

class PowerOfTwoRouter final : public Router {
 public:
  void start(std::uint64_t seed, const std::string& purpose) override {
    rng_ = make_stream(seed, purpose + "/power_of_two");
  }

  std::size_t route(const Request&, const std::vector<std::unique_ptr<Replica>>& replicas) override {
    const std::size_t n = replicas.size();
    if (n == 1) return 0;
    if (!rng_) throw std::logic_error("power_of_two router: route() before start()");
    const std::size_t a = boost::random::uniform_int_distribution<std::size_t>(0, n - 1)(*rng_);
    std::size_t b = boost::random::uniform_int_distribution<std::size_t>(0, n - 2)(*rng_);
    if (b >= a) ++b;  // uniform over the other n - 1
    return replicas[b]->outstanding() < replicas[a]->outstanding() ? b : a;
  }

 private:
  std::optional<RandomEngine> rng_;
};

}  // namespace

std::unique_ptr<Router> make_power_of_two_router(const Config&) { return std::make_unique<PowerOfTwoRouter>(); }

}  // namespace servesim
