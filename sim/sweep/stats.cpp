#include "sim/sweep/stats.h"

#include <cmath>
#include <stdexcept>

#include <boost/math/distributions/students_t.hpp>

namespace servesim {

double t_quantile_975(double dof) {
  return boost::math::quantile(boost::math::students_t_distribution<double>(dof), 0.975);
}

MeanCi mean_ci95(const std::vector<double>& values) {
  if (values.empty()) throw std::invalid_argument("mean_ci95: no values");
  MeanCi r;
  double sum = 0;
  for (const double x : values) sum += x;
  const auto n = static_cast<double>(values.size());
  r.mean = sum / n;
  if (values.size() < 2) return r;
  double ss = 0;
  for (const double x : values) ss += (x - r.mean) * (x - r.mean);
  const double s = std::sqrt(ss / (n - 1));
  r.half_width = t_quantile_975(n - 1) * s / std::sqrt(n);
  return r;
}

}  // namespace servesim
