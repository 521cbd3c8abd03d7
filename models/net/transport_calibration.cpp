#include "models/net/transport_calibration.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "models/common/csv.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/quantity_parse.h"

namespace servesim {
namespace {

double messages_of(double bytes, double message_size) {
  return std::max(1.0, std::ceil(bytes / message_size));
}

// Unknowns: 0 setup, 1 per_message, 2 inverse rate (seconds per byte).
constexpr int kUnknowns = 3;

struct Attempt {
  std::array<bool, kUnknowns> free;
  const char* fitted;
};

// Weighted least squares over the free unknowns (the others held at `fixed`); nullopt when the rows do not
// determine them (a singular system).
std::optional<std::array<double, kUnknowns>> solve(const std::vector<TransportMeasurement>& rows, double message_size,
                                                    const std::array<bool, kUnknowns>& free,
                                                    const std::array<double, kUnknowns>& fixed) {
  std::vector<int> idx;
  for (int j = 0; j < kUnknowns; ++j) {
    if (free[static_cast<std::size_t>(j)]) idx.push_back(j);
  }
  const std::size_t k = idx.size();
  // Design rows x_i (unknowns' coefficients), targets y_i with the fixed terms moved over, weights 1 / t_i^2.
  std::vector<std::array<double, kUnknowns>> x;
  std::vector<double> y;
  std::vector<double> w;
  for (const auto& r : rows) {
    const std::array<double, kUnknowns> c{r.stream ? 0.0 : 1.0, messages_of(r.bytes.value(), message_size),
                                          r.bytes.value()};
    double target = r.time.value();
    for (int j = 0; j < kUnknowns; ++j) {
      const auto u = static_cast<std::size_t>(j);
      if (!free[u]) target -= c[u] * fixed[u];
    }
    x.push_back(c);
    y.push_back(target);
    w.push_back(1.0 / (r.time.value() * r.time.value()));
  }
  // Column scales (so that seconds and bytes meet in one matrix), then the normal equations A p = b.
  std::vector<double> scale(k, 0.0);
  for (std::size_t a = 0; a < k; ++a) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double v = x[i][static_cast<std::size_t>(idx[a])];
      scale[a] += w[i] * v * v;
    }
    if (!(scale[a] > 0.0)) return std::nullopt;
    scale[a] = std::sqrt(scale[a]);
  }
  std::vector<std::vector<double>> m(k, std::vector<double>(k + 1, 0.0));
  for (std::size_t i = 0; i < x.size(); ++i) {
    for (std::size_t a = 0; a < k; ++a) {
      const double xa = x[i][static_cast<std::size_t>(idx[a])] / scale[a];
      for (std::size_t b = 0; b < k; ++b) m[a][b] += w[i] * xa * x[i][static_cast<std::size_t>(idx[b])] / scale[b];
      m[a][k] += w[i] * xa * y[i];
    }
  }
  // Gaussian elimination with partial pivoting; a pivot below 1e-9 of the unit diagonal means collinear columns.
  for (std::size_t c = 0; c < k; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < k; ++r) {
      if (std::fabs(m[r][c]) > std::fabs(m[p][c])) p = r;
    }
    if (std::fabs(m[p][c]) < 1e-9) return std::nullopt;
    std::swap(m[p], m[c]);
    for (std::size_t r = 0; r < k; ++r) {
      if (r == c) continue;
      const double f = m[r][c] / m[c][c];
      for (std::size_t q = c; q <= k; ++q) m[r][q] -= f * m[c][q];
    }
  }
  std::array<double, kUnknowns> out = fixed;
  for (std::size_t a = 0; a < k; ++a) out[static_cast<std::size_t>(idx[a])] = m[a][k] / m[a][a] / scale[a];
  return out;
}

}  // namespace

std::vector<TransportMeasurement> read_transport_csv(const std::string& path) {
  std::ifstream in = open_input_file(path, "transport profile CSV");
  std::vector<TransportMeasurement> out;
  std::string line;
  std::size_t n = 0;
  bool header = false;
  while (std::getline(in, line)) {
    ++n;
    const std::string where = fmt::format("{}:{}", path, n);
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    if (!header) {
      if (t != kTransportCsvHeader) {
        throw InputError(where + ": expected the header '" + std::string(kTransportCsvHeader) + "', got '" + t + "'");
      }
      header = true;
      continue;
    }
    const auto f = split_fields(t, 5);
    if (f.size() < 3) throw InputError(where + ": expected " + std::string(kTransportCsvHeader));
    TransportMeasurement m;
    m.where = where;
    m.transport = f[0];
    if (!transport_registry().contains(m.transport)) {
      throw InputError(where + ": unknown transport '" + m.transport + "' (valid: " + transport_names_text() + ")");
    }
    try {
      m.bytes = parse_bytes(f[1]);
    } catch (const InputError& e) {
      throw InputError(where + ": bytes: " + e.what());
    }
    if (!(m.bytes.value() >= 1.0) || !std::isfinite(m.bytes.value())) {
      throw InputError(where + ": bytes: must be >= 1 (got '" + f[1] + "')");
    }
    char* end = nullptr;
    const double us = std::strtod(f[2].c_str(), &end);
    if (f[2].empty() || *end != '\0' || !std::isfinite(us)) {
      throw InputError(where + ": time_us: '" + f[2] + "' is not a number");
    }
    if (!(us > 0.0) || us * 1e-6 > kMaxSimSeconds) {
      throw InputError(where + ": time_us: must be > 0 and at most 1e13 (got " + f[2] + ")");
    }
    m.time = Seconds{us * 1e-6};
    const std::string mode = f.size() > 3 ? f[3] : "";
    if (mode == "stream") {
      m.stream = true;
    } else if (!mode.empty() && mode != "single") {
      throw InputError(where + ": mode: '" + mode + "' (valid: single, stream)");
    }
    m.source = f.size() > 4 ? f[4] : "";
    out.push_back(std::move(m));
  }
  if (!header) throw InputError(path + ": empty transport profile (expected the header '" +
                                std::string(kTransportCsvHeader) + "')");
  if (out.empty()) throw InputError(path + ": transport profile has no rows");
  return out;
}

Seconds TransportFit::time(Bytes bytes, bool stream) const {
  const double n = messages_of(bytes.value(), message_size.value());
  return (stream ? Seconds{0} : setup) + per_message * n + bytes / rate;
}

TransportFit fit_transport(const std::vector<TransportMeasurement>& rows, const TransportCosts& defaults,
                           const std::string& name) {
  if (rows.empty()) throw InputError(name + ": no rows to fit");
  const std::string transport = rows.front().transport;
  std::set<double> sizes;
  for (const auto& r : rows) sizes.insert(r.bytes.value());
  if (sizes.size() < 2) {
    throw InputError(fmt::format("{}: transport {}: needs measurements at 2 or more sizes (has {} row{} at one size)",
                                 name, transport, rows.size(), rows.size() == 1 ? "" : "s"));
  }
  const double msg = defaults.message_size.value();
  const std::array<double, kUnknowns> fixed{defaults.setup.value(), defaults.per_message.value(), 0.0};
  static const Attempt kAttempts[] = {{{true, true, true}, "setup, per_message, rate"},
                                      {{true, false, true}, "setup, rate"},
                                      {{false, true, true}, "per_message, rate"},
                                      {{false, false, true}, "rate"}};
  for (const Attempt& a : kAttempts) {
    const auto p = solve(rows, msg, a.free, fixed);
    if (!p || !((*p)[0] >= 0.0) || !((*p)[1] >= 0.0) || !((*p)[2] > 0.0)) continue;
    TransportFit f;
    f.transport = transport;
    f.setup = Seconds{(*p)[0]};
    f.per_message = Seconds{(*p)[1]};
    f.message_size = defaults.message_size;
    f.rate = BytesPerSec{1.0 / (*p)[2]};
    f.fitted = a.fitted;
    f.rows = rows.size();
    f.source = name;
    for (const auto& r : rows) {
      const double err = std::fabs(f.time(r.bytes, r.stream).value() - r.time.value()) / r.time.value() * 100.0;
      f.max_error_pct = std::max(f.max_error_pct, err);
    }
    return f;
  }
  throw InputError(fmt::format("{}: transport {}: the {} rows do not fit time = setup + messages x per_message + "
                               "bytes / rate with setup, per_message >= 0 and rate > 0",
                               name, transport, rows.size()));
}

TransportCalibration TransportCalibration::fit(const std::vector<TransportMeasurement>& rows, const std::string& name) {
  std::map<std::string, std::vector<TransportMeasurement>> by;
  for (const auto& r : rows) {
    if (!transport_registry().contains(r.transport)) {
      throw InputError((r.where.empty() ? name : r.where) + ": unknown transport '" + r.transport +
                       "' (valid: " + transport_names_text() + ")");
    }
    by[r.transport].push_back(r);
  }
  TransportCalibration cal;
  for (const auto& [transport, list] : by) {
    const auto t = transport_registry().create(transport, name);
    cal.fits_.emplace(transport, fit_transport(list, t->default_costs(), name));
  }
  return cal;
}

TransportCalibration TransportCalibration::from_csv(const std::string& path) {
  return fit(read_transport_csv(path), path);
}

const TransportFit* TransportCalibration::find(const std::string& transport) const {
  const auto it = fits_.find(transport);
  return it == fits_.end() ? nullptr : &it->second;
}

void TransportCalibration::apply(const Topology& topo, TransportPath& path) const {
  const TransportFit* f = find(path.transport);
  if (f == nullptr) return;
  path.setup = f->setup;
  path.per_message = f->per_message;
  path.staging_copies = 0;
  path.staging_rate = BytesPerSec{0};
  path.rate = f->rate;
  path.limit = "calibrated on " + f->source;
  for (const int id : path.links) {
    const TopoLink& l = topo.link(id);
    if (l.bandwidth < path.rate) {
      path.rate = l.bandwidth;
      path.limit = fmt::format("link {} -> {} ({:g} GB/s raw, below the calibrated {:g} GB/s)",
                               topo.vertex(l.from).name, topo.vertex(l.to).name, l.bandwidth.value() / 1e9,
                               f->rate.value() / 1e9);
    }
  }
  path.calibrated = true;
}

}  // namespace servesim
