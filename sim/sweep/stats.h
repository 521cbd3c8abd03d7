// Means and 95 % confidence intervals of a metric across a sweep point's seeds.
#pragma once
#include <optional>
#include <vector>

namespace servesim {

// The mean of n values and the half-width of its 95 % confidence interval (Student's t):
//   half_width = t_{0.975, n-1} * s / sqrt(n),   s = sqrt(sum (x - mean)^2 / (n - 1))   (the sample std)
// so that the interval is mean +- half_width. With one value there is no interval: half_width is empty (the
// CSV's <metric>_ci95 cell is left empty). The values are summed in the order given (the seeds' order), so
// equal inputs give equal bits.
struct MeanCi {
  double mean = 0;
  std::optional<double> half_width;
};

// `values` must not be empty (std::invalid_argument).
[[nodiscard]] MeanCi mean_ci95(const std::vector<double>& values);

// The 0.975 quantile of Student's t distribution with `dof` > 0 degrees of freedom (Boost.Math students_t): for
// 1, tan(0.475 pi) = 12.7062047361747; for 2, 0.95 / sqrt(2 x 0.975 x 0.025) = 4.30265272974946; toward the
// normal's 1.95996398454005 as dof grows.
[[nodiscard]] double t_quantile_975(double dof);

}  // namespace servesim
