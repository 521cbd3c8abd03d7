// Workload: where requests come from. An ArrivalProcess gives arrival times (a trace also gives lengths, and a
// Mooncake trace or the conversation generator the requests' content, for prefix caching); a LengthDistribution
// gives prompt and output token counts. Both are registered by name:
//   [workload.arrival]        impl = "poisson" (rate) | "gamma" (rate, cv)
//                                  | "trace" (path, format = azure | csv | mooncake, time_scale or rate,
//                                    hash_block_size: mooncake's tokens per hash id, default 512)
//                                  | "measured" (path: a measured run, JSONL or vLLM bench JSON; time_scale or rate)
//                                  | "conversations" (shared system prompts and multi-turn conversations:
//                                    sim/workload/conversations.cpp lists its parameters)
//   [workload.prompt_tokens]  impl = "fixed" (value) | "uniform" (min, max) | "lognormal" (mean, std, min, max)
//   [workload.output_tokens]         | "trace" (the arrival trace's own column, or sampled from `path`)
// Trace replay at a target rate: `rate = X` (requests/s) rescales the replayed arrival times so that the mean gap
// between consecutive replayed arrivals is 1/X (time_scale = (n - 1) / (X x (t_n - t_1)) over the n replayed
// arrivals); given with time_scale it is an InputError.
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
  std::shared_ptr<const Content> content = nullptr;  // Request::content, when the process knows it
};

// Resolves relative paths in a scenario against the scenario's directory.
struct PathResolver {
  std::filesystem::path base;
  [[nodiscard]] std::string resolve(const std::string& p) const;
  // The path at `key` of `c`, resolved against the folder of the file the value came from (Config::path_value):
  // the scenario's (`base`), a merged calibration file's, or the working directory for a --set value.
  [[nodiscard]] std::string resolve(const Config& c, const std::string& key) const;
};

class ArrivalProcess {
 public:
  virtual ~ArrivalProcess() = default;
  // The next arrival (times never decrease), or nothing when the process is exhausted.
  [[nodiscard]] virtual std::optional<Arrival> next(RandomEngine& rng) = 0;
  // How many arrivals the process can give (0 = unbounded).
  [[nodiscard]] virtual std::int64_t available() const { return 0; }
  // Whether every arrival carries its prompt and output lengths (a trace; the conversation generator).
  [[nodiscard]] virtual bool gives_lengths() const { return available() > 0; }
  // Called once before the first next(): the scenario seed (for processes with random streams of their own) and
  // the number of requests the run draws. Throws InputError naming the process's key when they do not fit it.
  virtual void start(std::uint64_t /*seed*/, std::int64_t /*num_requests*/) {}
};

// Trace replay at a target rate (`rate` of table `c`): the factor on arrival times that makes the mean gap between
// the n replayed arrivals, the first at `first_s` and the last at `last_s`, 1 / rate. Throws InputError at `rate`
// when n < 2 or the arrivals span no time, or when the rescaled last arrival passes kMaxSimSeconds.
[[nodiscard]] double scale_for_rate(const Config& c, double rate, std::int64_t n, double first_s, double last_s);

// Arrival times are at most kMaxSimSeconds (models/common/units.h): a trace or measured run whose (scaled) span
// is longer fails at load naming its key; a synthetic process whose draws pass it (a rate too low for
// num_requests) fails when the arrival is drawn, naming [workload.arrival].

enum class LengthKind { prompt, output };

class LengthDistribution {
 public:
  virtual ~LengthDistribution() = default;
  [[nodiscard]] virtual std::int64_t sample(RandomEngine& rng, const Arrival& a) = 0;
  // The fewest tokens sample() can give, where the distribution's parameters say (fixed: value; uniform and
  // lognormal: min); nothing for lengths taken from a trace.
  [[nodiscard]] virtual std::optional<std::int64_t> min_tokens() const { return std::nullopt; }
};
// Every length parameter (fixed value, uniform min/max, lognormal mean/std/min/max) and every trace length is at
// most kMaxTokensPerRequest (1e7 tokens); past it is an InputError naming the key or file:line.

using ArrivalRegistry = Registry<ArrivalProcess, const Config&, const PathResolver&>;
using LengthRegistry = Registry<LengthDistribution, const Config&, const PathResolver&, LengthKind>;
[[nodiscard]] const ArrivalRegistry& arrival_registry();
[[nodiscard]] const LengthRegistry& length_registry();
// Replay of a measured run's arrivals and lengths (impl = "measured", path = FILE).
[[nodiscard]] std::unique_ptr<ArrivalProcess> make_measured_arrival(const Config& c, const PathResolver& paths);
// Shared system prompts and multi-turn conversations (impl = "conversations"; sim/workload/conversations.cpp).
[[nodiscard]] std::unique_ptr<ArrivalProcess> make_conversation_arrival(const Config& c, const PathResolver& paths);

class WorkloadSource {
 public:
  // Reads [workload]; throws InputError on bad input. num_requests is at most kMaxRequestsPerRun (1e8), and
  // max_prompt_tokens at most kMaxTokensPerRequest. next() throws InputError when an arrival passes
  // kMaxSimSeconds.
  WorkloadSource(const Config& workload, const PathResolver& paths, std::uint64_t seed);
  [[nodiscard]] std::optional<Request> next();
  [[nodiscard]] std::int64_t num_requests() const { return num_requests_; }
  // The fewest prompt tokens any request can have (after max_prompt_tokens), where the distribution says.
  [[nodiscard]] std::optional<std::int64_t> min_prompt_tokens() const;
  // The fewest output tokens any request can have, where the distribution says.
  [[nodiscard]] std::optional<std::int64_t> min_output_tokens() const { return output_->min_tokens(); }
  // "file:line: workload.prompt_tokens", for messages about the prompt lengths.
  [[nodiscard]] const std::string& prompt_where() const { return prompt_where_; }

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
  std::string arrival_where_;  // "file:line: workload.arrival"
  std::string prompt_where_;
};

}  // namespace servesim
