#include "sim/scenario/scenario.h"

#include <algorithm>
#include <cstdlib>

#include "models/common/error.h"
#include "models/common/input_file.h"
#include "sim/cluster/router.h"
#include "sim/scenario/hardware.h"
#include "sim/scenario/placement.h"
#include "sim/scenario/pools.h"
#include "sim/scenario/workload_setup.h"

namespace servesim {
namespace {

bool is_data_root(const std::filesystem::path& p) {
  return std::filesystem::exists(p / "scenarios" / "hardware" / "gpus.toml");
}

// The pools as one line: "prefill (prefill, 1 replica), decode (decode, 1 replica)".
std::string pools_text(const std::vector<PoolSpec>& pools) {
  std::string s;
  for (const auto& p : pools) {
    s += (s.empty() ? "" : ", ") + p.name + " (" + std::string(to_string(p.role)) + ", " +
         std::to_string(p.num_replicas) + (p.num_replicas == 1 ? " replica)" : " replicas)");
  }
  return s;
}

}  // namespace

std::filesystem::path find_data_root(const std::filesystem::path& scenario_dir) {
  if (const char* env = std::getenv("SERVESIM_HOME"); env != nullptr && is_data_root(env)) return env;
  // A scenario given as a bare file name has an empty directory: the current one.
  const std::filesystem::path start = scenario_dir.empty() ? std::filesystem::current_path() : scenario_dir;
  for (auto p = std::filesystem::absolute(start); !p.empty(); p = p.parent_path()) {
    if (is_data_root(p)) return p;
    if (p == p.parent_path()) break;
  }
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto p = exe.parent_path(); !p.empty(); p = p.parent_path()) {
      if (is_data_root(p)) return p;
      if (p == p.parent_path()) break;
    }
  }
  throw InputError("cannot find the catalogs (scenarios/hardware/gpus.toml); set SERVESIM_HOME to the servesim "
                   "source directory");
}

bool Scenario::disaggregated() const {
  return std::any_of(pools.begin(), pools.end(), [](const PoolSpec& p) { return p.role == PoolRole::decode; });
}

double Scenario::output_throughput_bound() const {
  if (pools.empty()) {
    return double(num_replicas) * double(parallel.gpus()) * gpu.bf16_peak.v / (2.0 * arch.active_params());
  }
  double bound = 0.0;
  for (const auto& p : pools) {
    bound += double(p.num_replicas) * double(p.parallel.gpus()) * p.gpu.bf16_peak.v / (2.0 * p.arch.active_params());
  }
  return bound;
}

void ScenarioLoader::read_document(const std::string& path) {
  Scenario& s = scenario_;
  s.file = path;
  s.paths.base = std::filesystem::path(path).parent_path();
  // Calibration files: the scenario's own (a path or a list of paths, relative to the scenario), then the
  // command line's; then --set.
  std::vector<std::string> calibrations;
  if (cfg_.has("calibration")) {
    const std::vector<std::string> listed =
        cfg_.is_array("calibration") ? cfg_.str_list("calibration") : std::vector<std::string>{cfg_.str("calibration")};
    for (const auto& f : listed) {
      // Relative to the scenario's folder; a --set calibration is refused below (use --calibration).
      const std::string resolved = s.paths.resolve(f);
      try {
        check_input_file(resolved, "calibration file", kMaxDocumentBytes);
      } catch (const InputError& e) {
        cfg_.fail("calibration", e.what());
      }
      calibrations.push_back(resolved);
    }
  }
  for (const auto& f : opts_.calibrations) {
    try {
      check_input_file(f, "calibration file", kMaxDocumentBytes);
    } catch (const InputError& e) {
      throw InputError(std::string("--calibration: ") + e.what());
    }
    calibrations.push_back(f);
  }
  for (const auto& f : calibrations) {
    if (Config::from_file(f).has("calibration")) {
      throw InputError(f + ": a calibration file cannot name further calibration files ('calibration' key)");
    }
    cfg_.merge_file(f);
  }
  for (const auto& [k, v] : opts_.sets) {
    if (k == "calibration") throw InputError("--set calibration: use --calibration FILE (repeatable)");
    cfg_.set(k, v);
  }
  s.data_root = find_data_root(s.paths.base);

  const Config sim = cfg_.table_or_empty("sim");
  const auto file_seed = static_cast<std::uint64_t>(sim.non_negative_int_or("seed", 0));
  s.seed = opts_.seed ? *opts_.seed : file_seed;
  if (sim.has("horizon")) {
    const Seconds h = sim.duration("horizon");
    if (!(h.v > 0)) {
      sim.fail("horizon", "must be > 0 (a horizon of 0 s runs nothing; leave it out to run every request)");
    }
    s.horizon = to_ns(h);
  }
  s.network_contention = sim.boolean_or("network_contention", true);
}

ScenarioLoader::ScenarioLoader(const std::string& path, const ScenarioOptions& opts)
    : cfg_([&] {
        check_input_file(path, "scenario", kMaxDocumentBytes);
        return Config::from_file(path);
      }()),
      opts_(opts) {
  read_document(path);
  Scenario& s = scenario_;

  // Hardware: [model], [hardware].
  const ModelSetup model = read_model(cfg_.table("model"), s.paths, s.data_root);
  s.routing = model.routing;
  const Config hw_table = cfg_.table("hardware");
  const HardwareSetup hw = read_hardware(hw_table, s.paths, s.data_root);

  // [cluster]: read first, as the replicas' GPU placement depends on their number; then each pool's GPU.
  const Config cl = cfg_.table_or_empty("cluster");
  const Config par = cfg_.table_or_empty("parallel");
  const Config eng = cfg_.table_or_empty("engine");
  const ClusterSetup cluster = read_cluster(cl, par, eng, s.paths);
  std::vector<PoolGpu> gpus;
  for (const PoolDecl& d : cluster.pools) {
    gpus.push_back(d.gpu && *d.gpu != hw.gpu.name ? pool_gpu(hw, *d.gpu, d.table, "gpu")
                                                  : PoolGpu{hw.gpu, hw.predictor});
  }

  // Placement: parallel sizes, the topology, the GPUs of every replica.
  std::vector<PlacementInput> inputs;
  for (const PoolDecl& d : cluster.pools) inputs.push_back(placement_input(d));
  Placement placed = place_pools(inputs, par, s.paths, s.data_root, hw.profile);
  s.topology = placed.topology;
  s.topo = placed.topo;

  // Engine: each pool's [engine], step models and KV cache.
  const Config sim = cfg_.table_or_empty("sim");
  for (std::size_t i = 0; i < cluster.pools.size(); ++i) {
    const PoolDecl& d = cluster.pools[i];
    BuiltPool built = build_pool(d, model, gpus[i], hw.predictor_impl, std::move(placed.pools[i]), sim,
                                 d.gpu ? d.table : hw_table, "gpu");
    s.pools.push_back(std::move(built.spec));
    schedulers_.push_back(built.scheduler);
  }
  s.has_pools = cluster.has_pools;
  s.kv_transfer = cluster.kv_transfer;
  s.decode_router = cluster.decode_router;
  const PoolSpec& first = s.pools.front();
  s.arch = first.arch;
  s.gpu = first.gpu;
  s.parallel = first.parallel;
  s.kv = first.kv;
  s.replica = first.engine;
  s.step_models = first.step_models;
  s.step_model = s.step_models.front();
  s.predictor_impl = first.predictor_impl;
  s.scheduler_impl = first.scheduler_impl;
  s.num_replicas = first.num_replicas;
  s.gpu_memory_utilization = first.gpu_memory_utilization;
  s.kv_cache_dtype = first.kv_cache_dtype;

  // [router]
  const Config router = cfg_.table_or_empty("router");
  s.router_impl = router.str_or("impl", "round_robin");
  (void)router_registry().create(s.router_impl, router.key_path("impl"), router);
  s.admission = read_admission(cl.table_or_empty("admission"));

  // Workload: built now too, so that every error surfaces before anything runs; the first run uses it.
  built_workload_ = build_workload(cfg_, s.paths, s.seed);
  check();
  std::int64_t max_model_len = 0;
  for (const auto& p : s.pools) max_model_len = std::max(max_model_len, p.engine.max_model_len);
  check_requests_fit(*built_workload_, max_model_len);

  if (!opts_.allow_pools && (s.pools.size() > 1 || s.disaggregated())) {
    cl.fail("pools", std::to_string(s.pools.size()) + " pools: " + pools_text(s.pools) +
                         "; this command takes one pool only (servesim run simulates several)");
  }
}

std::unique_ptr<Scheduler> ScenarioLoader::make_scheduler(std::size_t pool) const {
  const Config& sched = schedulers_.at(pool);
  return scheduler_registry().create(scenario_.pools.at(pool).scheduler_impl, sched.key_path("impl"), sched,
                                     scenario_.pools.at(pool).engine.limits);
}

std::unique_ptr<WorkloadSource> ScenarioLoader::make_workload() const {
  if (built_workload_) return std::move(built_workload_);
  return build_workload(cfg_, scenario_.paths, scenario_.seed);
}

}  // namespace servesim
