// The arithmetic of capacity planning (servesim plan, sim/plan/planner.h): the bisection for the highest arrival
// rate one replica sustains within the SLOs, the replica count and price of a fleet, and the cost/latency Pareto
// front. No simulation here: the planner supplies whether a rate passes.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace servesim {

// Settings of the rate search (plan [search]).
struct BisectSettings {
  double rate_min = 0.25;  // req/s: the lowest rate tried; a candidate failing here misses the SLOs at any rate
  double rate_max = 64.0;  // req/s: the highest; a candidate passing here is reported as ">= rate_max"
  double tolerance = 0.05;  // stop when the bracket [pass, fail] is within this ratio: fail / pass <= 1 + tolerance
  std::int64_t max_probes = 12;  // at most this many rates in all (the two ends included); >= 2
};

// One rate tried and whether it met every SLO.
struct RateProbe {
  double rate = 0;
  bool pass = false;
};

struct BisectResult {
  std::optional<double> max_rate;  // the highest rate that passed; empty when rate_min failed
  bool capped = false;             // rate_max passed: the true maximum may be higher
  std::vector<RateProbe> probes;   // in the order tried
};

// The search as a state machine, so that the planner can advance many candidates' searches in one batch of runs:
// next() is the rate to try (empty when done), record() its outcome. The order: rate_min (a failure ends the
// search: nothing passes), rate_max (a pass ends it: capped), then the geometric midpoint sqrt(pass x fail) of
// the bracket until fail / pass <= 1 + tolerance or max_probes rates were tried. Assumes that passing is
// monotone in the rate (true of queueing, up to the noise of short runs); the result is the highest rate that
// passed. The geometric midpoint halves the bracket's log-ratio: from [0.25, 64] req/s to a 5 % bracket takes
// 7 midpoints, 9 probes in all.
class Bisection {
 public:
  explicit Bisection(const BisectSettings& s);
  [[nodiscard]] std::optional<double> next() const;
  void record(bool pass);
  [[nodiscard]] bool done() const { return !next().has_value(); }
  [[nodiscard]] const BisectResult& result() const { return result_; }

 private:
  BisectSettings s_;
  double pass_ = 0, fail_ = 0;  // the bracket once both ends are known
  bool finished_ = false;
  BisectResult result_;
};

// Runs a Bisection to the end with `passes` deciding each rate.
[[nodiscard]] BisectResult bisect_max_rate(const BisectSettings& s, const std::function<bool(double)>& passes);

// Replicas needed for `target_rate` when one sustains `max_rate_per_replica` (both req/s, > 0):
// ceil(target / max), the quotient first rounded to 12 significant digits so that 20 / (20 / 3) is 3, not 4.
[[nodiscard]] std::int64_t replicas_for(double target_rate, double max_rate_per_replica);

// US dollars per hour of `replicas` replicas of `gpus_per_replica` GPUs at `price_per_gpu_hour` each.
[[nodiscard]] double fleet_cost_per_hour(std::int64_t replicas, std::int64_t gpus_per_replica,
                                         double price_per_gpu_hour);

// A fleet on the cost/latency plane: $/h and a latency (the planner's: confirmed P99 TTFT, ms).
struct CostPoint {
  double cost = 0;
  double latency = 0;
};

// The indices of the points no other point dominates (another costs no more and is no slower, and is cheaper or
// faster), by ascending cost, then latency, then index. Equal points are all on the front.
[[nodiscard]] std::vector<std::size_t> pareto_front(const std::vector<CostPoint>& points);

}  // namespace servesim
