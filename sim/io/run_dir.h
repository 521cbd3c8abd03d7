// A run's output directory read back (servesim run --out DIR): summary.json, requests.csv and, when the run wrote
// one there, timeseries.csv. What `explain` and `report` start from.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace servesim {

// One row of requests.csv (sim/metrics/summary.h kRequestsCsvHeader), times in ms as written.
struct RequestRow {
  std::uint64_t id = 0;
  std::int32_t replica = 0;
  double arrival_s = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t output_tokens = 0;
  double first_token_s = 0, finish_s = 0;
  double ttft_ms = 0, tpot_ms = 0, e2el_ms = 0;
  double queue_ms = 0;
  std::int32_t preemptions = 0;
  double front_end_ms = 0, prefill_ms = 0, prefill_stall_ms = 0, prefill_preempted_ms = 0;
  double decode_ms = 0, decode_stall_ms = 0, decode_preempted_ms = 0, preempted_ms = 0;
  double kv_transfer_ms = 0, decode_wait_ms = 0;
  double compute_share = 0, memory_share = 0, communication_share = 0, overhead_share = 0;
};

// One row of timeseries.csv (sim/metrics/timeseries_writer.h).
struct TimeseriesRow {
  double time_s = 0;
  std::int32_t replica = 0;
  std::int64_t waiting = 0;
  std::int64_t running = 0;
  double kv_usage = 0;
  std::int64_t steps = 0;
  double mean_step_ms = 0;
  double busy_fraction = 0;
  double communication_fraction = 0;
};

struct RunDir {
  std::string dir;
  nlohmann::json summary;               // summary.json
  std::vector<RequestRow> requests;     // requests.csv, in file order (request id order)
  std::vector<TimeseriesRow> timeseries;  // timeseries.csv when present, else empty
  bool has_timeseries = false;
};

// Reads DIR. Throws InputError naming the file (and line) when summary.json or requests.csv is missing or
// malformed (a header that is not requests.csv's, a field that is not a number), or when requests.csv has not one
// row per request summary.json counts as completed.
[[nodiscard]] RunDir read_run_dir(const std::string& dir);

}  // namespace servesim
