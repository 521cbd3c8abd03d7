// Why is P99 high? `servesim explain`: compares the requests in the tail of TTFT and of TPOT with those around the
// median, names the component of latency that grows most, states the likely cause with the run's numbers and one
// lever (a scenario change as `--set path=VALUE` lines of `servesim run`), and can re-run the scenario with it.
//
// Cohorts (per metric, over the finished requests that have the metric):
//   P99 cohort     requests whose value is at or above the metric's P99 (linear interpolation, numpy's default,
//                  as summary.json's p99_*_ms)
//   median cohort  requests whose value lies between the metric's 45th and 55th percentile (inclusive): the
//                  typical request, a band of ~10% of the requests so the mean is not one request's
// Components (ms, from requests.csv):
//   TTFT  front_end, queue, prefill, prefill_stall, prefill_preempted (they sum to TTFT)
//   TPOT  decode, decode_stall, decode_preempted, kv_transfer, decode_wait, each divided by (output_tokens - 1),
//         over requests with more than one output token (they sum to TPOT = (E2E - TTFT) / (output_tokens - 1))
// A component's growth is its P99-cohort mean minus its median-cohort mean (ms); its share is the growth over the
// growth of the metric's cohort mean.
//
// Diagnoses, in the order they are tried (thresholds are this module's judgement, listed in explain.cpp). A tail
// "worth explaining" has a P99-cohort mean at least 1.5x the median cohort's; a component "dominates" with at least
// half of the growth (preempted time: 30%).
//   preemption            preempted time dominates the TTFT or TPOT tail, or (admission waits for KV blocks) queue
//                         time dominates the TTFT tail while the KV cache ran full (peak >= 95%) with preemptions:
//                         the KV cache is too small for the load. Of the two metrics, the one whose tail is the
//                         worse against its median. Lever: fp8 KV cache (half the bytes per token, about twice the
//                         blocks); when the cache already is fp8, twice the tensor parallel size.
//   communication         tensor parallel size > 1 and communication >= 30% of the modeled step time of the TPOT
//                         P99 cohort's steps (TP over a slow interconnect). Lever: half the tensor parallel size with
//                         twice the replicas (the same GPUs; collectives over fewer, closer GPUs, and each replica's
//                         batch half as large).
//   queueing              queue time dominates the TTFT tail and the P99 cohort queues for >= 10 mean steps (less
//                         is the scheduling granularity: waiting for a long step to end). Overload when requests
//                         arrive >= 10% faster than they complete. Lever: more replicas,
//                         ceil(replicas x arrival rate / completion rate / 0.8), at least one more.
//   prefill interference  decode time dominates the TPOT tail while steps carry prompt chunks (>= 4 tokens per
//                         sequence in the mean step, or a P99 cohort whose steps are >= 5 points more compute-bound
//                         than the median cohort's), and the token budget can shrink (>= 2048). Lever:
//                         max_num_batched_tokens / 4 (at least 512; chunked prefill turned on if it was off).
//                         When queueing also holds, the metric whose tail is the worse against its median decides.
//   decode_wait           (disaggregated runs, sim/cluster/kv_handoff.h) decode wait dominates the TPOT tail: handed-
//                         off requests wait for the decode pool's KV blocks. Lever: more replicas of that decode pool
//                         on free GPUs of the topology, sized by Little's law for 80% of its KV blocks (blocks in
//                         use = arrival rate x mean over its requests of blocks held x time held, from the transfer
//                         to the last token), at least one more; without free GPUs, fp8 KV cache on the pool.
//   kv_transfer           (disaggregated runs) the KV transfer dominates the TPOT tail. Lever: a forced transport
//                         back to "auto" (the fastest each route supports); with auto, layer-streamed transfers.
//                         Tried after preemption, before communication. A decode wait is back-pressure (the
//                         waiting requests keep their prefill blocks, so admissions there stall): it wins over
//                         queueing and over a full KV cache with a queue; a KV transfer, when queueing also holds,
//                         only if its tail is the worse against its median.
//   none                  no single dominant cause (no tail worth explaining, the growth spread over components, or
//                         a component with no configuration lever, such as the prefill of long prompts); no lever.
// Levers of a run with [[cluster.pools]] name the pool: `cluster.pools[i].num_replicas` with its GPUs
// (`cluster.pools[i].parallel.gpus`, from summary.json "config"."pools"[i].gpus and "topology_gpus"); queueing adds
// replicas to the first prefill (else aggregated) pool that way.
// Same inputs => the same explanation, byte for byte.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/io/run_dir.h"

namespace servesim {

enum class Cause { none, preemption, communication, queueing, prefill_interference, decode_wait, kv_transfer };
// "none", "preemption", "communication", "queueing", "prefill_interference", "decode_wait", "kv_transfer".
[[nodiscard]] const char* cause_name(Cause c);

// One component of a metric in the two cohorts (ms; for TPOT, ms per output token after the first).
struct ComponentGrowth {
  std::string name;        // e.g. "queue", "decode_preempted"
  double median_ms = 0;    // mean over the median cohort
  double p99_ms = 0;       // mean over the P99 cohort
  double growth_ms = 0;    // p99_ms - median_ms
  double share = 0;        // growth_ms / (metric's P99-cohort mean - median-cohort mean); 0 when that is <= 0
};

// A metric's P99 cohort against its median cohort.
struct CohortComparison {
  std::string metric;            // "ttft" or "tpot"
  std::size_t requests = 0;      // requests with the metric
  double median = 0, p99 = 0;    // the metric's median and P99 (ms)
  std::size_t p99_count = 0, median_count = 0;
  double p99_mean = 0, median_mean = 0;  // the metric's mean over each cohort (ms)
  std::vector<ComponentGrowth> components;  // in the order listed above
  std::size_t dominant = 0;                 // index of the component with the largest growth
  // Mean communication / compute share of the requests' steps' modeled time (requests.csv), per cohort.
  double p99_communication_share = 0, median_communication_share = 0;
  double p99_compute_share = 0, median_compute_share = 0;
  [[nodiscard]] const ComponentGrowth& top() const { return components.at(dominant); }
};

// One pool of a run with [[cluster.pools]] (summary.json "servesim"."config"."pools"[i], and the busy fraction from
// "servesim"."disaggregation"."pools"[i]).
struct PoolNumbers {
  std::string name, role;  // role: "aggregated", "prefill" or "decode"
  std::int64_t num_replicas = 1, tensor_parallel_size = 1, pipeline_parallel_size = 1;
  std::int64_t num_gpu_blocks = 0, block_size = 16;  // per replica
  std::string kv_cache_dtype = "auto";
  std::vector<std::int64_t> gpus;  // on the topology, replica after replica (empty when summary.json has none)
  std::int32_t first_replica = 0;  // replicas are numbered over the pools in order
  double busy_fraction = 0;
  [[nodiscard]] std::int64_t gpus_per_replica() const { return tensor_parallel_size * pipeline_parallel_size; }
};

// The run-level numbers a diagnosis quotes (summary.json "servesim"; 0 when a key is absent).
struct RunNumbers {
  double busy_fraction = 0;
  double mean_step_ms = 0;
  double mean_batch_seqs = 0, mean_batch_tokens = 0;
  double mean_kv_usage = 0, peak_kv_usage = 0;  // fractions of the KV blocks
  std::int64_t preemptions = 0, preempted_requests = 0, max_waiting = 0;
  double compute_share = 0, memory_share = 0, communication_share = 0, overhead_share = 0;  // time_share.*
  double arrival_rate = 0;     // requests / s over the requests' arrival span (requests.csv)
  double completion_rate = 0;  // summary.json request_throughput (requests / s)
  // "config" (defaults when absent, as in a scenario that does not set them).
  std::int64_t tensor_parallel_size = 1, num_replicas = 1, max_num_seqs = 0, max_num_batched_tokens = 0;
  bool enable_chunked_prefill = true;
  std::string kv_cache_dtype = "auto";
  // [[cluster.pools]] (empty without), the topology's GPU count ("config"."topology_gpus"; 0 when absent), and a
  // disaggregated run's KV transfer ("servesim"."disaggregation"; `disaggregated` false without one).
  std::vector<PoolNumbers> pools;
  std::int64_t topology_gpus = 0;
  bool disaggregated = false;
  std::string kv_transfer_mode, transport;
  double kv_transfer_p50_ms = 0, kv_transfer_p99_ms = 0;
};

struct Explanation {
  CohortComparison ttft, tpot;
  RunNumbers numbers;
  Cause cause = Cause::none;
  std::string metric;     // the P99 the diagnosis is about: "ttft" or "tpot" ("" for none)
  std::string component;  // its dominant component ("" for none)
  double metric_p99_ms = 0;
  std::vector<std::string> lever_sets;  // "path=VALUE" (VALUE in TOML syntax), as `servesim run --set` takes them
  std::string lever;                    // the lever in words, e.g. "max_num_batched_tokens 8192 -> 2048"
  std::string cause_text;               // one paragraph: the likely cause, with numbers
  std::string text;                     // the whole explanation (cohort tables, cause, lever), for a terminal
  [[nodiscard]] nlohmann::json to_json() const;
};

// Explains a run from its summary.json and requests.csv rows (as read_run_dir returns them, or as a run holds
// them in memory). Throws InputError when there are no finished requests to compare.
[[nodiscard]] Explanation explain_requests(const nlohmann::json& summary, const std::vector<RequestRow>& rows);
[[nodiscard]] Explanation explain_run(const RunDir& run);

// The scenario a run came from: summary.json "servesim"."run" (scenario path as given, --set lines, seed).
struct RunRecipe {
  std::string scenario;
  std::vector<std::string> sets;          // "path=VALUE"
  std::vector<std::string> calibrations;  // --calibration files, in order
  std::optional<std::uint64_t> seed;
};
// Throws InputError naming the missing key when summary.json has no "servesim"."run".
[[nodiscard]] RunRecipe run_recipe(const nlohmann::json& summary);

// --verify: the dominant P99 of the scenario as it was and with the lever's sets added (run in-process).
struct Verification {
  std::string metric;  // "ttft" or "tpot"
  double before_p99_ms = 0, after_p99_ms = 0;
  std::vector<std::string> sets;  // the lever's sets that were added
  [[nodiscard]] bool improved() const { return after_p99_ms < before_p99_ms; }
};
// Runs `recipe` twice (ScenarioLoader + run_scenario): as given, then with `e.lever_sets` appended. Throws
// InputError when `e` has no lever (cause none) or the scenario is invalid with the lever (e.g. the model no longer
// fits the GPUs).
[[nodiscard]] Verification verify_lever(const Explanation& e, const RunRecipe& recipe);

}  // namespace servesim
