// Step-time variability of a real engine: a multiplicative jitter of every step's time and a rare stall added to
// a step, both sampled from a random stream of their own (one per engine), so that a seed still gives the same
// outputs and switching jitter on does not move arrivals or request lengths.
//
//   step time = (gpu + overhead) x factor + stall
//   factor:  a function of a standard-normal score z of the step:
//            "lognormal": exp(-sigma^2 / 2 + sigma z), mean 1 (the fitted mean model stays the mean);
//            "empirical": the factor at equally spaced probabilities 0, 1/(n-1), ..., 1 (`factors`, n >= 2,
//            non-decreasing, > 0), linearly interpolated at Phi(z) (as fitted: the residual ratios' quantiles,
//            normalised to mean 1);
//            the scores of an engine's successive steps form an AR(1) process with lag-1 autocorrelation
//            `correlation` (in [0, 1), default 0 = independent steps): z_t = rho z_{t-1} + sqrt(1 - rho^2) e_t,
//            e_t standard normal, z_0 = e_0, so a slow phase of a real engine (CPU contention, clocks, a
//            garbage collector) lasts several steps as it does on the measured runs, while every step's factor
//            keeps the fitted distribution;
//   stall:   with probability `stall_probability` per step, a duration drawn from a lognormal with median
//            `stall_median` and log-sd `stall_sigma` (0 = always the median); otherwise 0.
// Scenario table [engine.jitter] (written by `servesim calibrate trace`); `[sim] jitter = "off"` gives the mean
// model. Fitted values are what a measured run shows; nothing here has a built-in default other than "no jitter".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/common/units.h"
#include "sim/core/random.h"

namespace servesim {

struct StepJitterSpec {
  enum class Kind { none, lognormal, empirical };
  Kind kind = Kind::none;
  double sigma = 0;              // lognormal: sd of ln(factor)
  double correlation = 0;        // lag-1 autocorrelation of successive steps' normal scores, [0, 1)
  std::vector<double> factors;   // empirical: quantiles of the factor, first = minimum, last = maximum
  double stall_probability = 0;  // per step, in [0, 1)
  Seconds stall_median{0.0};
  double stall_sigma = 0;
  [[nodiscard]] bool active() const { return kind != Kind::none || stall_probability > 0; }
};

// One engine's sampler. Draws exactly three uniforms per step whatever the parameters (factor, stall or not, stall duration), so the
// stream's position depends only on the number of steps.
class StepJitter {
 public:
  StepJitter(const StepJitterSpec& spec, std::uint64_t seed, const std::string& stream_name);
  // The factor and stall of the next step.
  struct Draw {
    double factor = 1.0;
    Seconds stall{0.0};
  };
  [[nodiscard]] Draw next();

 private:
  StepJitterSpec spec_;
  RandomEngine rng_;
  double z_ = 0;
  bool first_ = true;
};

}  // namespace servesim
