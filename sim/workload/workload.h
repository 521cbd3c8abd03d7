// Workload: where requests come from. An ArrivalProcess gives arrival times (a trace also gives lengths); a
// LengthDistribution gives prompt and output token counts. Both are registered by name:
//   [workload.arrival]        impl = "poisson" (rate) | "gamma" (rate, cv) | "trace" (path, format, time_scale)
//                                  | "measured" (path: a measured run, JSONL or vLLM bench JSON)
//   [workload.prompt_tokens]  impl = "fixed" (value) | "uniform" (min, max) | "lognormal" (mean, std, min, max)
//   [workload.output_tokens]         | "trace" (the arrival trace's own column, or sampled from `path`)
// A WorkloadSource draws requests lazily in arrival order, so a million requests never sit in memory.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "models/common/config.h"
#include "models/common/registry.h"
#include "sim/core/random.h"
#include "sim/workload/request.h"

namespace servesim {

struct Arrival {
  double time_s = 0.0;
  std::optional<std::int64_t> prompt_tokens;  // set by trace replay
  std::optional<std::int64_t> output_tokens;
};

// Resolves relative paths in a scenario against the scenario's directory.
struct PathResolver {
  std::filesystem::path base;
  [[nodiscard]] std::string resolve(const std::string& p) const;
};

class ArrivalProcess {
 public:
  virtual ~ArrivalProcess() = default;
  // The next arrival (times never decrease), or nothing when the process is exhausted.
  [[nodiscard]] virtual std::optional<Arrival> next(RandomEngine& rng) = 0;
  // How many arrivals the process can give (0 = unbounded).
  [[nodiscard]] virtual std::int64_t available() const { return 0; }
};

enum class LengthKind { prompt, output };

class LengthDistribution {
 public:
  virtual ~LengthDistribution() = default;
  [[nodiscard]] virtual std::int64_t sample(RandomEngine& rng, const Arrival& a) = 0;
};

using ArrivalRegistry = Registry<ArrivalProcess, const Config&, const PathResolver&>;
using LengthRegistry = Registry<LengthDistribution, const Config&, const PathResolver&, LengthKind>;
[[nodiscard]] const ArrivalRegistry& arrival_registry();
[[nodiscard]] const LengthRegistry& length_registry();
// Replay of a measured run's arrivals and lengths (impl = "measured", path = FILE).
[[nodiscard]] std::unique_ptr<ArrivalProcess> make_measured_arrival(const Config& c, const PathResolver& paths);

class WorkloadSource {
 public:
  // Reads [workload]; throws InputError on bad input.
  WorkloadSource(const Config& workload, const PathResolver& paths, std::uint64_t seed);
  [[nodiscard]] std::optional<Request> next();
  [[nodiscard]] std::int64_t num_requests() const { return num_requests_; }

 private:
  std::unique_ptr<ArrivalProcess> arrival_;
  std::unique_ptr<LengthDistribution> prompt_;
  std::unique_ptr<LengthDistribution> output_;
  RandomEngine arrival_rng_;
  RandomEngine prompt_rng_;
  RandomEngine output_rng_;
  std::int64_t num_requests_ = 0;
  std::int64_t emitted_ = 0;
  std::int64_t max_prompt_ = 0;
  double last_time_s_ = 0.0;
};

}  // namespace servesim
