// A scenario: the TOML file (plus --set overrides) turned into the cost model and the components of one
// simulation - the composition root that the CLI (and sweep / plan engines) call. Tables mirror the component
// tree:
//   [model] config            [hardware] gpu, profile      [parallel] tensor_parallel_size, ...
//   [engine] vLLM's names     [engine.scheduler] impl      [engine.overhead] [engine.front_end]
//   [cluster] replicas, or [[cluster.pools]] (sim/scenario/pools.h); [cluster.admission] (sim/cluster/admission.h)
//   [router] impl             [workload] ...               [sim] seed, horizon, network_contention
// Every key is read through Config; unknown keys are rejected after the build, before anything runs.
// Paths: a path inside the scenario (or a calibration file) is relative to that file's folder; a --set value or
// --calibration file is relative to the working directory. [model] config and [parallel] topology also take a
// catalog name, with or without its extension (".json", ".toml").
// Limits (models/common/units.h): [sim] horizon in (0, 1e7 s]; max_model_len, max_num_batched_tokens and every
// length at most 1e7 tokens; num_requests at most 1e8; (placement.h) replicas at most 4096 in all and each of
// [parallel] tensor_parallel_size, pipeline_parallel_size, expert_parallel_size at most 65536. A workload whose
// shortest possible request (the length distributions' minimum prompt + output) is longer than max_model_len is
// refused: every request would be rejected.
// A top-level `calibration = ["fit.toml", ...]` (paths relative to the scenario) and --calibration files are
// merged over the scenario's tables (a fitted [engine.overhead] and [engine.jitter] from `servesim calibrate
// trace`), then --set applies.
//
// The loader's parts, each in its own file: hardware.h ([model], [hardware]), pools.h ([cluster]), placement.h
// (parallel sizes, topology, GPUs of each replica), engine_setup.h ([engine], KV sizing), workload_setup.h
// ([workload]). Catalog files are read once per process (catalogs.h).
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
#include "models/net/topology.h"
#include "sim/cluster/admission.h"
#include "sim/engine/engine.h"
#include "sim/engine/kv_cache.h"
#include "sim/engine/scheduler.h"
#include "sim/scenario/pool.h"
#include "sim/workload/workload.h"

namespace servesim {

struct ScenarioOptions {
  // --calibration FIT.toml, in order: merged over the scenario (after the scenario's own `calibration` files,
  // before the sets).
  std::vector<std::string> calibrations;
  std::vector<std::pair<std::string, std::string>> sets;  // --set path=VALUE, in order
  std::optional<std::uint64_t> seed;
  // Whether a scenario with more than one pool, or with prefill and decode pools, may load: set by a caller that
  // simulates every pool (servesim run). Without it such a scenario is refused with one line at cluster.pools, so
  // that no command that reads pool 0's fields alone silently ignores the other pools. A single aggregated
  // [[cluster.pools]] entry always loads.
  bool allow_pools = false;
};

// Where the catalogs live (scenarios/hardware, scenarios/models, scenarios/topologies): $SERVESIM_HOME, else the
// first folder up from `scenario_dir` (the working directory when empty), else up from the executable, that has
// scenarios/hardware/gpus.toml. Throws InputError when none has.
[[nodiscard]] std::filesystem::path find_data_root(const std::filesystem::path& scenario_dir);

struct Scenario {
  std::string file;
  PathResolver paths;
  std::filesystem::path data_root;
  std::uint64_t seed = 0;
  Ns horizon = kNever;
  // [sim] network_contention: replicas whose communication crosses nodes put it on the shared flow-level network
  // when something else uses that network (sim/cluster/step_network.h); false leaves their steps to the step model
  // alone (KV transfers still share the network among themselves).
  bool network_contention = true;
  // Pool 0's (the only pool of a scenario without [[cluster.pools]]), as before pools existed:
  ModelArch arch;
  GpuSpec gpu;
  ParallelConfig parallel;
  ExpertRouting routing;  // MoE models: how tokens pick experts ([model] expert_routing); empty = uniform (all pools)
  KvCacheSizing kv;
  EngineConfig replica;
  std::shared_ptr<const StepModel> step_model;                // replica 0's (all replicas' KV sizing)
  std::vector<std::shared_ptr<const StepModel>> step_models;  // per replica: each on its own GPUs
  std::string predictor_impl;
  std::string scheduler_impl;
  std::string router_impl;  // [router] impl (the router of aggregated and prefill pools)
  std::int64_t num_replicas = 1;
  double gpu_memory_utilization = 0.9;
  std::string kv_cache_dtype = "auto";  // [engine] kv_cache_dtype as given
  std::string topology;                 // [parallel] topology as given ("" without one)
  std::shared_ptr<const Topology> topo;  // the [parallel] topology (null without one)
  // The pools, in the order of [[cluster.pools]]; one aggregated pool (equal to the fields above) for a scenario
  // without them.
  std::vector<PoolSpec> pools;
  bool has_pools = false;                      // [[cluster.pools]] given
  KvTransferSpec kv_transfer;                  // [cluster.kv_transfer] (prefill/decode pools only)
  std::string decode_router = "least_loaded";  // [cluster] decode_router (prefill/decode pools only)
  AdmissionLimits admission;                   // [cluster.admission] (sim/cluster/admission.h)

  // Whether the cluster splits prefill and decode (has a decode pool).
  [[nodiscard]] bool disaggregated() const;
  // Upper bound on output tokens/s of the whole cluster: every token costs at least 2 FLOPs per parameter (summed
  // over the pools' GPUs).
  [[nodiscard]] double output_throughput_bound() const;
};

// Loads and checks everything except the workload (which `make_workload` builds from the same document).
class ScenarioLoader {
 public:
  // Reads the scenario at `path` and every file it names; throws InputError (one line naming file:line or the
  // key) for anything wrong, before anything runs.
  ScenarioLoader(const std::string& path, const ScenarioOptions& opts);
  [[nodiscard]] const Scenario& scenario() const { return scenario_; }
  // A fresh workload source: the first call hands over the one built (and checked) by the constructor, so a
  // trace file is read once per run; later calls build another from the same document.
  [[nodiscard]] std::unique_ptr<WorkloadSource> make_workload() const;
  // A scheduler for one engine of pool 0 (of pool `pool`), with the pool's limits.
  [[nodiscard]] std::unique_ptr<Scheduler> make_scheduler() const { return make_scheduler(0); }
  [[nodiscard]] std::unique_ptr<Scheduler> make_scheduler(std::size_t pool) const;
  [[nodiscard]] const Config& config() const { return cfg_; }
  // The options it was loaded with (--calibration, --set, --seed).
  [[nodiscard]] const ScenarioOptions& options() const { return opts_; }
  // Rejects unknown keys; call after every component has read its table.
  void check() const { cfg_.check_unknown(); }

 private:
  // The document's parts before the model: calibration files, --set, the data root, [sim] seed and horizon.
  void read_document(const std::string& path);

  Config cfg_;
  ScenarioOptions opts_;
  Scenario scenario_;
  std::vector<Config> schedulers_;  // per pool: the [engine.scheduler] table it reads
  mutable std::unique_ptr<WorkloadSource> built_workload_;  // built and checked by the constructor, not yet used
};

}  // namespace servesim
