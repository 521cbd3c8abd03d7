// Summaries of a run with the keys of vLLM's `bench serve` result (TTFT, TPOT, ITL, E2EL as
// mean/median/std/p90/p99 in ms; throughputs), with vLLM's definitions:
//   TTFT  first token - arrival                     TPOT  (finish - first token) / (output - 1), output > 1
//   ITL   every gap between consecutive tokens      E2EL  finish - arrival
// Percentiles interpolate linearly between order statistics (numpy's default); std is the population std.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/metrics/recorder.h"

namespace servesim {

struct Stats {
  double mean = 0, median = 0, std = 0, p90 = 0, p99 = 0, max = 0;
  std::int64_t count = 0;
};

[[nodiscard]] double percentile(const std::vector<double>& sorted, double q);
[[nodiscard]] Stats stats_of(std::vector<double> values);
// Weighted by run length: (value, count) pairs.
[[nodiscard]] Stats stats_of_runs(std::vector<std::pair<double, std::int64_t>> runs);

struct RunFacts {
  std::int64_t num_requests = 0;     // requests the workload produced
  std::int64_t unfinished = 0;       // still queued or running when the run stopped
  std::int64_t backlog_at_last_arrival = 0;
  double output_throughput_bound = 0;
  std::uint64_t events = 0;
  double sim_end_s = 0;
  std::int64_t replicas = 1;
  std::int64_t engines = 1;  // replicas x pipeline micro-batch engines
  // vLLM's num_gpu_blocks of the replica (its log's "num_gpu_blocks"), BlockPool's null block included: the
  // scheduler can use one block fewer. x block_size = kv_capacity_tokens_per_replica, vLLM's "GPU KV cache size:
  // N tokens".
  std::int64_t kv_blocks_per_replica = 0;
  std::int64_t block_size = 16;
  // KV cache groups (sim/engine/kv_cache.h KvGroups): with vLLM's hybrid manager a token takes a block slot in
  // each group, so the capacity is kv_blocks / groups x block_size (vLLM's log line), and "kv_cache_groups" is
  // reported; 1 otherwise.
  std::int64_t kv_groups = 1;
  // The configuration that produced the run ("servesim"."config") and how it was invoked ("servesim"."run":
  // scenario path as given, --set lines, seed); left out when null.
  nlohmann::ordered_json config;
  nlohmann::ordered_json run;
};

// The summary.json object: vLLM's keys at top level, servesim's own under "servesim". When some request was
// rejected at admission, "servesim" also holds "rejected_by_reason": {"exceeds_max_model_len": n,
// "exceeds_kv_cache": n, "queue_full": n, "global_queue_full": n} (see RejectReason; absent from runs without
// rejections, whose bytes stay as before).
// When some completed request was looked up in a prefix cache (caching on and its content known), "servesim" holds
// "prefix_cache": {"queries": prompt tokens of those requests, "hits": their cached tokens, "hit_rate": hits /
// queries} (vLLM's prefix_cache_queries and prefix_cache_hits counters, over completed requests' first lookups).
[[nodiscard]] nlohmann::ordered_json summarize(const Recorder& rec, const RunFacts& facts);
// The indices of `records` in ascending order of request id (ids are unique).
[[nodiscard]] std::vector<std::size_t> records_by_id(const RecordStore& records);
// One row per finished request, in id order.
void write_requests_csv(std::ostream& out, const Recorder& rec);
// Columns after preemptions: where each request's time went (sim/metrics/sink.h RequestRecord), in ms with 6
// decimals (exact ns): TTFT = front_end + queue + prefill + prefill_stall + prefill_preempted, E2E = TTFT + decode
// + decode_stall + decode_preempted + kv_transfer + decode_wait (the last two: disaggregated serving, 0 when
// aggregated); preempted = prefill_preempted + decode_preempted; queue_ms counts from ready (after the front end).
// Then the shares of the modeled time of the steps it took part in by kind (4 decimals), the replicas that
// ran its prefill and its decode (both equal to `replica` when aggregated), and its prompt tokens found in the
// prefix cache when first scheduled (vLLM's num_cached_tokens; 0 when never looked up).
inline constexpr const char* kRequestsCsvHeader =
    "id,replica,arrival_s,prompt_tokens,output_tokens,first_token_s,finish_s,ttft_ms,tpot_ms,e2el_ms,"
    "queue_ms,preemptions,front_end_ms,prefill_ms,prefill_stall_ms,prefill_preempted_ms,decode_ms,decode_stall_ms,"
    "decode_preempted_ms,preempted_ms,kv_transfer_ms,decode_wait_ms,compute_share,memory_share,communication_share,"
    "overhead_share,prefill_replica,decode_replica,cached_tokens,dp_rank\n";
// Appends the requests.csv row of `r` (newline included) to `line`.
void append_request_row(std::string& line, const RequestRecord& r);
// A human-readable table of the summary.
[[nodiscard]] std::string format_summary(const nlohmann::ordered_json& s);

}  // namespace servesim
