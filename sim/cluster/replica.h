// A model replica: the engines that serve one copy of the model on its GPU group. Without pipeline parallelism a
// replica is one engine; with pipeline parallelism p it is p micro-batch engines (vLLM's virtual engines) sharing
// the replica's p stages (sim/engine/pipeline.h), each with its own scheduler and 1/p of the KV cache; with
// data-parallel attention d it is d engines, one per rank, each with its own scheduler, KV cache and limits, stepping
// in lockstep (sim/engine/dp_group.h). Routers see a replica through its load (ReplicaLoad), never its engines.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "sim/engine/engine.h"

namespace servesim {

// What a router may know about a replica at the moment it routes (sums over the replica's engines).
struct ReplicaLoad {
  std::int64_t outstanding = 0;  // requests admitted and not finished (front end, waiting, running)
  std::int64_t waiting = 0;      // sequences in the waiting queues
  std::int64_t running = 0;      // sequences in the running batches
  std::int64_t kv_blocks = 0;    // usable KV blocks
  std::int64_t kv_free = 0;      // free KV blocks
  // Fraction of the KV blocks in use, in [0, 1] (0 for a replica without blocks).
  [[nodiscard]] double kv_usage() const {
    return kv_blocks > 0 ? static_cast<double>(kv_blocks - kv_free) / static_cast<double>(kv_blocks) : 0.0;
  }
};

// Which of a replica's engines a request enters.
enum class EngineEntry {
  // The fewest outstanding requests, ties to the lowest index (vLLM's pipeline-parallel engine adds a request to
  // the virtual engine with the fewest unfinished ones).
  fewest_outstanding,
  // Data-parallel attention's ranks: the lowest 4 x waiting + running, ties to the lowest index (vLLM's DP load
  // balancing, DPLBAsyncMPClient.get_core_engine_for_request). As in vLLM the counts are a snapshot, taken by the
  // first request of every 100 ms interval of simulated time (vLLM's DP coordinator publishes the engines' counts
  // every 100 ms, stats_update_interval_ms), and each request placed adds one to its rank's waiting count until
  // the next snapshot (requests still in the front end count as waiting; a prefill engine's requests parked for
  // their KV hand-off do not count).
  data_parallel_balance,
};

class Replica {
 public:
  // `engines`: at least one; engine v must have been built with replica index `index` and engine index v.
  // Throws std::logic_error otherwise.
  Replica(std::int32_t index, std::vector<std::unique_ptr<Engine>> engines,
          EngineEntry entry = EngineEntry::fewest_outstanding);

  // A request arrives now: it enters the engine `entry` picks.
  void submit(Simulator& sim, const Request& r);

  [[nodiscard]] std::int32_t index() const { return index_; }
  [[nodiscard]] std::int64_t outstanding() const;
  [[nodiscard]] ReplicaLoad load() const;
  // Prompt tokens of `r` whose KV blocks are cached in the engine submit() would pick at r.arrival: whole blocks, at
  // most prompt_tokens - 1, as the scheduler's lookup would find them (KvCacheManager::cached_prefix); 0 without
  // prefix caching or content. Changes no cache (no LRU update); a data-parallel replica may take its counts'
  // snapshot for r.arrival's interval, as submit() then would.
  [[nodiscard]] std::int64_t cached_prefix_tokens(const Request& r) const;
  [[nodiscard]] const std::vector<std::unique_ptr<Engine>>& engines() const { return engines_; }

 private:
  [[nodiscard]] std::size_t entry_engine() const;  // the engine a request enters now (from the last snapshot)
  void refresh_counts(Ns now) const;               // data_parallel_balance: a new snapshot at a new interval

  std::int32_t index_;
  std::vector<std::unique_ptr<Engine>> engines_;
  EngineEntry entry_;
  // data_parallel_balance: per engine (waiting, running) as last published, and the interval it was taken in.
  // (Mutable: the prefix-aware router's lookup takes the snapshot of its instant, as the placement will.)
  mutable std::vector<std::pair<std::int64_t, std::int64_t>> counts_;
  mutable std::int64_t counts_interval_ = -1;
};

}  // namespace servesim
