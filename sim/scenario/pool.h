// Pools of replicas (issue 11): aggregated replicas (prefill and decode on the same engine, as every scenario
// without pools), and prefill and decode pools of a disaggregated cluster, each with its own GPU type, parallel
// layout, engine configuration and GPUs on the shared topology. Data only: sim/scenario/pools.h reads them.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/arch/model_arch.h"
#include "models/common/error.h"
#include "models/cost/step_model.h"
#include "models/hw/gpu.h"
#include "sim/engine/engine.h"
#include "sim/engine/kv_cache.h"

namespace servesim {

class TransportCalibration;  // models/net/transport_calibration.h

enum class PoolRole { aggregated, prefill, decode };
// "aggregated", "prefill", "decode"; nullopt for any other text.
[[nodiscard]] std::string_view to_string(PoolRole role);
[[nodiscard]] std::optional<PoolRole> parse_pool_role(std::string_view text);

// [cluster.kv_transfer]: how a request's KV cache goes from its prefill replica to its decode replica.
enum class KvTransferMode {
  after_prefill,   // "after_prefill": the whole cache once the last prompt chunk is computed (the default)
  layer_streamed,  // "layer_streamed": each layer's KV as the prefill finishes it; the last layers' is exposed
};
[[nodiscard]] std::string_view to_string(KvTransferMode mode);

struct KvTransferSpec {
  KvTransferMode mode = KvTransferMode::after_prefill;
  // "auto" (the best transport each pair's route supports) or a transport_registry() name
  // (models/net/transport.h), forced: whether it can carry each pair's route is for the run to check.
  std::string transport = "auto";
  ErrorPlace transport_place;  // where `transport` was given ([cluster.kv_transfer] transport), for errors
  // [cluster.kv_transfer] profile: a transport profile CSV (models/net/transport_calibration.h, as `servesim
  // transfer --profile` takes; `servesim ingest ucx_perftest|nixlbench` writes one), resolved against the folder of
  // the file that gave it; "" without one.
  std::string profile;
  // Its fit, one per transport it measures: replaces those transports' cost terms on every GPU pair, exactly as
  // `servesim transfer --profile` does (select_transport's `cal`). Null without a profile.
  std::shared_ptr<const TransportCalibration> calibration;
};

// One pool, as the scenario gives it. The scenario without [[cluster.pools]] has one: aggregated, named
// "aggregated", from [cluster] replicas, [hardware] gpu, [parallel] and [engine].
struct PoolSpec {
  std::string name;  // [[cluster.pools]] name (default: its role)
  PoolRole role = PoolRole::aggregated;
  std::int64_t num_replicas = 1;
  GpuSpec gpu;                 // the pool's gpu, default [hardware] gpu
  ModelArch arch;              // the model as the pool runs it (its kv_cache_dtype sets kv_bytes_per_element)
  ParallelConfig parallel;     // TP / PP / EP / DP of each replica
  KvCacheSizing kv;            // per GPU of each stage
  EngineConfig engine;         // per replica: limits, max_model_len, num_kv_blocks (the replica's), jitter, ...
  double gpu_memory_utilization = 0.9;
  std::string kv_cache_dtype = "auto";  // engine.kv_cache_dtype as given
  std::string scheduler_impl;           // engine.scheduler.impl
  std::string predictor_impl;           // [hardware] predictor
  std::vector<std::shared_ptr<const StepModel>> step_models;  // per replica, each on its own GPUs
  std::vector<std::vector<int>> replica_gpus;  // per replica: its GPUs on the topology; empty without a topology
  std::string key;  // "cluster.pools[i]" ("" without [[cluster.pools]])
  // Where each key of the pool came from (file, line, dotted key), for messages that name a pool's setting:
  // "name", "role", "num_replicas", "gpu", "parallel.<key>" and "engine.<key>" for every key the pool reads
  // (the scenario's [parallel] / [engine] key where the pool does not override it).
  std::map<std::string, ErrorPlace> places;

  // The place of `key` (as in `places`); for a key not recorded, the pool's own place with the key appended.
  [[nodiscard]] ErrorPlace place(const std::string& key) const;
  // Total GPUs of the pool: num_replicas x TP x PP x DP.
  [[nodiscard]] std::int64_t gpus() const { return num_replicas * parallel.gpus(); }
};

}  // namespace servesim
