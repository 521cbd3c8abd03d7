// Internals of `servesim explain` (sim/metrics/explain.h) shared by its files: explain.cpp (cohorts, the
// aggregated diagnoses, text and JSON) and explain_disagg.cpp (pools, the disaggregated diagnoses, pool levers).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/io/run_dir.h"
#include "sim/metrics/explain.h"

namespace servesim::explain_detail {

// A component "dominates" a metric's growth at half of it or more (this module's judgement, as every threshold
// of explain.cpp).
inline constexpr double kDominantShare = 0.5;
// Levers that add replicas size them for 80% utilisation (of the engines' time, or of a decode pool's KV blocks).
inline constexpr double kTargetUtilisation = 0.8;
// At most this many replicas in a lever (the scenario limit, sim/scenario/placement.h).
inline constexpr std::int64_t kMaxLeverReplicas = 4096;

// "42%"
[[nodiscard]] std::string pct(double x);
// A tail worth explaining: the P99 cohort's mean at least 1.5x the median cohort's.
[[nodiscard]] bool has_tail(const CohortComparison& c);
// The metric's P99-cohort mean over its median-cohort mean (0 when the median cohort's mean is 0).
[[nodiscard]] double tail_ratio(const CohortComparison& c);
// The component called `name` (throws std::logic_error when `c` has none).
[[nodiscard]] const ComponentGrowth& component(const CohortComparison& c, const std::string& name);
// Cause none, no lever; cause_text "No single dominant cause: " + why.
void diagnose_none(Explanation& e, const std::string& why);

// ---- explain_disagg.cpp ----

// Fills n.pools and n.topology_gpus from summary.json "servesim"."config", and the disaggregation fields from
// "servesim"."disaggregation" (`servesim`: summary.json's "servesim" object; absent keys leave the defaults).
void read_pool_numbers(const nlohmann::json& servesim, RunNumbers& n);

// Whether the TPOT tail of a disaggregated run is explained by kv_transfer or decode_wait: a tail worth explaining
// whose dominant component is one of them.
[[nodiscard]] bool disaggregation_tail(const Explanation& e);
// The decode_wait or kv_transfer diagnosis of `e` (disaggregation_tail(e) holds), with its lever (or cause none
// when no lever applies). `rows`: the run's requests (the decode pool's blocks held over time).
void diagnose_disaggregation(Explanation& e, const std::vector<RequestRow>& rows);

// The queueing lever of a run with pools: more replicas of the first prefill (else aggregated) pool, sized like
// the lever without pools from the pool's own replicas. Sets e.lever_sets and e.lever; false (e untouched) when
// the topology has no free GPUs for another replica.
[[nodiscard]] bool queueing_pool_lever(Explanation& e);

// The "Pools: ..." line of the explanation's text (empty without pools).
[[nodiscard]] std::string pools_text(const RunNumbers& n);

}  // namespace servesim::explain_detail
