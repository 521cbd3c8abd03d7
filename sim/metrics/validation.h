// Measured vs predicted latency of `servesim validate` over one or more measured runs.
//
// Per run and per metric (vLLM `bench serve` names: mean_ / median_ / p90_ / p99_ x ttft / tpot / itl / e2el,
// suffix _ms; all values in milliseconds): the measured figure, the predicted figure -- the mean over the replays
// of that run, one per seed -- with its spread over seeds (min, max, sample standard deviation), and the signed
// relative error 100 x (predicted - measured) / measured in percent (positive: the simulator predicts too high).
// A figure that does not exist (no request with two tokens has no TPOT; a measured 0 ms has no relative error)
// stays empty and prints as null / "n/a": nothing is made up.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/metrics/compare.h"

namespace servesim {

// --seeds is at most this: each seed is a full replay of every measured run.
inline constexpr std::int64_t kMaxValidationSeeds = 1000;
// --seeds when not given (with step jitter on; without it a replay is deterministic and runs once).
inline constexpr std::int64_t kDefaultValidationSeeds = 5;

// The seeds of the replays: base, base + 1, ..., base + n - 1 (unsigned, wrapping past 2^64 - 1).
// Throws InputError unless 1 <= n <= kMaxValidationSeeds.
[[nodiscard]] std::vector<std::uint64_t> validation_seeds(std::uint64_t base, std::int64_t n);

// "mean_ttft_ms", "median_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", then the same for tpot, itl and e2el.
[[nodiscard]] const std::vector<std::string>& validation_metric_names();

struct MetricComparison {
  std::optional<double> measured;   // ms; empty when the measured run has no such value
  std::optional<double> predicted;  // ms, mean over seeds; empty when a replay has no such value
  double predicted_min = 0;         // ms, over seeds (= predicted with one seed)
  double predicted_max = 0;         // ms
  double predicted_std = 0;         // ms, sample standard deviation over seeds (0 with one seed)
  std::optional<double> error_pct;  // %, 100 (predicted - measured) / measured; empty when either is empty or
                                    // measured is 0
};

struct RunValidation {
  std::string measured_path;     // as given on the command line
  std::size_t requests = 0;      // requests read from the measured run
  std::int64_t completed = 0;    // requests the replay completed, the fewest over seeds
  std::vector<std::pair<std::string, MetricComparison>> metrics;  // in validation_metric_names() order
};

// One run's comparison: `predicted` holds one replay's statistics per seed (at least one).
[[nodiscard]] RunValidation compare_run(std::string measured_path, std::size_t requests, std::int64_t completed,
                                        const MetricStats& measured, const std::vector<MetricStats>& predicted);

// Per metric, the run with the largest |error_pct| (metrics with no error in any run are left out).
struct WorstError {
  std::string metric;         // vLLM name
  double error_pct = 0;       // %, signed
  std::size_t run = 0;        // index into the runs
};
[[nodiscard]] std::vector<WorstError> worst_errors(const std::vector<RunValidation>& runs);

// How the predicted figures were obtained, for the outputs.
struct ValidationSetup {
  std::string scenario;              // path as given
  bool jitter = false;               // step jitter on (the replays differ by seed)
  std::vector<std::uint64_t> seeds;  // the replays' seeds (one without jitter)
};

// {"runs": [{"measured": PATH, "requests": N, "completed": C, "metrics": {"mean_ttft_ms": {"measured": x,
//  "predicted": y, "error_pct": z, "predicted_min": a, "predicted_max": b, "predicted_std": s}, ...}}, ...],
//  "worst": {"mean_ttft_ms": {"error_pct": z, "measured": PATH}, ...}, "jitter": bool, "seeds": [...]}
// Missing figures are null.
[[nodiscard]] nlohmann::ordered_json validation_json(const std::vector<RunValidation>& runs,
                                                     const ValidationSetup& setup);

// The human-readable table: a header saying how the predictions were made, one block per run, and the worst
// error across runs when there are several.
[[nodiscard]] std::string validation_table(const std::vector<RunValidation>& runs, const ValidationSetup& setup);

}  // namespace servesim
