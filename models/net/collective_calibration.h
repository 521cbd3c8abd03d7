// Calibration of the collective cost model against measured collectives.
//
// Input: a CSV file with the header
//     collective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source
// (the profile schema of calibrate/README.md; GB = 1e9 bytes; lines starting with '#' and blank lines are
// ignored; collective names may be spelt as nccl-tests does: "allreduce", "sendrecv", "alltoall", and rows of
// collectives the model does not cover (reduce, gather, scatter) are skipped; `bytes` may carry a unit, "1MiB";
// any of time_us / algbw_GBps / busbw_GBps may be empty but not all three, and the time is taken from the first
// present of them in that order; when time_us and busbw_GBps are both given they must agree within 5 % + 0.005 GB/s;
// `source` is free text and may contain commas). A malformed row throws InputError "file:line: ...".
//
// Fit: for every (collective, ranks) measured, the correction factor f = measured_time / analytic_time at each
// measured size (analytic_time = the uncalibrated CommGroup on GPUs 0..ranks-1 with the chosen algorithm).
// Several rows with the same size are averaged. Between measured sizes f is interpolated linearly in
// log(bytes); beyond the measured range f is held at the end value, so there the analytic model's own shape
// (latency term at small sizes, bandwidth term at large ones) carries the prediction, as SimGrid's piecewise
// message-size factors do. Unmeasured (collective, ranks) pairs get f = 1, and so does a group that spans a
// different number of machines than the measured one (GPUs 0..ranks-1): a single-node curve does not correct a
// group whose traffic crosses the network.
//
// Check: compare() reports, for every measured row, the measured busbw, the in-sample calibrated prediction
// (which reproduces the measurement up to the averaging of repeated sizes) and the leave-one-out prediction
// (the curve refitted without that size, then evaluated at it: interpolation between its neighbours, or the
// held end value at either end), with their errors.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/common/units.h"
#include "models/net/collective.h"
#include "models/net/comm_group.h"
#include "models/net/topology.h"

namespace servesim {

struct CollectiveMeasurement {
  CollectiveOp op = CollectiveOp::all_reduce;
  int ranks = 0;
  Bytes bytes{0};
  Seconds time{0};
  std::string source;
  std::string where;  // "file:line"
  [[nodiscard]] double algbw_GBps() const { return bytes.value() / time.value() / kGB; }
  [[nodiscard]] double busbw_GBps() const { return algbw_GBps() * busbw_factor(op, ranks); }
};

// `skipped_rows`, when given, receives the number of rows of collectives the model does not cover.
[[nodiscard]] std::vector<CollectiveMeasurement> read_collectives_csv(const std::string& path,
                                                                      std::size_t* skipped_rows = nullptr);

// A correction factor as a function of the message size: piecewise linear in log(bytes), held at the ends.
class CorrectionCurve {
 public:
  CorrectionCurve() = default;
  // (bytes, factor) points in any order; equal sizes are averaged. Sizes and factors must be > 0.
  explicit CorrectionCurve(std::vector<std::pair<double, double>> points);
  [[nodiscard]] double at(Bytes size) const;  // never allocates
  [[nodiscard]] bool empty() const { return log_bytes_.empty(); }
  [[nodiscard]] std::size_t points() const { return log_bytes_.size(); }

 private:
  std::vector<double> log_bytes_;
  std::vector<double> factor_;
};

class CollectiveCalibration {
 public:
  using AnalyticModel = std::function<Seconds(CollectiveOp op, int ranks, Bytes bytes)>;

  // `algo` names what the calibration was fitted against: CommGroup::model_key(model, algo, proto), e.g.
  // "nccl/auto/auto" (a bare algorithm name matches no group).
  explicit CollectiveCalibration(std::string algo = "nccl/auto/auto") : algo_(std::move(algo)) {}
  // Fits one curve per (op, ranks) of the measurements against `analytic`, which must be the model of `algo`.
  [[nodiscard]] static CollectiveCalibration fit(const std::vector<CollectiveMeasurement>& measurements,
                                                 const AnalyticModel& analytic, const std::string& algo);

  void set_curve(CollectiveOp op, int ranks, CorrectionCurve curve);
  // The machines the measured groups of `ranks` GPUs spanned (unset: any group of that size matches).
  void set_nodes_spanned(int ranks, int nodes);
  // nullptr when (op, ranks) was not measured.
  [[nodiscard]] const CorrectionCurve* curve(CollectiveOp op, int ranks) const;
  // nullptr also when the measured group of `ranks` GPUs spanned another number of machines than `nodes`.
  [[nodiscard]] const CorrectionCurve* curve(CollectiveOp op, int ranks, int nodes) const;
  [[nodiscard]] double factor(CollectiveOp op, int ranks, Bytes size) const;
  [[nodiscard]] const std::string& algo() const { return algo_; }

 private:
  std::string algo_;
  std::map<std::pair<int, int>, CorrectionCurve> curves_;
  std::map<int, int> nodes_spanned_;  // ranks -> machines of the measured group
};

struct CalibrationRow {
  CollectiveOp op = CollectiveOp::all_reduce;
  int ranks = 0;
  Bytes bytes{0};
  std::string algo;  // algorithm the analytic model picked at this size
  double measured_busbw_GBps = 0.0;
  double analytic_busbw_GBps = 0.0;  // uncalibrated model
  double fitted_busbw_GBps = 0.0;    // calibrated with every measurement (in-sample)
  double fitted_error_pct = 0.0;     // 100 * (fitted - measured) / measured
  double loo_busbw_GBps = 0.0;       // calibrated without this size (leave-one-out)
  double loo_error_pct = 0.0;
};

// An algorithm choice on a topology, calibrated against measurements.
class CalibratedCollectives {
 public:
  // Throws InputError naming the CSV row when a measurement asks for more ranks than the topology has GPUs.
  // `model`, `algo`, `proto`: the collective cost model the calibration corrects (CommGroup's arguments).
  CalibratedCollectives(std::shared_ptr<const Topology> topo, std::vector<CollectiveMeasurement> measurements,
                        std::string algo = "auto", std::string model = std::string(kDefaultCollectiveModel),
                        std::string proto = "auto");

  [[nodiscard]] const Topology& topology() const { return *topo_; }
  [[nodiscard]] const std::vector<CollectiveMeasurement>& measurements() const { return measurements_; }
  [[nodiscard]] const std::shared_ptr<const CollectiveCalibration>& calibration() const { return cal_; }
  [[nodiscard]] const std::string& algo() const { return algo_; }
  [[nodiscard]] const std::string& model() const { return model_; }

  // A calibrated group of the topology's GPUs.
  [[nodiscard]] CommGroup group(std::vector<int> gpu_indices) const;
  // On GPUs 0..ranks-1: the uncalibrated and the calibrated model.
  [[nodiscard]] CollectiveResult analytic(CollectiveOp op, int ranks, Bytes size) const;
  [[nodiscard]] CollectiveResult predict(CollectiveOp op, int ranks, Bytes size) const;

  // One row per measured (op, ranks, size), sorted by op, ranks, size.
  [[nodiscard]] std::vector<CalibrationRow> compare() const;

 private:
  [[nodiscard]] const CommGroup& analytic_group(int ranks) const;
  [[nodiscard]] const CommGroup& calibrated_group(int ranks) const;

  std::shared_ptr<const Topology> topo_;
  std::vector<CollectiveMeasurement> measurements_;
  std::string algo_;
  std::string model_;
  std::string proto_;
  std::shared_ptr<const CollectiveCalibration> cal_;
  std::map<int, CommGroup> analytic_;    // per measured group size
  std::map<int, CommGroup> calibrated_;  // per measured group size
};

}  // namespace servesim
