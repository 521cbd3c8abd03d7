// Least-squares fits of measured op times to the roofline form  t = latency + max(FLOPs / F, bytes / B),
// and log-log interpolation on a measured grid with the fitted form carrying the curve beyond its ends.
#pragma once
#include <cstdint>
#include <vector>

#include "models/common/units.h"

namespace servesim {

struct FitPoint {
  double flops = 0;
  double bytes = 0;
  double time_s = 0;
};

struct RooflineFit {
  double latency_s = 0;
  double flops_per_s = 0;  // 0 = no compute-bound point constrained it
  double bytes_per_s = 0;  // 0 = no memory-bound point constrained it
  // > 0 when the fit was capped (fit_roofline's max_bytes_per_s): the bandwidth the unconstrained fit gave,
  // in bytes/s, above the cap; bytes_per_s is then the cap.
  double uncapped_bytes_per_s = 0;
  [[nodiscard]] bool bandwidth_capped() const { return uncapped_bytes_per_s > 0; }
  [[nodiscard]] double predict(double flops, double bytes) const;
};

// Minimises the relative squared error over the points. The max() is handled by alternating: assign each
// point to the term that dominates under the current rates, solve the linear problem (Eigen QR) for
// (latency, 1/F, 1/B), repeat until the assignment is stable. `initial` seeds the rates.
// `max_bytes_per_s` (bytes/s; 0 = none) caps the fitted bandwidth: HBM cannot stream faster than its datasheet
// figure, so when the unconstrained fit's B is above it (points served partly from L2, or a poor fit) the fit is
// redone with B held at the cap -- latency and 1/F solved with the memory-bound points' bytes / cap on the known
// side -- and the unconstrained B is kept in uncapped_bytes_per_s. The calibrated predictor passes the catalog's
// datasheet bandwidth (GpuSpec::memory_bandwidth, scenarios/hardware/gpus.toml).
[[nodiscard]] RooflineFit fit_roofline(const std::vector<FitPoint>& points, RooflineFit initial,
                                       double max_bytes_per_s = 0.0);

// A measured curve t(x) of one op shape over one size variable x (tokens, pairs, bytes). Between measured
// points the ratio measured / fitted-roofline is interpolated linearly in (log x, log ratio), so the curve
// passes through every measurement and bends at the roofline knee where the fitted form does. Outside the measured range the curve follows the
// fitted roofline `shape(x)` anchored at the nearest measured point: t(x) = t(edge) * shape(x) / shape(edge).
class MeasuredCurve {
 public:
  struct Point {
    double x;
    double time_s;
    double flops;  // of the op at this x (for the anchored extrapolation)
    double bytes;
  };
  MeasuredCurve() = default;
  explicit MeasuredCurve(std::vector<Point> points);  // sorted by x inside
  [[nodiscard]] bool empty() const { return pts_.empty(); }
  [[nodiscard]] const std::vector<Point>& points() const { return pts_; }
  // flops/bytes describe the op at x, for use beyond the measured range.
  [[nodiscard]] double at(double x, double flops, double bytes, const RooflineFit& fit) const;
  // The same curve without point i (leave-one-out).
  [[nodiscard]] MeasuredCurve without(std::size_t i) const;

 private:
  std::vector<Point> pts_;
};

}  // namespace servesim
