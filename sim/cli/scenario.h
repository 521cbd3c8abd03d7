// A scenario: the TOML file (plus --set overrides) turned into the cost model and the components of one
// simulation. Tables mirror the component tree:
//   [model] config            [hardware] gpu, profile      [parallel] tensor_parallel_size, ...
//   [engine] vLLM's names     [engine.scheduler] impl      [engine.overhead] [engine.front_end]
//   [cluster] replicas        [router] impl                [workload] ...                [sim] seed, horizon
// Every key is read through Config; unknown keys are rejected after the build, before anything runs.
// Paths: a path inside the scenario (or a calibration file) is relative to that file's folder; a --set value or
// --calibration file is relative to the working directory. [model] config and [parallel] topology also take a
// catalog name, with or without its extension (".json", ".toml").
// Limits (models/common/units.h): [sim] horizon in (0, 1e7 s]; max_model_len, max_num_batched_tokens and every
// length at most 1e7 tokens; num_requests at most 1e8; (scenario.cpp) [cluster] replicas at most 4096 and each of
// [parallel] tensor_parallel_size, pipeline_parallel_size, expert_parallel_size at most 65536. A workload whose
// shortest possible request (the length distributions' minimum prompt + output) is longer than max_model_len is
// refused: every request would be rejected.
// A top-level `calibration = ["fit.toml", ...]` (paths relative to the scenario) and --calibration files are
// merged over the scenario's tables (a fitted [engine.overhead] and [engine.jitter] from `servesim calibrate
// trace`), then --set applies.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/common/config.h"
#include "models/cost/step_model.h"
#include "sim/engine/kv_cache.h"
#include "sim/engine/engine.h"
#include "sim/workload/workload.h"

namespace servesim {

struct ScenarioOptions {
  // --calibration FIT.toml, in order: merged over the scenario (after the scenario's own `calibration` files,
  // before the sets).
  std::vector<std::string> calibrations;
  std::vector<std::pair<std::string, std::string>> sets;  // --set path=VALUE, in order
  std::optional<std::uint64_t> seed;
};

// Where the catalogs live (scenarios/hardware, scenarios/models, scenarios/topologies).
[[nodiscard]] std::filesystem::path find_data_root(const std::filesystem::path& scenario_dir);

struct Scenario {
  std::string file;
  PathResolver paths;
  std::filesystem::path data_root;
  std::uint64_t seed = 0;
  Ns horizon = kNever;
  ModelArch arch;
  GpuSpec gpu;
  ParallelConfig parallel;
  ExpertRouting routing;  // MoE models: how tokens pick experts ([model] expert_routing); empty = uniform
  KvCacheSizing kv;
  EngineConfig replica;
  std::shared_ptr<const StepModel> step_model;                // replica 0's (all replicas' KV sizing)
  std::vector<std::shared_ptr<const StepModel>> step_models;  // per replica: each on its own GPUs
  std::string predictor_impl;
  std::string scheduler_impl;
  std::string router_impl;
  std::int64_t num_replicas = 1;
  double gpu_memory_utilization = 0.9;
  std::string kv_cache_dtype = "auto";  // [engine] kv_cache_dtype as given
  std::string topology;                 // [parallel] topology as given ("" without one)

  // Upper bound on output tokens/s of the whole cluster: every token costs at least 2 FLOPs per parameter.
  [[nodiscard]] double output_throughput_bound() const;
};

// Loads and checks everything except the workload (which `make_workload` builds from the same document).
class ScenarioLoader {
 public:
  ScenarioLoader(const std::string& path, const ScenarioOptions& opts);
  [[nodiscard]] const Scenario& scenario() const { return scenario_; }
  // A fresh workload source: the first call hands over the one built (and checked) by the constructor, so a
  // trace file is read once per run; later calls build another from the same document.
  [[nodiscard]] std::unique_ptr<WorkloadSource> make_workload() const;
  [[nodiscard]] std::unique_ptr<Scheduler> make_scheduler() const;
  [[nodiscard]] const Config& config() const { return cfg_; }
  // The options it was loaded with (--calibration, --set, --seed).
  [[nodiscard]] const ScenarioOptions& options() const { return opts_; }
  // Rejects unknown keys; call after every component has read its table.
  void check() const { cfg_.check_unknown(); }

 private:
  Config cfg_;
  ScenarioOptions opts_;
  Scenario scenario_;
  mutable std::unique_ptr<WorkloadSource> built_workload_;  // built and checked by the constructor, not yet used
};

}  // namespace servesim
