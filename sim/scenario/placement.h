// The placement part of a scenario: each pool's parallel sizes ([parallel] tensor_parallel_size, ...), the shared
// topology ([parallel] topology, from catalogs()), which GPUs of it each replica gets, and each replica's
// communication model on them.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/common/config.h"
#include "models/cost/step_model.h"
#include "models/hw/profile.h"
#include "models/net/topology.h"
#include "sim/scenario/layered_table.h"
#include "sim/workload/workload.h"

namespace servesim {

// Limits of the placement keys.
// Replicas in one scenario (all pools together): each has its own engines, queues and step model.
inline constexpr std::int64_t kMaxReplicas = 4096;
// Each parallel degree (tensor, pipeline, expert): far above any topology's GPU count (the catalog's largest,
// cluster-4x-dgx-h100, has 32), and small enough that replicas x tensor x pipeline stays below 2^40.
inline constexpr std::int64_t kMaxParallelSize = 65536;

// What one pool asks for.
struct PlacementInput {
  bool in_pool = false;     // a [[cluster.pools]] entry (false: the scenario without pools)
  std::string pool_name;    // for messages ("" without pools)
  LayeredTable parallel;    // the pool's view of [parallel]
  std::int64_t num_replicas = 1;
  Config count_table;       // the table and key num_replicas came from: [cluster] replicas, cluster.pools[i]
  std::string count_key;    //   num_replicas
  Config gpus_table;        // the table whose `gpus` lists the pool's GPUs: [parallel], cluster.pools[i].parallel
};

// Where one pool's replicas run.
struct PoolPlacement {
  ParallelConfig parallel;
  std::vector<std::vector<int>> replica_gpus;           // per replica, its GPUs on the topology; empty without one
  std::vector<std::shared_ptr<const GroupComm>> comms;  // per replica; empty without a topology
};

struct Placement {
  std::string topology;                  // [parallel] topology as given ("" without one)
  std::shared_ptr<const Topology> topo;  // null without one
  std::vector<PoolPlacement> pools;      // as the inputs
};

// Reads every pool's parallel sizes (tensor_parallel_size, pipeline_parallel_size, comm_overlap,
// expert_parallel_size, data_parallel_size), then the topology of `par` ([parallel]; needed when a replica has
// more than one GPU: a path relative to the file naming it, else a catalog name in DATA_ROOT/scenarios/topologies
// with or without ".toml"), then places the replicas: a pool's `gpus` list gives its replicas' GPUs, one
// replica's after another's (TP x PP x DP each); a pool without one takes the lowest-numbered GPUs no pool
// lists or took before it. Then each replica's communication model (collective_algo, collective_model,
// collective_proto, collective_profile, or the profile's collectives.csv).
// Throws InputError naming the key: a size past kMaxParallelSize, a multi-GPU replica without a topology, a
// replica or pool needing more GPUs than the topology has (or has left), a list of the wrong length, a GPU not on
// the topology or listed twice (within a pool or by two pools), an unknown collective model.
[[nodiscard]] Placement place_pools(const std::vector<PlacementInput>& inputs, const Config& par,
                                    const PathResolver& paths, const std::filesystem::path& data_root,
                                    const std::shared_ptr<const CalibrationProfile>& profile);

}  // namespace servesim
