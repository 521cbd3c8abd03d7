// Running many independent simulations of one or more scenarios in parallel: the engine of `servesim sweep` (and
// of `servesim plan`), usable without writing any file.
//
//   std::vector<PointSpec> specs = {{"scenarios/quickstart.toml", {{"workload.arrival.rate", "5.0"}}, 1}, ...};
//   std::vector<std::string> shapes = check_points(specs, jobs);        // every scenario loads, before any run
//   std::vector<PointResult> results = run_points(specs, jobs, progress); // results[i] belongs to specs[i]
//   double p99 = results[0].metric("p99_ttft_ms");
//
// Each run is one ScenarioLoader + run_scenario (sim/cli/run.h) on a thread of a Boost.Asio thread_pool: runs share
// nothing but the process's catalogs (sim/scenario/catalogs.h, thread-safe) and the const policy registries, so
// the results do not depend on `jobs` or on the order in which runs finish.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "sim/scenario/scenario.h"

namespace servesim {

// One simulation: a scenario file, its --set overrides (path, TOML value text; applied in order) and the seed
// (nullopt: the scenario's [sim] seed). Scenarios with several pools or prefill/decode pools are allowed (as in
// `servesim run`).
struct PointSpec {
  std::string scenario;
  std::vector<std::pair<std::string, std::string>> sets;
  std::optional<std::uint64_t> seed;
};

// The loader options of a spec (sets, seed, allow_pools).
[[nodiscard]] ScenarioOptions scenario_options(const PointSpec& spec);

// A run's metrics: every number of its summary.json, flattened (flatten_summary), in summary.json's order.
struct PointResult {
  std::vector<std::pair<std::string, double>> metrics;
  // The metric `name` (e.g. "p99_ttft_ms", "p99_tpot_ms", "output_throughput", "completed", "rejected");
  // std::out_of_range naming it when the run has no such metric.
  [[nodiscard]] double metric(std::string_view name) const;
};

// summary.json (sim/metrics/summary.h) as (name, value) pairs, in the document's order:
//   - vLLM's top-level keys as they are: "completed", "output_throughput", "p99_ttft_ms", ...
//   - servesim's own ("servesim": {...}) without the prefix: "rejected", "mean_queue_ms", "busy_fraction", ...
//   - nested objects joined with '_': "time_share_compute", "disaggregation_kv_transfer_ms_p99";
//     arrays of objects by their "name": "disaggregation_pools_decode_busy_fraction" (else by index);
//   - "rejected_by_reason_<reason>" for every reason (sim/metrics/sink.h) even without rejections (0), so that
//     every run of a scenario has the same names;
//   - booleans, strings and nulls are left out, and so are "config" and "run" (what ran, not what came out).
// Two numbers of one name throw std::logic_error.
[[nodiscard]] std::vector<std::pair<std::string, double>> flatten_summary(const nlohmann::ordered_json& summary);

// Loads spec's scenario and runs it (InputError: the loader's, or the run's, e.g. every request rejected).
[[nodiscard]] PointResult run_point(const PointSpec& spec);

// An InputError of specs[index()] from check_points or run_points: the spec's own error (same message and place).
class PointInputError : public InputError {
 public:
  PointInputError(std::size_t index, const InputError& cause) : InputError(cause), index_(index) {}
  [[nodiscard]] std::size_t index() const noexcept { return index_; }

 private:
  std::size_t index_;
};

// Called after each finished run with (runs done, runs in all); from the pool's threads, one call at a time,
// `done` increasing by one each call.
using ProgressFn = std::function<void(std::size_t done, std::size_t total)>;

// The number of threads for `jobs` (0 or less: the hardware's concurrency, at least 1) and `tasks` tasks: never
// more threads than tasks.
[[nodiscard]] int pool_threads(int jobs, std::size_t tasks);

// Loads every spec's scenario (ScenarioLoader: every key checked) without running it, on pool_threads(jobs)
// threads. Returns each spec's shape: a text that is equal for two specs whose summaries have the same metric
// names (the pools of prefill/decode scenarios, by name). Throws the PointInputError of the lowest failing index.
[[nodiscard]] std::vector<std::string> check_points(const std::vector<PointSpec>& specs, int jobs);

// Runs every spec on pool_threads(jobs) threads; results in the order of `specs`, whatever the order in which
// the runs finish. On an InputError, runs after the failing one are skipped (those before it still run), and the
// PointInputError of the lowest failing index is thrown once the pool is idle; any other exception of that run
// is rethrown as it is.
[[nodiscard]] std::vector<PointResult> run_points(const std::vector<PointSpec>& specs, int jobs,
                                                  const ProgressFn& progress = {});

}  // namespace servesim
