#include "sim/sweep/sweep.h"

#include <stdexcept>

#include <fmt/format.h>

#include "sim/sweep/stats.h"

namespace servesim {

std::string csv_field(std::string_view text) {
  std::string s;
  bool quote = !text.empty() && (text.front() == ' ' || text.back() == ' ');
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '\n') {
      s += "\\n";
    } else if (ch == '\r') {
      s += "\\r";
    } else if (ch == '\t') {
      s += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      s += fmt::format("\\x{:02x}", u);
    } else {
      if (ch == ',' || ch == '"') quote = true;
      s += ch;
      if (ch == '"') s += '"';
    }
  }
  return quote ? "\"" + s + "\"" : s;
}

std::string csv_number(double v) { return fmt::format("{}", v); }

std::string part_line(const Grid& grid, const Shard& shard) {
  return "# servesim sweep part " + to_string(shard) + ", grid " + grid.fingerprint + ", " +
         std::to_string(grid.points.size()) + " points\n";
}

SweepOutput run_sweep(const Grid& grid, const SweepOptions& options) {
  const std::size_t n = grid.points.size();
  // Every point loads (with its first seed), and all report the same metrics.
  std::vector<PointSpec> first;
  for (std::size_t p = 0; p < n; ++p) first.push_back(grid.runs(p).front());
  std::vector<std::string> shapes;
  try {
    shapes = check_points(first, options.jobs);
  } catch (const PointInputError& e) {
    throw grid_error(grid, e.index(), first[e.index()].seed, e);
  }
  for (std::size_t p = 1; p < n; ++p) {
    if (shapes[p] != shapes[0]) {
      throw InputError(grid.file + ": point " + std::to_string(p) + " (" + grid.describe(p) + ") is " + shapes[p] +
                       " but point 0 (" + grid.describe(0) + ") is " + shapes[0] +
                       ": the points of a sweep must report the same metrics");
    }
  }

  // The shard's runs, point-major.
  std::vector<std::size_t> points;
  std::vector<PointSpec> specs;
  for (std::size_t p = 0; p < n; ++p) {
    if (options.shard && !in_shard(p, *options.shard)) continue;
    points.push_back(p);
    for (PointSpec& s : grid.runs(p)) specs.push_back(std::move(s));
  }
  const std::size_t k = grid.runs_per_point();
  std::vector<PointResult> results;
  try {
    results = run_points(specs, options.jobs, options.progress);
  } catch (const PointInputError& e) {
    throw grid_error(grid, points[e.index() / k], specs[e.index()].seed, e);
  }

  SweepOutput out;
  out.points = points.size();
  out.runs = specs.size();
  out.threads = pool_threads(options.jobs, specs.size());
  if (options.shard) out.csv = part_line(grid, *options.shard);
  if (points.empty()) return out;  // a shard beyond the points: the part line alone
  const auto& names = results.front().metrics;
  out.csv += "point";
  for (const std::string& c : grid.columns) out.csv += "," + csv_field(c);
  out.csv += ",seeds";
  for (const auto& [name, v] : names) out.csv += "," + csv_field(name) + "," + csv_field(name + "_ci95");
  out.csv += "\n";
  for (std::size_t i = 0; i < points.size(); ++i) {
    std::string row = std::to_string(points[i]);
    for (std::size_t c = 0; c < grid.columns.size(); ++c) row += "," + csv_field(grid.cell(points[i], c));
    row += "," + std::to_string(k);
    for (std::size_t m = 0; m < names.size(); ++m) {
      std::vector<double> values;
      for (std::size_t s = 0; s < k; ++s) {
        const auto& metrics = results[i * k + s].metrics;
        if (metrics.size() != names.size() || metrics[m].first != names[m].first) {
          throw std::logic_error("sweep: point " + std::to_string(points[i]) + " reports other metrics than point " +
                                 std::to_string(points[0]));
        }
        values.push_back(metrics[m].second);
      }
      const MeanCi ci = mean_ci95(values);
      row += "," + csv_number(ci.mean) + "," + (ci.half_width ? csv_number(*ci.half_width) : std::string());
    }
    out.csv += row + "\n";
  }
  return out;
}

}  // namespace servesim
