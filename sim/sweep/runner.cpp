#include "sim/sweep/runner.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "sim/cli/run.h"
#include "sim/metrics/sink.h"

namespace servesim {

namespace {

void flatten(const nlohmann::ordered_json& j, const std::string& prefix,
             std::vector<std::pair<std::string, double>>& out) {
  const auto name = [&prefix](const std::string& key) { return prefix.empty() ? key : prefix + "_" + key; };
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      if (prefix.empty() && (key == "config" || key == "run")) continue;
      flatten(value, name(key), out);
      // Rejections by reason appear only in runs with rejections: every run gets every reason.
      if (prefix.empty() && key == "rejected" && !j.contains("rejected_by_reason")) {
        for (std::size_t r = 0; r < kNumRejectReasons; ++r) {
          out.emplace_back(name("rejected_by_reason_" + std::string(reject_reason_name(static_cast<RejectReason>(r)))),
                           0.0);
        }
      }
    }
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) {
      const auto& e = j[i];
      const bool named = e.is_object() && e.contains("name") && e["name"].is_string();
      flatten(e, name(named ? e["name"].get<std::string>() : std::to_string(i)), out);
    }
  } else if (j.is_number()) {
    out.emplace_back(prefix, j.get<double>());
  }
}

// Runs task(i) for i in [0, n) on pool_threads(jobs, n) threads, then calls `done` (under a mutex). A task that
// throws stops the tasks after it (by index) from starting, while those before it still run; once the pool is
// idle, the exception of the lowest index is rethrown: an InputError as a PointInputError of that index.
void for_each_index(std::size_t n, int jobs, const std::function<void(std::size_t)>& task,
                    const std::function<void()>& done) {
  constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  std::atomic<std::size_t> first_failed{kNone};
  std::vector<std::exception_ptr> errors(n);
  std::mutex done_mutex;
  boost::asio::thread_pool pool(static_cast<std::size_t>(pool_threads(jobs, n)));
  for (std::size_t i = 0; i < n; ++i) {
    boost::asio::post(pool, [&, i] {
      if (i > first_failed.load()) return;
      try {
        task(i);
      } catch (...) {
        errors[i] = std::current_exception();
        std::size_t seen = first_failed.load();
        while (i < seen && !first_failed.compare_exchange_weak(seen, i)) {
        }
        return;
      }
      if (done) {
        const std::lock_guard<std::mutex> lock(done_mutex);
        done();
      }
    });
  }
  pool.join();
  const std::size_t f = first_failed.load();
  if (f == kNone) return;
  try {
    std::rethrow_exception(errors[f]);
  } catch (const PointInputError&) {
    throw;
  } catch (const InputError& e) {
    throw PointInputError(f, e);
  }
}

}  // namespace

ScenarioOptions scenario_options(const PointSpec& spec) {
  ScenarioOptions o;
  o.sets = spec.sets;
  o.seed = spec.seed;
  o.allow_pools = true;
  return o;
}

double PointResult::metric(std::string_view name) const {
  for (const auto& [n, v] : metrics) {
    if (n == name) return v;
  }
  throw std::out_of_range("no metric '" + std::string(name) + "' in the run's summary");
}

std::vector<std::pair<std::string, double>> flatten_summary(const nlohmann::ordered_json& summary) {
  std::vector<std::pair<std::string, double>> out;
  nlohmann::ordered_json top = summary;
  // servesim's own keys join vLLM's at the top level.
  nlohmann::ordered_json own;
  if (top.contains("servesim")) {
    own = top["servesim"];
    top.erase("servesim");
  }
  flatten(top, "", out);
  flatten(own, "", out);
  std::vector<std::string> names;
  for (const auto& [n, v] : out) names.push_back(n);
  std::sort(names.begin(), names.end());
  if (const auto dup = std::adjacent_find(names.begin(), names.end()); dup != names.end()) {
    throw std::logic_error("flatten_summary: two metrics named '" + *dup + "'");
  }
  return out;
}

PointResult run_point(const PointSpec& spec) {
  const ScenarioLoader loader(spec.scenario, scenario_options(spec));
  const RunOutput out = run_scenario(loader);
  return PointResult{flatten_summary(out.summary)};
}

int pool_threads(int jobs, std::size_t tasks) {
  std::size_t n = jobs > 0 ? static_cast<std::size_t>(jobs) : std::max(1U, std::thread::hardware_concurrency());
  n = std::min(n, std::max<std::size_t>(tasks, 1));
  return static_cast<int>(n);
}

std::vector<std::string> check_points(const std::vector<PointSpec>& specs, int jobs) {
  std::vector<std::string> shapes(specs.size());
  for_each_index(specs.size(), jobs, [&](std::size_t i) {
    const ScenarioLoader loader(specs[i].scenario, scenario_options(specs[i]));
    const Scenario& sc = loader.scenario();
    std::string shape = sc.disaggregated() ? "prefill/decode pools" : "aggregated";
    if (sc.disaggregated()) {
      for (const PoolSpec& pool : sc.pools) shape += " " + pool.name;
    }
    shapes[i] = std::move(shape);
  }, {});
  return shapes;
}

std::vector<PointResult> run_points(const std::vector<PointSpec>& specs, int jobs, const ProgressFn& progress) {
  std::vector<PointResult> results(specs.size());
  std::size_t done = 0;
  for_each_index(specs.size(), jobs, [&](std::size_t i) { results[i] = run_point(specs[i]); }, [&] {
    ++done;
    if (progress) progress(done, specs.size());
  });
  return results;
}

}  // namespace servesim
