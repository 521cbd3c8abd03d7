// Reading the pools of a scenario ([cluster], [[cluster.pools]], [cluster.kv_transfer]) and building each pool
// from the hardware, placement and engine parts.
//
// Schema (scenarios/disagg/ has examples):
//   [cluster]
//   decode_router = "least_loaded"   # picks a request's decode replica (sim/cluster/router.h registry names)
//   [cluster.kv_transfer]
//   mode = "after_prefill"           # or "layer_streamed"
//   transport = "auto"               # or a transport's name (models/net/transport.h)
//   profile = "transports.csv"       # a transport profile (servesim transfer --profile's), relative to this file
//   [[cluster.pools]]
//   name = "prefill"                 # default: the role; unique
//   role = "prefill"                 # "aggregated", "prefill" or "decode" (required)
//   num_replicas = 1                 # default 1
//   gpu = "h100-sxm"                 # a GPU of the [hardware] catalog; default [hardware] gpu
//   [cluster.pools.parallel]         # [parallel] keys for this pool, over the scenario's [parallel]; `gpus` lists
//   gpus = [0, 1, 2, 3]              #   the pool's GPUs on [parallel] topology (default: the next ones unused)
//   [cluster.pools.engine]           # [engine] keys for this pool, over the scenario's [engine] (a sub-table such
//   max_num_seqs = 128               #   as engine.overhead replaces the scenario's whole)
// Without [[cluster.pools]] the scenario is one aggregated pool: [cluster] replicas, [hardware] gpu, [parallel],
// [engine], exactly as before pools existed. With pools, [cluster] replicas and [parallel] gpus are refused (each
// pool gives its own), as is a pool's parallel.topology (the pools share [parallel] topology).
// A scenario has only aggregated pools, or at least one prefill and one decode pool (aggregated pools may join
// them, and [parallel] topology is needed: the KV cache goes over its links); decode_router and kv_transfer apply
// to the latter only.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/common/config.h"
#include "sim/scenario/engine_setup.h"
#include "sim/scenario/hardware.h"
#include "sim/scenario/layered_table.h"
#include "sim/scenario/placement.h"
#include "sim/scenario/pool.h"

namespace servesim {

// A pool as [cluster] declares it, before placement.
struct PoolDecl {
  bool in_pool = false;  // a [[cluster.pools]] entry (false: the scenario without pools)
  std::string name;
  PoolRole role = PoolRole::aggregated;
  std::int64_t num_replicas = 1;
  Config table;           // cluster.pools[i]; [cluster] without pools
  std::string count_key;  // the key of num_replicas in `table`: "num_replicas" ("replicas" without pools)
  std::optional<std::string> gpu;  // the pool's own gpu
  LayeredTable parallel;  // the pool's view of [parallel]
  LayeredTable engine;    // the pool's view of [engine]
  Config parallel_table;  // the table with the pool's `gpus`: cluster.pools[i].parallel; [parallel] without pools
};

struct ClusterSetup {
  bool has_pools = false;  // [[cluster.pools]] given
  std::vector<PoolDecl> pools;
  KvTransferSpec kv_transfer;
  std::string decode_router = "least_loaded";
};

// Reads [cluster] (`par` and `eng` are the scenario's [parallel] and [engine], which pools override; `paths`
// resolves kv_transfer.profile). Throws InputError naming the key: more than kMaxReplicas replicas in all, an
// unknown or missing role, a duplicate name, prefill pools without a decode pool (or the reverse), an unknown
// decode_router, kv_transfer mode or transport (each listing the valid ones), a kv_transfer profile that cannot be
// read or fitted (the key, then the profile's own "file:line: ..." message), decode_router or kv_transfer without
// prefill and decode pools, and the keys refused with pools (above).
[[nodiscard]] ClusterSetup read_cluster(const Config& cl, const Config& par, const Config& eng,
                                        const PathResolver& paths);

// The placement request of a declared pool.
[[nodiscard]] PlacementInput placement_input(const PoolDecl& d);

// Pool `d` built: its engine ([engine] through d.engine, `sim`'s jitter switch), one step model per replica on
// its placement, its KV cache sized. `gpu_table` / `gpu_key` name the pool's GPU in errors ([hardware] gpu, or
// the pool's own gpu). Throws InputError naming the key (a parallel layout the model does not divide into names
// the pool's parallel key; a model that does not fit names the GPU).
struct BuiltPool {
  PoolSpec spec;
  Config scheduler;  // the [engine.scheduler] table the pool reads (make_scheduler)
};
[[nodiscard]] BuiltPool build_pool(const PoolDecl& d, const ModelSetup& model, const PoolGpu& gpu,
                                   const std::string& predictor_impl, PoolPlacement placement, const Config& sim,
                                   const Config& gpu_table, const std::string& gpu_key);

}  // namespace servesim
