// The capacity planner: for every candidate of a plan (plan_spec.h), the highest arrival rate one replica (one
// unit of P prefill + D decode replicas, for a disaggregated candidate; "replicas" below counts units then)
// sustains within the SLOs (a bisection, search.h; each rate run with every seed, the worst seed deciding), the
// replicas the target rate needs, ceil(target / max rate), and full-fleet runs at the target rate that confirm it
// (fleet search below). Then the ranking by $/h, the cost/latency Pareto front and the cheaper-fleet check
// (plan_result below).
//
// Every candidate's searches advance together: each round runs the next probe of every unfinished candidate,
// with every seed, as one batch on a ParallelFor (probe.h), so the runs of a round share the machine's cores.
// Results do not depend on the number of threads.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/plan/plan_spec.h"
#include "sim/plan/probe.h"
#include "sim/plan/search.h"

namespace servesim {

// One full-fleet run (the worst of the seeds) at the target rate.
struct FleetRun {
  std::int64_t replicas = 0;
  ProbeMetrics metrics;
  bool meets = false;
};

struct CandidateResult {
  enum class Status {
    ok,       // a max rate was found (the fleet runs say whether a fleet meets the SLOs)
    misses,   // even rate_min misses an SLO with one replica: at_rate_min says by how much
    skipped,  // the candidate's scenario does not load (weights that do not fit, heads not divisible by TP, ...)
  };
  std::size_t index = 0;  // in PlanSpec::candidates
  Status status = Status::skipped;
  std::string note;  // skipped: the reason; ok without a confirmed fleet: why (a fleet that did not load)
  BisectResult search;
  ProbeMetrics at_rate_min;           // the worst seed at rate_min (the first probe)
  std::vector<FleetRun> fleet_runs;   // in the order run
  std::int64_t replicas = 0;          // the confirmed fleet's (meets), else the largest tried; 0 = none
  bool meets = false;                 // a fleet of `replicas` met every SLO at the target rate
  ProbeMetrics fleet;                 // that fleet's run
  double cost_per_hour = 0;           // replicas x GPUs a replica (unit) x price
};

// Fleet search, per candidate with a max rate: the first fleet has R = replicas_for(target, max rate) replicas.
// While a fleet meets the SLOs, the next has one replica fewer (down to 1): the full fleet can do better than the
// single replica suggests (a router spreads bursts); once one misses, the smallest fleet that met is the
// candidate's. When the first fleet misses, one replica is added at a time, at most max_extra_replicas times;
// a candidate none of whose fleets meets has no confirmed fleet (meets = false). A fleet whose scenario does not
// load (more GPUs than the topology has) ends the search with the reason in `note`.
class FleetSearch {
 public:
  FleetSearch(std::int64_t first, std::int64_t max_extra);
  [[nodiscard]] std::optional<std::int64_t> next() const;
  void record(bool meets);
  [[nodiscard]] std::optional<std::int64_t> confirmed() const { return best_; }

 private:
  std::int64_t first_, max_extra_;
  std::optional<std::int64_t> next_;
  std::optional<std::int64_t> best_;
  bool down_ = true;  // going down from the first fleet (it met)
};

// Runs the bisections and fleet searches of candidates `which` (indices into plan.candidates, ascending), in that
// order. Nothing here throws for a candidate that misses or does not load: that is its status.
[[nodiscard]] std::vector<CandidateResult> run_candidates(const PlanSpec& plan, const std::vector<std::size_t>& which,
                                                          const ParallelFor& pool);

// The plan's verdict over every candidate's result.
struct PlanResult {
  std::vector<CandidateResult> candidates;  // in plan order
  std::vector<std::size_t> ranking;  // every candidate: meets (by $/h, P99 TTFT, plan order), then ok without a
                                     // confirmed fleet, misses, skipped (plan order within each)
  std::vector<std::size_t> pareto;   // the candidates that meet whose (cost, P99 TTFT) no other dominates
  std::size_t chosen = 0;            // the cheapest that meets (ranking[0])
  // The most expensive fleet cheaper than the chosen: over the candidates with a max rate, the largest replica
  // count below the chosen $/h; run at the target rate (or taken from the fleet runs when run before).
  struct Cheaper {
    std::size_t candidate = 0;
    std::int64_t replicas = 0;
    double cost_per_hour = 0;
    ProbeMetrics metrics;
    std::string note;  // why it did not run (a fleet larger than the topology); metrics are then empty
  };
  std::optional<Cheaper> cheaper;  // none when no fleet is cheaper than the chosen
};

// Ranks the candidates' results (plan order) and runs the cheaper fleet. Throws InputError when no candidate
// meets the SLOs: every candidate skipped (the first reason); else the best candidate (the smallest factor by
// which it misses, at rate_min or with its largest fleet; a candidate that meets at some rate but whose fleet
// does not load comes first) and by how much, e.g. "best: h200 tp2 reaches P99 TTFT 2.41 s (1.21x the SLO of
// 2 s) at 1 replica's minimum rate 0.25 req/s".
[[nodiscard]] PlanResult plan_result(const PlanSpec& plan, std::vector<CandidateResult> results,
                                     const ParallelFor& pool);

// The order of `plan_result`'s ranking and the Pareto front (no runs): the parts of a sharded plan are ranked by
// this, so that merging them gives the unsharded plan's files.
void rank_results(const std::vector<CandidateResult>& results, std::vector<std::size_t>& ranking,
                  std::vector<std::size_t>& pareto);

// The fleet run points of candidate `c` with `replicas` replicas at the target rate (one per seed).
[[nodiscard]] std::vector<ProbePoint> fleet_points(const PlanSpec& plan, std::size_t c, std::int64_t replicas);

}  // namespace servesim
