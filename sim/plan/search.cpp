#include "sim/plan/search.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace servesim {

Bisection::Bisection(const BisectSettings& s) : s_(s) {
  if (!(s.rate_min > 0) || !(s.rate_max > s.rate_min) || !(s.tolerance > 0) || s.max_probes < 2) {
    throw std::logic_error("Bisection: needs 0 < rate_min < rate_max, tolerance > 0 and max_probes >= 2");
  }
}

std::optional<double> Bisection::next() const {
  if (finished_) return std::nullopt;
  const std::size_t n = result_.probes.size();
  if (n == 0) return s_.rate_min;
  if (n == 1) return s_.rate_max;
  return std::sqrt(pass_ * fail_);
}

void Bisection::record(bool pass) {
  const std::optional<double> rate = next();
  if (!rate) throw std::logic_error("Bisection::record after the search ended");
  result_.probes.push_back({*rate, pass});
  const std::size_t n = result_.probes.size();
  if (pass) {
    pass_ = *rate;
    result_.max_rate = *rate;
  } else {
    fail_ = *rate;
  }
  if (n == 1 && !pass) finished_ = true;  // nothing passes
  if (n == 2 && pass) {
    result_.capped = true;
    finished_ = true;
  }
  if (n >= 2 && !finished_) {
    finished_ = fail_ / pass_ <= 1.0 + s_.tolerance || static_cast<std::int64_t>(n) >= s_.max_probes;
  }
}

BisectResult bisect_max_rate(const BisectSettings& s, const std::function<bool(double)>& passes) {
  Bisection b(s);
  while (const auto r = b.next()) b.record(passes(*r));
  return b.result();
}

std::int64_t replicas_for(double target_rate, double max_rate_per_replica) {
  if (!(target_rate > 0) || !(max_rate_per_replica > 0)) {
    throw std::logic_error("replicas_for: rates must be > 0");
  }
  const double q = target_rate / max_rate_per_replica;
  // Round to 12 significant digits: a quotient that is an integer up to rounding error stays that integer.
  const double scale = std::pow(10.0, 11 - static_cast<int>(std::floor(std::log10(q))));
  const double rounded = std::round(q * scale) / scale;
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(rounded)));
}

double fleet_cost_per_hour(std::int64_t replicas, std::int64_t gpus_per_replica, double price_per_gpu_hour) {
  return static_cast<double>(replicas) * static_cast<double>(gpus_per_replica) * price_per_gpu_hour;
}

std::vector<std::size_t> pareto_front(const std::vector<CostPoint>& points) {
  std::vector<std::size_t> order(points.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (points[a].cost != points[b].cost) return points[a].cost < points[b].cost;
    return points[a].latency < points[b].latency;
  });
  // Sorted by cost then latency, a point is on the front when it is faster than every cheaper point, or equal to
  // the last point kept (ties are all kept); a point of the same cost and higher latency is dominated.
  std::vector<std::size_t> front;
  for (const std::size_t i : order) {
    if (front.empty()) {
      front.push_back(i);
      continue;
    }
    const CostPoint& last = points[front.back()];
    const CostPoint& p = points[i];
    if (p.latency < last.latency || (p.latency == last.latency && p.cost == last.cost)) front.push_back(i);
  }
  return front;
}

}  // namespace servesim
