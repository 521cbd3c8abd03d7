#include "sim/metrics/validation.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "models/common/error.h"

namespace servesim {
namespace {

struct MetricDef {
  const char* metric;  // key of MetricStats
  const char* stat;    // label in the table
  std::string name;    // vLLM name
  double Stats::*field;
};

const std::vector<MetricDef>& metric_defs() {
  static const std::vector<MetricDef> defs = [] {
    std::vector<MetricDef> d;
    for (const char* m : {"ttft", "tpot", "itl", "e2el"}) {
      d.push_back({m, "mean", fmt::format("mean_{}_ms", m), &Stats::mean});
      d.push_back({m, "p50", fmt::format("median_{}_ms", m), &Stats::median});
      d.push_back({m, "p90", fmt::format("p90_{}_ms", m), &Stats::p90});
      d.push_back({m, "p99", fmt::format("p99_{}_ms", m), &Stats::p99});
    }
    return d;
  }();
  return defs;
}

const MetricDef& def_of(const std::string& name) {
  for (const auto& d : metric_defs()) {
    if (d.name == name) return d;
  }
  throw std::logic_error("validation: unknown metric " + name);
}

// The statistic, or nothing when the run has no value of that metric.
std::optional<double> value_of(const MetricStats& s, const MetricDef& d) {
  const auto it = s.find(d.metric);
  if (it == s.end() || it->second.count == 0) return std::nullopt;
  return it->second.*(d.field);
}

nlohmann::ordered_json or_null(const std::optional<double>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

// A value with 3 decimals (an error in % with 2 decimals and its sign), or "n/a".
std::string cell(const std::optional<double>& v, bool percent = false) {
  if (!v) return "n/a";
  return percent ? fmt::format("{:+.2f}", *v) : fmt::format("{:.3f}", *v);
}

std::string seeds_text(const std::vector<std::uint64_t>& seeds) {
  if (seeds.size() == 1) return fmt::format("seed {}", seeds.front());
  return fmt::format("seeds {}..{}", seeds.front(), seeds.back());
}

}  // namespace

std::vector<std::uint64_t> validation_seeds(std::uint64_t base, std::int64_t n) {
  if (n < 1 || n > kMaxValidationSeeds) {
    throw InputError(fmt::format("--seeds {}: must be between 1 and {} (each seed replays every measured run)", n,
                                 kMaxValidationSeeds));
  }
  std::vector<std::uint64_t> seeds;
  for (std::int64_t i = 0; i < n; ++i) seeds.push_back(base + static_cast<std::uint64_t>(i));
  return seeds;
}

const std::vector<std::string>& validation_metric_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& d : metric_defs()) n.push_back(d.name);
    return n;
  }();
  return names;
}

RunValidation compare_run(std::string measured_path, std::size_t requests, std::int64_t completed,
                          const MetricStats& measured, const std::vector<MetricStats>& predicted) {
  if (predicted.empty()) throw std::logic_error("compare_run: no replay");
  RunValidation r;
  r.measured_path = std::move(measured_path);
  r.requests = requests;
  r.completed = completed;
  for (const auto& d : metric_defs()) {
    MetricComparison c;
    c.measured = value_of(measured, d);
    std::vector<double> p;
    for (const auto& s : predicted) {
      if (const auto v = value_of(s, d)) p.push_back(*v);
    }
    // A figure only some replays have (a replay that completed no request with two tokens) is not averaged.
    if (p.size() == predicted.size()) {
      double sum = 0;
      for (const double v : p) sum += v;
      const double mean = sum / double(p.size());
      double ss = 0;
      for (const double v : p) ss += (v - mean) * (v - mean);
      c.predicted = mean;
      c.predicted_min = *std::min_element(p.begin(), p.end());
      c.predicted_max = *std::max_element(p.begin(), p.end());
      c.predicted_std = p.size() > 1 ? std::sqrt(ss / double(p.size() - 1)) : 0.0;
    }
    if (c.measured && c.predicted && *c.measured != 0) {
      c.error_pct = 100.0 * (*c.predicted - *c.measured) / *c.measured;
    }
    r.metrics.emplace_back(d.name, c);
  }
  return r;
}

std::vector<WorstError> worst_errors(const std::vector<RunValidation>& runs) {
  std::vector<WorstError> out;
  for (std::size_t k = 0; k < metric_defs().size(); ++k) {
    std::optional<WorstError> w;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const auto& [name, c] = runs[i].metrics.at(k);
      if (!c.error_pct) continue;
      if (!w || std::abs(*c.error_pct) > std::abs(w->error_pct)) w = WorstError{name, *c.error_pct, i};
    }
    if (w) out.push_back(*w);
  }
  return out;
}

nlohmann::ordered_json validation_json(const std::vector<RunValidation>& runs, const ValidationSetup& setup) {
  nlohmann::ordered_json j;
  j["runs"] = nlohmann::ordered_json::array();
  for (const auto& r : runs) {
    nlohmann::ordered_json jr;
    jr["measured"] = r.measured_path;
    jr["requests"] = r.requests;
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [name, c] : r.metrics) {
      m[name] = {{"measured", or_null(c.measured)},
                 {"predicted", or_null(c.predicted)},
                 {"error_pct", or_null(c.error_pct)},
                 {"predicted_min", c.predicted ? nlohmann::ordered_json(c.predicted_min) : nullptr},
                 {"predicted_max", c.predicted ? nlohmann::ordered_json(c.predicted_max) : nullptr},
                 {"predicted_std", c.predicted ? nlohmann::ordered_json(c.predicted_std) : nullptr}};
    }
    jr["metrics"] = std::move(m);
    j["runs"].push_back(std::move(jr));
  }
  nlohmann::ordered_json w = nlohmann::ordered_json::object();
  for (const auto& e : worst_errors(runs)) {
    w[e.metric] = {{"error_pct", e.error_pct}, {"measured", runs[e.run].measured_path}};
  }
  j["worst"] = std::move(w);
  j["jitter"] = setup.jitter;
  j["seeds"] = setup.seeds;
  // Requests each run's replays completed (the fewest over seeds; below "requests" only when a horizon cut a
  // replay short), outside the run objects, whose keys are exactly measured, requests and metrics.
  nlohmann::ordered_json completed = nlohmann::ordered_json::array();
  for (const auto& r : runs) completed.push_back(r.completed);
  j["completed"] = std::move(completed);
  return j;
}

std::string validation_table(const std::vector<RunValidation>& runs, const ValidationSetup& setup) {
  const bool spread = setup.seeds.size() > 1;
  std::string t = fmt::format("validate {} against {} measured run{}\n", setup.scenario, runs.size(),
                              runs.size() == 1 ? "" : "s");
  if (setup.jitter) {
    t += fmt::format("step jitter on: predicted = mean of {} replays per run ({}), spread = min..max over seeds\n",
                     setup.seeds.size(), seeds_text(setup.seeds));
  } else {
    t += fmt::format("no step jitter: a replay is deterministic, run once ({})\n", seeds_text(setup.seeds));
  }
  t += "error % = 100 x (predicted - measured) / measured\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    t += fmt::format("\nrun {}: {} ({} requests, {}{} completed in {} replay)\n", i + 1, r.measured_path,
                     r.requests, spread ? "at least " : "", r.completed, spread ? "each" : "the");
    if (r.completed < static_cast<std::int64_t>(r.requests)) {
      t += fmt::format("note: the replay left {} requests unfinished; its statistics cover the completed ones\n",
                       static_cast<std::int64_t>(r.requests) - r.completed);
    }
    t += fmt::format("{:<7}{:<6}{:>13}{:>14}", "metric", "stat", "measured_ms", "predicted_ms");
    if (spread) t += fmt::format("{:>24}", "min..max over seeds");
    t += fmt::format("{:>10}\n", "error %");
    for (const auto& [name, c] : r.metrics) {
      const auto& d = def_of(name);
      t += fmt::format("{:<7}{:<6}{:>13}{:>14}", d.metric, d.stat, cell(c.measured),
                       cell(c.predicted));
      if (spread) {
        t += fmt::format("{:>24}", c.predicted ? fmt::format("{:.3f}..{:.3f}", c.predicted_min, c.predicted_max)
                                               : std::string("n/a"));
      }
      t += fmt::format("{:>10}\n", cell(c.error_pct, true));
    }
  }
  if (runs.size() > 1) {
    t += fmt::format("\nworst error across {} runs\n{:<7}{:<6}{:>10}  {}\n", runs.size(), "metric", "stat",
                     "error %", "run");
    for (const auto& e : worst_errors(runs)) {
      const auto& d = def_of(e.metric);
      t += fmt::format("{:<7}{:<6}{:>+10.2f}  {} ({})\n", d.metric, d.stat, e.error_pct, e.run + 1,
                       runs[e.run].measured_path);
    }
  }
  return t;
}

}  // namespace servesim
