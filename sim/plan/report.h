// What a capacity plan prints and writes: the ranked table, the Pareto front, the chosen and the cheaper fleet
// (printed); plan.csv and pareto.csv; and the part files of a sharded plan (servesim plan --shard i/N, the shards
// of sim/sweep/shard.h), which `servesim plan --merge` assembles into the files and output of the unsharded plan.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sim/plan/plan_spec.h"
#include "sim/plan/planner.h"
#include "sim/sweep/shard.h"

namespace servesim {

// The printed report: a header line, the ranked table (every candidate; the confirmed fleet's P99s, else the
// largest fleet tried), the skipped candidates with their reasons, the Pareto front, the chosen fleet, the cheaper
// fleet and the `servesim run` command that confirms the chosen one.
[[nodiscard]] std::string format_plan(const PlanSpec& plan, const PlanResult& result);

// plan.csv: one row per candidate in ranking order. Columns: rank (1.. for the candidates that meet, else empty),
// candidate, gpu, tensor_parallel_size, pipeline_parallel_size, pd_ratio ("aggregated" or "P:D"), gpus_per_unit
// (a replica's GPUs, or a P:D unit's), price_per_gpu_hour_usd, status (ok, misses, skipped), max_rate_per_unit
// (req/s one replica or unit sustains; empty without one), max_rate_capped (the search's rate_max passed), probes,
// units, replicas (the fleet's: confirmed, else the largest tried), cost_per_hour_usd, p99_ttft_ms, p99_tpot_ms,
// goodput (of that fleet's run at the target rate), meets, note.
[[nodiscard]] std::string plan_csv(const PlanSpec& plan, const PlanResult& result);
// pareto.csv: the Pareto front of (cost_per_hour_usd, p99_ttft_ms) over the fleets that meet, by ascending cost:
// candidate, gpu, tensor_parallel_size, pipeline_parallel_size, pd_ratio, units, replicas, cost_per_hour_usd,
// p99_ttft_ms, p99_tpot_ms, goodput.
[[nodiscard]] std::string pareto_csv(const PlanSpec& plan, const PlanResult& result);

// The candidates of shard `s` (sim/sweep/shard.h: 0-based i/N, candidate c in shard c mod N) among `n`, ascending.
[[nodiscard]] std::vector<std::size_t> shard_candidates(std::size_t n, const Shard& s);

// A part file: JSON {"servesim_plan_part": 1, "plan": fingerprint, "shard": "i/N", "results": [...]} with every
// field of the shard's CandidateResults, doubles written to round-trip exactly.
[[nodiscard]] std::string plan_part(const PlanSpec& plan, const Shard& s, const std::vector<CandidateResult>& results);
// Reads the parts of `plan` and returns every candidate's result in plan order. Throws InputError naming the file
// for a file that is not a part, a part of another plan (its fingerprint differs), two parts of one shard, or
// candidates no part holds.
[[nodiscard]] std::vector<CandidateResult> read_plan_parts(const PlanSpec& plan, const std::vector<std::string>& paths);

// What identifies a plan's searches: target rate, SLOs, seeds, search settings, sets and every candidate with its
// price and topology (not the plan's path, which may differ between machines).
[[nodiscard]] std::string plan_fingerprint(const PlanSpec& plan);

}  // namespace servesim
