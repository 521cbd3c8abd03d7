#include "sim/engine/step_jitter.h"

#include <algorithm>
#include <cmath>

#include <boost/math/special_functions/erf.hpp>

namespace servesim {
namespace {

// A uniform in (0, 1), never 0 or 1: the top 53 bits of one draw, centred in their interval (the same on every
// platform).
double open_uniform(RandomEngine& rng) {
  return (double(rng() >> 11) + 0.5) * 0x1.0p-53;
}

// Standard normal quantile.
double normal_quantile(double u) { return -std::sqrt(2.0) * boost::math::erfc_inv(2.0 * u); }

}  // namespace

StepJitter::StepJitter(const StepJitterSpec& spec, std::uint64_t seed, const std::string& stream_name)
    : spec_(spec), rng_(make_stream(seed, stream_name)) {}

StepJitter::Draw StepJitter::next() {
  const double u_factor = open_uniform(rng_);
  const double u_stall = open_uniform(rng_);
  const double u_duration = open_uniform(rng_);
  const double e = normal_quantile(u_factor);
  const double rho = spec_.correlation;
  z_ = first_ ? e : rho * z_ + std::sqrt(1.0 - rho * rho) * e;
  first_ = false;
  Draw d;
  switch (spec_.kind) {
    case StepJitterSpec::Kind::none: break;
    case StepJitterSpec::Kind::lognormal:
      d.factor = std::exp(-0.5 * spec_.sigma * spec_.sigma + spec_.sigma * z_);
      break;
    case StepJitterSpec::Kind::empirical: {
      const auto& q = spec_.factors;
      // Phi(z), kept inside (0, 1).
      const double u = rho == 0.0 ? u_factor : std::clamp(0.5 * std::erfc(-z_ / std::sqrt(2.0)), 0.0, 1.0);
      const double x = u * double(q.size() - 1);
      const auto i = std::min(static_cast<std::size_t>(x), q.size() - 2);
      d.factor = q[i] + (q[i + 1] - q[i]) * (x - double(i));
      break;
    }
  }
  if (u_stall < spec_.stall_probability) {
    d.stall = spec_.stall_median * std::exp(spec_.stall_sigma * normal_quantile(u_duration));
  }
  return d;
}

}  // namespace servesim
