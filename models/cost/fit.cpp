#include "models/cost/fit.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Dense>

namespace servesim {

double RooflineFit::predict(double flops, double bytes) const {
  const double tc = flops_per_s > 0 ? flops / flops_per_s : 0.0;
  const double tm = bytes_per_s > 0 ? bytes / bytes_per_s : 0.0;
  return latency_s + std::max(tc, tm);
}

namespace {

// One weighted least-squares solve of the roofline for a fixed assignment of points to terms. With
// `fixed_bytes_per_s` > 0 the bandwidth is not a free column: the memory-bound points' bytes / B are moved to the
// known side and only (latency, 1/F) are solved.
RooflineFit solve_assigned(const std::vector<FitPoint>& pts, const std::vector<int>& bound, const RooflineFit& cur,
                           double fixed_bytes_per_s) {
  const bool any_c = std::count(bound.begin(), bound.end(), 0) > 0;
  const bool free_m = fixed_bytes_per_s <= 0 && std::count(bound.begin(), bound.end(), 1) > 0;
  // Columns: latency, [flops], [bytes]; rows weighted by 1 / measured time (relative error).
  const int cols = 1 + (any_c ? 1 : 0) + (free_m ? 1 : 0);
  Eigen::MatrixXd A(static_cast<Eigen::Index>(pts.size()), cols);
  Eigen::VectorXd y(static_cast<Eigen::Index>(pts.size()));
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const auto r = static_cast<Eigen::Index>(i);
    const double w = 1.0 / pts[i].time_s;
    int c = 0;
    A(r, c++) = w;
    if (any_c) A(r, c++) = bound[i] == 0 ? pts[i].flops * w : 0.0;
    if (free_m) A(r, c++) = bound[i] == 1 ? pts[i].bytes * w : 0.0;
    y(r) = 1.0 - (fixed_bytes_per_s > 0 && bound[i] == 1 ? pts[i].bytes * w / fixed_bytes_per_s : 0.0);
  }
  const Eigen::VectorXd x = A.colPivHouseholderQr().solve(y);
  RooflineFit next = cur;
  int c = 0;
  next.latency_s = std::max(0.0, x(c++));
  if (any_c) {
    const double inv = x(c++);
    if (inv > 0) next.flops_per_s = 1.0 / inv;
  }
  if (free_m) {
    const double inv = x(c++);
    if (inv > 0) next.bytes_per_s = 1.0 / inv;
  } else if (fixed_bytes_per_s > 0) {
    next.bytes_per_s = fixed_bytes_per_s;
  }
  return next;
}

// The alternating fit; `fixed_bytes_per_s` > 0 holds the bandwidth at that value throughout.
RooflineFit fit_alternating(const std::vector<FitPoint>& pts, RooflineFit cur, double fixed_bytes_per_s) {
  if (fixed_bytes_per_s > 0) cur.bytes_per_s = fixed_bytes_per_s;
  if (pts.empty()) return cur;
  std::vector<int> bound(pts.size(), -1);  // 0 = compute, 1 = memory
  for (int iter = 0; iter < 50; ++iter) {
    bool changed = false;
    for (std::size_t i = 0; i < pts.size(); ++i) {
      const double tc = cur.flops_per_s > 0 ? pts[i].flops / cur.flops_per_s : 0.0;
      const double tm = cur.bytes_per_s > 0 ? pts[i].bytes / cur.bytes_per_s : 0.0;
      const int b = tc > tm ? 0 : 1;
      changed = changed || b != bound[i];
      bound[i] = b;
    }
    if (!changed) break;
    cur = solve_assigned(pts, bound, cur, fixed_bytes_per_s);
  }
  return cur;
}

}  // namespace

RooflineFit fit_roofline(const std::vector<FitPoint>& pts, RooflineFit initial, double max_bytes_per_s) {
  initial.uncapped_bytes_per_s = 0;
  if (max_bytes_per_s > 0 && initial.bytes_per_s > max_bytes_per_s) initial.bytes_per_s = max_bytes_per_s;
  const RooflineFit free = fit_alternating(pts, initial, 0.0);
  if (max_bytes_per_s <= 0 || free.bytes_per_s <= max_bytes_per_s) return free;
  RooflineFit capped = fit_alternating(pts, initial, max_bytes_per_s);
  capped.uncapped_bytes_per_s = free.bytes_per_s;
  return capped;
}

MeasuredCurve::MeasuredCurve(std::vector<Point> points) : pts_(std::move(points)) {
  std::sort(pts_.begin(), pts_.end(),
            [](const Point& a, const Point& b) { return a.x != b.x ? a.x < b.x : a.time_s < b.time_s; });
}

MeasuredCurve MeasuredCurve::without(std::size_t i) const {
  std::vector<Point> p = pts_;
  p.erase(p.begin() + static_cast<std::ptrdiff_t>(i));
  return MeasuredCurve(std::move(p));
}

double MeasuredCurve::at(double x, double flops, double bytes, const RooflineFit& fit) const {
  if (pts_.empty()) return fit.predict(flops, bytes);
  const Point& lo = pts_.front();
  const Point& hi = pts_.back();
  if (x <= lo.x || x >= hi.x || pts_.size() == 1) {
    const Point& edge = (x <= lo.x) ? lo : hi;
    if (x == edge.x) return edge.time_s;
    const double shape_edge = fit.predict(edge.flops, edge.bytes);
    const double shape_x = fit.predict(flops, bytes);
    return edge.time_s * shape_x / shape_edge;
  }
  const auto it = std::upper_bound(pts_.begin(), pts_.end(), x, [](double v, const Point& p) { return v < p.x; });
  const Point& b = *it;
  const Point& a = *(it - 1);
  // Interpolate the measured / fitted ratio in log-log, so that the fitted shape (flat, then linear past the
  // roofline knee) carries the curve between grid points.
  const double ra = a.time_s / fit.predict(a.flops, a.bytes);
  const double rb = b.time_s / fit.predict(b.flops, b.bytes);
  const double f = (std::log(x) - std::log(a.x)) / (std::log(b.x) - std::log(a.x));
  return fit.predict(flops, bytes) * std::exp(std::log(ra) + f * (std::log(rb) - std::log(ra)));
}

}  // namespace servesim
