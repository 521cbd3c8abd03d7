// One simulation of a capacity plan: a candidate's fleet of `replicas` at an arrival rate, with one seed, and the
// SLO metrics it reports. The planner (planner.h) runs many of these, in parallel.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sim/plan/plan_spec.h"
#include "sim/scenario/scenario.h"

namespace servesim {

// What one run (or the worst of a probe's seeds) gives against the SLOs.
struct ProbeMetrics {
  double p99_ttft_ms = 0;  // summary.json p99_ttft_ms (vLLM's definition, sim/metrics/summary.h)
  double p99_tpot_ms = 0;  // summary.json p99_tpot_ms
  // The share of the admitted requests (completed + unfinished; requests refused at admission would be refused
  // at any rate) that completed with TTFT <= the SLO's and TPOT <= the SLO's (TPOT of a one-token output: 0).
  double goodput = 0;
  std::int64_t completed = 0;
  std::int64_t rejected = 0;
};

// A run of the plan: candidate `candidate` (index into PlanSpec::candidates) with `replicas` replicas (units of
// P + D replicas for a disaggregated candidate) at `rate` req/s, `num_requests` requests, seed `seed`.
struct ProbePoint {
  std::size_t candidate = 0;
  std::int64_t replicas = 1;
  double rate = 0;
  std::int64_t num_requests = 0;
  std::uint64_t seed = 0;
};

// The --set lines of a point, after the plan's `set`: hardware.gpu, parallel.tensor_parallel_size,
// parallel.pipeline_parallel_size, parallel.topology (when the candidate has one and its replicas have several
// GPUs or it is disaggregated), cluster.replicas (aggregated) or cluster.pools (a prefill and a decode pool of
// units x P and units x D replicas), then the workload's (RateControl::sets). As `servesim run --set` takes them.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> point_sets(const PlanSpec& plan, const ProbePoint& p);

// `servesim run` of the point: "servesim run SCENARIO --set ... --seed N" (the values shell-quoted).
[[nodiscard]] std::string run_command(const PlanSpec& plan, const ProbePoint& p);

// Loads the point's scenario and runs it. Throws InputError when it does not load (a model that does not fit,
// a fleet larger than the topology) or every request is refused.
[[nodiscard]] ProbeMetrics run_point(const PlanSpec& plan, const ProbePoint& p);

// The worst of a probe's seeds: the highest P99s, the lowest goodput (counts summed). A rate passes only when
// every seed's run meets every SLO.
[[nodiscard]] ProbeMetrics worst_of(const std::vector<ProbeMetrics>& runs);

// Whether `m` meets each SLO, and by what factor the worst one is missed: the largest of p99_ttft / SLO,
// p99_tpot / SLO and SLO goodput / goodput (<= 1 meets every SLO).
struct SloVerdict {
  bool ttft = false, tpot = false, goodput = true;
  double worst_ratio = 0;
  [[nodiscard]] bool meets() const { return ttft && tpot && goodput; }
  // "P99 TTFT" / "P99 TPOT" / "goodput": the SLOs missed, joined by ", " ("" when none).
  [[nodiscard]] std::string missed() const;
};
[[nodiscard]] SloVerdict check_slo(const SloSpec& slo, const ProbeMetrics& m);

// Runs jobs 0..n-1, each exactly once, possibly in parallel; returns when all are done. A job's exception is
// rethrown after every job ended (the lowest index's, so that errors do not depend on timing).
using ParallelFor = std::function<void(std::size_t n, const std::function<void(std::size_t)>& job)>;
// A ParallelFor on `threads` threads (a Boost.Asio thread pool; 1 = in the calling thread, in index order).
[[nodiscard]] ParallelFor thread_pool_for(unsigned threads);

}  // namespace servesim
