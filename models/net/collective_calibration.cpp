#include "models/net/collective_calibration.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "models/common/csv.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/quantity_parse.h"

namespace servesim {
namespace {

constexpr const char* kHeader = "collective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source";
constexpr double kConsistencyTolerance = 0.05;  // time_us vs busbw_GBps, relative

std::optional<double> positive_number(const std::string& field, const std::string& column, const std::string& where) {
  if (field.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(field.c_str(), &end);
  if (end == field.c_str() || *end != '\0' || !std::isfinite(v)) {
    throw InputError(where + ": " + column + ": '" + field + "' is not a number");
  }
  if (!(v > 0.0)) throw InputError(where + ": " + column + ": must be > 0 (got " + field + ")");
  return v;
}

enum class Known { modelled, not_modelled, unknown };

// Collective names as written by people and by nccl-tests: case, '_' / '-' and a "_perf" suffix do not matter
// ("all_reduce", "allreduce", "AllReduce", "all_reduce_perf"; "sendrecv" = send_recv, "alltoall" = all_to_all).
Known parse_csv_collective(const std::string& text, CollectiveOp* op) {
  std::string k;
  for (char c : text) {
    if (c != '_' && c != '-') k += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (k.size() > 4 && k.ends_with("perf")) k.resize(k.size() - 4);
  static const std::pair<const char*, CollectiveOp> kNames[] = {
      {"allreduce", CollectiveOp::all_reduce},         {"allgather", CollectiveOp::all_gather},
      {"reducescatter", CollectiveOp::reduce_scatter}, {"broadcast", CollectiveOp::broadcast},
      {"sendrecv", CollectiveOp::send_recv},           {"alltoall", CollectiveOp::all_to_all}};
  for (const auto& [name, o] : kNames) {
    if (k == name) {
      *op = o;
      return Known::modelled;
    }
  }
  if (k == "reduce" || k == "gather" || k == "scatter") return Known::not_modelled;
  return Known::unknown;
}

}  // namespace

std::vector<CollectiveMeasurement> read_collectives_csv(const std::string& path, std::size_t* skipped_rows) {
  if (skipped_rows != nullptr) *skipped_rows = 0;
  std::ifstream in = open_input_file(path, "collectives CSV");
  std::vector<CollectiveMeasurement> out;
  std::string raw;
  int lineno = 0;
  bool header_seen = false;
  while (std::getline(in, raw)) {
    ++lineno;
    const std::string line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = path + ":" + std::to_string(lineno);
    if (!header_seen) {
      std::string normalized;
      for (const auto& f : split_fields(line, 64)) normalized += (normalized.empty() ? "" : ",") + f;
      if (normalized != kHeader) {
        throw InputError(where + ": expected the header '" + std::string(kHeader) + "' (got '" + line + "')");
      }
      header_seen = true;
      continue;
    }
    const auto f = split_fields(line, 7);
    if (f.size() != 7) {
      throw InputError(where + ": expected 7 comma-separated fields (" + std::string(kHeader) + "), got " +
                       std::to_string(f.size()));
    }
    CollectiveMeasurement m;
    m.where = where;
    switch (parse_csv_collective(f[0], &m.op)) {
      case Known::modelled:
        break;
      case Known::not_modelled:
        if (skipped_rows != nullptr) ++*skipped_rows;
        continue;
      case Known::unknown:
        throw InputError(where + ": collective: unknown collective '" + f[0] + "' (valid: " + collective_op_names() +
                         "; reduce, gather and scatter rows are skipped)");
    }
    const auto ranks = positive_number(f[1], "ranks", where);
    if (!ranks || *ranks != std::floor(*ranks) || *ranks < 2.0 || *ranks > 1e6) {
      throw InputError(where + ": ranks: expected an integer >= 2 (got '" + f[1] + "')");
    }
    m.ranks = static_cast<int>(*ranks);
    try {
      m.bytes = parse_bytes(f[2]);
    } catch (const InputError& e) {
      throw InputError(where + ": bytes: " + e.what());
    }
    if (!(m.bytes.value() > 0.0)) throw InputError(where + ": bytes: must be > 0 (got '" + f[2] + "')");
    const auto time_us = positive_number(f[3], "time_us", where);
    const auto algbw = positive_number(f[4], "algbw_GBps", where);
    const auto busbw = positive_number(f[5], "busbw_GBps", where);
    if (time_us) {
      m.time = us(*time_us);
    } else if (algbw) {
      m.time = Seconds{m.bytes.value() / (*algbw * kGB)};
    } else if (busbw) {
      m.time = Seconds{m.bytes.value() * busbw_factor(m.op, m.ranks) / (*busbw * kGB)};
    } else {
      throw InputError(where + ": give at least one of time_us, algbw_GBps, busbw_GBps");
    }
    // Relative tolerance plus the rounding of a busbw printed with two decimals.
    if (time_us && busbw && std::fabs(m.busbw_GBps() - *busbw) > kConsistencyTolerance * *busbw + 0.005) {
      throw InputError(where + ": time_us " + f[3] + " means busbw " + std::to_string(m.busbw_GBps()) +
                       " GB/s, but busbw_GBps says " + f[5]);
    }
    m.source = f[6];
    out.push_back(std::move(m));
  }
  if (!header_seen)
    throw InputError(path + ": empty collectives CSV (expected the header '" + std::string(kHeader) + "')");
  return out;
}

CorrectionCurve::CorrectionCurve(std::vector<std::pair<double, double>> points) {
  std::sort(points.begin(), points.end());
  for (std::size_t i = 0; i < points.size();) {
    std::size_t j = i;
    double sum = 0.0;
    while (j < points.size() && points[j].first == points[i].first) sum += points[j++].second;
    if (!(points[i].first > 0.0) || !(sum > 0.0)) throw InputError("correction curve: sizes and factors must be > 0");
    log_bytes_.push_back(std::log(points[i].first));
    factor_.push_back(sum / static_cast<double>(j - i));
    i = j;
  }
}

double CorrectionCurve::at(Bytes size) const {
  if (log_bytes_.empty()) return 1.0;
  if (!(size.value() > 0.0)) return factor_.front();
  const double x = std::log(size.value());
  if (x <= log_bytes_.front()) return factor_.front();
  if (x >= log_bytes_.back()) return factor_.back();
  const auto hi =
      static_cast<std::size_t>(std::upper_bound(log_bytes_.begin(), log_bytes_.end(), x) - log_bytes_.begin());
  const std::size_t lo = hi - 1;
  const double w = (x - log_bytes_[lo]) / (log_bytes_[hi] - log_bytes_[lo]);
  return factor_[lo] + w * (factor_[hi] - factor_[lo]);
}

CollectiveCalibration CollectiveCalibration::fit(const std::vector<CollectiveMeasurement>& measurements,
                                                 const AnalyticModel& analytic, const std::string& algo) {
  std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> points;
  for (const auto& m : measurements) {
    const Seconds model = analytic(m.op, m.ranks, m.bytes);
    if (!(model.value() > 0.0)) throw InputError(m.where + ": the analytic model gives no time for this row");
    points[{static_cast<int>(m.op), m.ranks}].emplace_back(m.bytes.value(), m.time.value() / model.value());
  }
  CollectiveCalibration cal(algo);
  for (auto& [key, pts] : points) cal.curves_[key] = CorrectionCurve(std::move(pts));
  return cal;
}

void CollectiveCalibration::set_curve(CollectiveOp op, int ranks, CorrectionCurve curve) {
  curves_[{static_cast<int>(op), ranks}] = std::move(curve);
}

const CorrectionCurve* CollectiveCalibration::curve(CollectiveOp op, int ranks) const {
  auto it = curves_.find({static_cast<int>(op), ranks});
  return it == curves_.end() ? nullptr : &it->second;
}

void CollectiveCalibration::set_nodes_spanned(int ranks, int nodes) { nodes_spanned_[ranks] = nodes; }

const CorrectionCurve* CollectiveCalibration::curve(CollectiveOp op, int ranks, int nodes) const {
  const auto it = nodes_spanned_.find(ranks);
  if (it != nodes_spanned_.end() && it->second != nodes) return nullptr;
  return curve(op, ranks);
}

double CollectiveCalibration::factor(CollectiveOp op, int ranks, Bytes size) const {
  const CorrectionCurve* c = curve(op, ranks);
  return c ? c->at(size) : 1.0;
}

CalibratedCollectives::CalibratedCollectives(std::shared_ptr<const Topology> topo,
                                             std::vector<CollectiveMeasurement> measurements, std::string algo,
                                             std::string model, std::string proto)
    : topo_(std::move(topo)),
      measurements_(std::move(measurements)),
      algo_(std::move(algo)),
      model_(std::move(model)),
      proto_(std::move(proto)) {
  if (!topo_) throw InputError("CalibratedCollectives: no topology");
  for (const auto& m : measurements_) {
    if (m.ranks > topo_->gpu_count()) {
      throw InputError(m.where + ": " + std::to_string(m.ranks) + " ranks, but topology '" + topo_->name() + "' has " +
                       std::to_string(topo_->gpu_count()) + " GPUs");
    }
    if (analytic_.count(m.ranks) == 0) {
      analytic_.emplace(m.ranks, CommGroup(topo_, topo_->first_gpus(m.ranks), algo_, nullptr, model_, proto_));
    }
  }
  auto cal = CollectiveCalibration::fit(
      measurements_, [this](CollectiveOp op, int ranks, Bytes b) { return analytic_group(ranks).time(op, b); },
      CommGroup::model_key(model_, algo_, proto_));
  for (const auto& [ranks, g] : analytic_) cal.set_nodes_spanned(ranks, topo_->nodes_spanned(topo_->first_gpus(ranks)));
  cal_ = std::make_shared<const CollectiveCalibration>(std::move(cal));
  for (const auto& [ranks, g] : analytic_) {
    calibrated_.emplace(ranks, CommGroup(topo_, topo_->first_gpus(ranks), algo_, cal_, model_, proto_));
  }
}

const CommGroup& CalibratedCollectives::analytic_group(int ranks) const { return analytic_.at(ranks); }
const CommGroup& CalibratedCollectives::calibrated_group(int ranks) const { return calibrated_.at(ranks); }

CommGroup CalibratedCollectives::group(std::vector<int> gpu_indices) const {
  return CommGroup(topo_, std::move(gpu_indices), algo_, cal_, model_, proto_);
}

CollectiveResult CalibratedCollectives::analytic(CollectiveOp op, int ranks, Bytes size) const {
  if (analytic_.count(ranks)) return analytic_group(ranks).cost(op, size);
  return CommGroup(topo_, topo_->first_gpus(ranks), algo_, nullptr, model_, proto_).cost(op, size);
}

CollectiveResult CalibratedCollectives::predict(CollectiveOp op, int ranks, Bytes size) const {
  if (calibrated_.count(ranks)) return calibrated_group(ranks).cost(op, size);
  return group(topo_->first_gpus(ranks)).cost(op, size);
}

std::vector<CalibrationRow> CalibratedCollectives::compare() const {
  // (op, ranks) -> size -> measured times
  std::map<std::pair<int, int>, std::map<double, std::vector<double>>> by_curve;
  for (const auto& m : measurements_)
    by_curve[{static_cast<int>(m.op), m.ranks}][m.bytes.value()].push_back(m.time.value());

  std::vector<CalibrationRow> rows;
  for (const auto& [key, sizes] : by_curve) {
    const auto op = static_cast<CollectiveOp>(key.first);
    const int ranks = key.second;
    const CommGroup& model = analytic_group(ranks);
    const double factor = busbw_factor(op, ranks);
    auto busbw = [&](double bytes, double seconds) { return bytes / seconds / kGB * factor; };
    std::vector<std::pair<double, double>> all_points;  // (bytes, factor)
    for (const auto& [bytes, times] : sizes) {
      const double analytic_t = model.time(op, Bytes{bytes}).value();
      for (double t : times) all_points.emplace_back(bytes, t / analytic_t);
    }
    for (const auto& [bytes, times] : sizes) {
      const Bytes s{bytes};
      double mean = 0.0;
      for (double t : times) mean += t;
      mean /= static_cast<double>(times.size());
      const double analytic_t = model.time(op, s).value();
      std::vector<std::pair<double, double>> others;
      for (const auto& p : all_points) {
        if (p.first != bytes) others.push_back(p);
      }
      const double loo_factor = others.empty() ? 1.0 : CorrectionCurve(others).at(s);
      CalibrationRow r;
      r.op = op;
      r.ranks = ranks;
      r.bytes = s;
      r.algo = model.chosen_algo(op, s);
      r.measured_busbw_GBps = busbw(bytes, mean);
      r.analytic_busbw_GBps = busbw(bytes, analytic_t);
      r.fitted_busbw_GBps = busbw(bytes, analytic_t * cal_->factor(op, ranks, s));
      r.fitted_error_pct = 100.0 * (r.fitted_busbw_GBps - r.measured_busbw_GBps) / r.measured_busbw_GBps;
      r.loo_busbw_GBps = busbw(bytes, analytic_t * loo_factor);
      r.loo_error_pct = 100.0 * (r.loo_busbw_GBps - r.measured_busbw_GBps) / r.measured_busbw_GBps;
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

}  // namespace servesim
