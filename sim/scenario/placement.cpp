#include "sim/scenario/placement.h"

#include "models/common/error.h"
#include "models/net/collective_calibration.h"
#include "models/net/collective_model.h"
#include "models/net/topology_comm.h"
#include "sim/scenario/catalogs.h"

namespace servesim {
namespace {

constexpr const char* kParallelLimit = "the limit of GPUs per parallel degree";
// num_redundant_experts: an input bound (vLLM has none), far above any useful count (DeepSeek-V3 serves with 32 on
// 256 experts), so that placing the copies (O(R x E)) stays fast.
constexpr std::int64_t kMaxRedundantExperts = 65536;

std::string join_names(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// tensor / pipeline / expert / data sizes and comm_overlap of one pool.
ParallelConfig read_sizes(const LayeredTable& par) {
  ParallelConfig p;
  p.tensor = par.at("tensor_parallel_size")
                 .positive_int_at_most_or("tensor_parallel_size", 1, kMaxParallelSize, kParallelLimit);
  p.pipeline = par.at("pipeline_parallel_size")
                   .positive_int_at_most_or("pipeline_parallel_size", 1, kMaxParallelSize, kParallelLimit);
  p.overlap = par.at("comm_overlap").non_negative_or("comm_overlap", 0.0);
  if (p.overlap > 1.0) par.fail("comm_overlap", "must be in [0, 1]");
  // Expert parallelism (MoE models): 1, or every GPU of a stage (models/cost/step_model.h, ParallelConfig).
  p.expert = par.at("expert_parallel_size")
                 .positive_int_at_most_or("expert_parallel_size", 1, kMaxParallelSize, kParallelLimit);
  p.data = par.at("data_parallel_size").positive_int_or("data_parallel_size", 1);
  // Expert-parallel load balancing (vLLM --enable-eplb, --eplb-config '{"num_redundant_experts": R}'); the checks
  // that need the model (E + R divisible by expert_parallel_size) are expert_placement's (models/cost/moe_mla_cost.h).
  p.enable_eplb = par.at("enable_eplb").boolean_or("enable_eplb", false);
  p.num_redundant_experts = par.at("num_redundant_experts").non_negative_int_or("num_redundant_experts", 0);
  if (p.num_redundant_experts > kMaxRedundantExperts) {
    par.fail("num_redundant_experts", "must be at most " + std::to_string(kMaxRedundantExperts) +
                                          " (the limit of redundant experts; got " +
                                          std::to_string(p.num_redundant_experts) + ")");
  }
  if (p.num_redundant_experts > 0 && !p.enable_eplb) {
    par.fail("num_redundant_experts", "applies with enable_eplb = true only (redundant experts are part of vLLM's "
                                      "expert-parallel load balancing)");
  }
  if (p.enable_eplb && p.expert <= 1) {
    par.fail("enable_eplb", "needs expert parallelism (expert_parallel_size > 1), as vLLM's --enable-eplb does");
  }
  // vLLM's --all2all-backend (models/cost/moe_all2all.h); it applies with data-parallel attention only.
  p.all2all_backend = par.at("all2all_backend").str_or("all2all_backend", kDefaultAll2AllBackend);
  if (!moe_all2all_registry().contains(p.all2all_backend)) {
    par.fail("all2all_backend", "unknown all2all backend '" + p.all2all_backend +
                                    "' (valid: " + moe_all2all_registry().names() + ")");
  }
  return p;
}

// [parallel] topology: a path (relative to the file that names it, or to the working directory for --set), else
// a catalog name with or without ".toml".
std::shared_ptr<const Topology> read_topology(const Config& par, const PathResolver& paths,
                                              const std::filesystem::path& data_root) {
  namespace fs = std::filesystem;
  const std::string catalog_dir = (data_root / "scenarios/topologies").string();
  std::string topo_name = par.str("topology");
  if (const std::string resolved = paths.resolve(par, "topology"); fs::exists(resolved)) {
    topo_name = resolved;
  } else if (topo_name.size() > 5 && topo_name.ends_with(".toml") && topo_name.find('/') == std::string::npos) {
    topo_name = topo_name.substr(0, topo_name.size() - 5);
  }
  // load_topology's resolution: a path as is, a name in the catalogue.
  const bool is_path =
      topo_name.find('/') != std::string::npos || (topo_name.size() > 5 && topo_name.ends_with(".toml"));
  const fs::path file = is_path ? fs::path(topo_name) : fs::path(catalog_dir) / (topo_name + ".toml");
  std::error_code ec;
  if (fs::symlink_status(file, ec).type() == fs::file_type::not_found) {
    // load_topology says what is missing: a path, with its own message, or a name, listing the catalogue (the
    // key's fault: placed at it).
    try {
      (void)load_topology(topo_name, catalog_dir);
    } catch (const InputError& e) {
      if (is_path) throw;
      par.fail("topology", e.what());
    }
  }
  return catalogs().topology(file.string(), catalog_dir);
}

// The collective settings of one pool and each replica's communication model on its GPUs.
void build_comms(const PlacementInput& in, const std::shared_ptr<const Topology>& topo, const PathResolver& paths,
                 const std::shared_ptr<const CalibrationProfile>& profile, PoolPlacement& pool) {
  const LayeredTable& par = in.parallel;
  const std::string algo = par.at("collective_algo").str_or("collective_algo", "auto");
  const std::string coll_model =
      par.at("collective_model").str_or("collective_model", std::string(kDefaultCollectiveModel));
  const std::string coll_proto = par.at("collective_proto").str_or("collective_proto", "auto");
  if (!collective_model_registry().contains(coll_model)) {
    par.fail("collective_model", "unknown collective cost model '" + coll_model + "' (valid: " +
                                     collective_model_names() + ")");
  }
  std::shared_ptr<const CollectiveCalibration> cal;
  std::string coll_csv;
  if (par.has("collective_profile")) {
    coll_csv = paths.resolve(par.at("collective_profile"), "collective_profile");
    if (!std::filesystem::exists(coll_csv)) par.fail("collective_profile", "file not found: " + coll_csv);
  } else if (profile && std::filesystem::exists(std::filesystem::path(profile->dir) / "collectives.csv")) {
    coll_csv = (std::filesystem::path(profile->dir) / "collectives.csv").string();
  }
  if (!coll_csv.empty()) {
    const CalibratedCollectives cc(topo, read_collectives_csv(coll_csv), algo, coll_model, coll_proto);
    cal = cc.calibration();
  }
  for (const auto& mine : pool.replica_gpus) {
    try {
      pool.comms.push_back(
          std::make_shared<const TopologyComm>(topo, mine, pool.parallel, algo, cal, coll_model, coll_proto));
    } catch (const InputError& e) {
      in.gpus_table.fail("gpus", e.what());
    }
  }
}

}  // namespace

Placement place_pools(const std::vector<PlacementInput>& inputs, const Config& par, const PathResolver& paths,
                      const std::filesystem::path& data_root,
                      const std::shared_ptr<const CalibrationProfile>& profile) {
  Placement out;
  out.pools.resize(inputs.size());
  bool multi_gpu = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    out.pools[i].parallel = read_sizes(inputs[i].parallel);
    multi_gpu = multi_gpu || out.pools[i].parallel.gpus() > 1;
  }
  if (!par.has("topology") && !multi_gpu) {
    // Every replica is one GPU of its own and needs no communication model.
    for (const auto& in : inputs) {
      if (in.in_pool && in.gpus_table.has("gpus")) {
        in.gpus_table.fail("gpus", "lists GPUs of a topology, but the scenario has no [parallel] topology");
      }
    }
    return out;
  }
  if (!par.has("topology")) {
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (out.pools[i].parallel.gpus() <= 1) continue;
      inputs[i].parallel.fail(
          "tensor_parallel_size",
          "a multi-GPU replica needs [parallel] topology (one of: " +
              join_names(topology_catalog_names((data_root / "scenarios/topologies").string())) + ")");
    }
  }
  out.topology = par.str("topology");
  out.topo = read_topology(par, paths, data_root);
  const std::int64_t count = out.topo->gpu_count();
  const std::string& topo_name = out.topology;

  // Each replica on GPUs of its own: replica r of a pool on entries [r x n, (r + 1) x n) of the pool's list,
  // n = TP x PP (x DP).
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const PlacementInput& in = inputs[i];
    const std::int64_t n = out.pools[i].parallel.gpus();
    const std::int64_t all = n * in.num_replicas;
    if (n > count) {
      in.parallel.fail("tensor_parallel_size", "the replica needs " + std::to_string(n) + " GPUs but topology " +
                                                   topo_name + " has " + std::to_string(count));
    }
    if (all > count) {
      in.count_table.fail(in.count_key, std::to_string(in.num_replicas) + " replicas of " + std::to_string(n) +
                                            " GPUs need " + std::to_string(all) + " GPUs but topology " +
                                            topo_name + " has " + std::to_string(count));
    }
  }
  // The lists first (the scenario without pools lists all its GPUs, 0 .. all-1 by default), then the pools
  // without one take the lowest GPUs left.
  std::vector<int> owner(static_cast<std::size_t>(count), -1);  // the pool that lists or took each GPU
  std::vector<std::vector<int>> gpus(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const PlacementInput& in = inputs[i];
    if (in.in_pool && !in.gpus_table.has("gpus")) continue;
    const std::int64_t all = out.pools[i].parallel.gpus() * in.num_replicas;
    std::vector<std::int64_t> placement;
    for (std::int64_t g = 0; g < all; ++g) placement.push_back(g);
    placement = in.gpus_table.integer_list_or("gpus", placement);
    if (static_cast<std::int64_t>(placement.size()) != all) {
      in.gpus_table.fail("gpus", "lists " + std::to_string(placement.size()) + " GPUs for " +
                                     (in.num_replicas > 1 ? "replicas x " : "") + "tensor x pipeline = " +
                                     std::to_string(all) +
                                     (in.num_replicas > 1 ? " (one replica's GPUs after another's)" : ""));
    }
    for (const std::int64_t g : placement) {
      if (g < 0 || g >= count) {
        in.gpus_table.fail("gpus", "GPU " + std::to_string(g) + " is not on topology " + topo_name + " (it has " +
                                       std::to_string(count) + " GPUs)");
      }
      const int other = owner[static_cast<std::size_t>(g)];
      if (other == static_cast<int>(i)) in.gpus_table.fail("gpus", "GPU " + std::to_string(g) + " is listed twice");
      if (other >= 0) {
        const PlacementInput& o = inputs[static_cast<std::size_t>(other)];
        in.gpus_table.fail("gpus", "GPU " + std::to_string(g) + " is also listed by pool '" + o.pool_name + "' (" +
                                       o.gpus_table.key_path("gpus") + ")");
      }
      owner[static_cast<std::size_t>(g)] = static_cast<int>(i);
      gpus[i].push_back(static_cast<int>(g));
    }
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const PlacementInput& in = inputs[i];
    if (!in.in_pool || in.gpus_table.has("gpus")) continue;
    const std::int64_t n = out.pools[i].parallel.gpus();
    const std::int64_t all = n * in.num_replicas;
    for (std::size_t g = 0; g < owner.size() && static_cast<std::int64_t>(gpus[i].size()) < all; ++g) {
      if (owner[g] >= 0) continue;
      owner[g] = static_cast<int>(i);
      gpus[i].push_back(static_cast<int>(g));
    }
    if (static_cast<std::int64_t>(gpus[i].size()) < all) {
      in.count_table.fail(in.count_key, std::to_string(in.num_replicas) + " replicas of " + std::to_string(n) +
                                            " GPUs need " + std::to_string(all) + " GPUs but only " +
                                            std::to_string(gpus[i].size()) + " of topology " + topo_name + "'s " +
                                            std::to_string(count) + " are not taken by the other pools");
    }
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    PoolPlacement& pool = out.pools[i];
    const auto n = static_cast<std::size_t>(pool.parallel.gpus());
    for (std::size_t r = 0; r < static_cast<std::size_t>(inputs[i].num_replicas); ++r) {
      pool.replica_gpus.emplace_back(gpus[i].begin() + static_cast<std::ptrdiff_t>(r * n),
                                     gpus[i].begin() + static_cast<std::ptrdiff_t>((r + 1) * n));
    }
    build_comms(inputs[i], out.topo, paths, profile, pool);
  }
  return out;
}

}  // namespace servesim
