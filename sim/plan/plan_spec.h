// A capacity plan (servesim plan PLAN.toml): a base scenario, a target rate, SLOs and the candidate deployments,
// read through the checked Config reader. Keys (paths relative to the plan file):
//
//   scenario = "base.toml"        the base scenario (model, workload, engine, router); required. Its arrival
//                                 process must take a rate in req/s (poisson, gamma, or a trace or measured replay
//                                 without time_scale): the plan sets [workload.arrival] rate and
//                                 [workload] num_requests; aggregated replicas only ([cluster] replicas, no pools)
//   set = ["engine.max_num_seqs=128"]  --set overrides of the base scenario, applied before the plan's own
//   target_rate = 20.0            req/s the fleet must serve
//   [slo]       ttft_p99_ms, tpot_p99_ms (both required, > 0); goodput (optional, in (0, 1]: the share of the
//               admitted requests finishing with TTFT <= ttft_p99_ms and TPOT <= tpot_p99_ms)
//   [candidates] gpus = [...] x tensor_parallel_size = [...] x pipeline_parallel_size = [1] x
//               pd_ratios = ["aggregated"] (cartesian, in that order of nesting: gpu outermost). A P:D ratio
//               ("1:2": one prefill + two decode replicas) makes a disaggregated candidate: [[cluster.pools]] of
//               role prefill and decode, sized together in units of P + D replicas; it needs a topology
//   [[candidate]] gpu, tensor_parallel_size = 1, pipeline_parallel_size = 1, pd_ratio = "aggregated",
//               price_per_gpu_hour_usd (optional): listed candidates, after the grid's
//   [prices]    gpu-name = USD per GPU-hour: overrides the catalog's price_per_gpu_hour_usd
//   [topology]  gpu-name = topology (a path relative to the plan, else a catalogue name): the topology of that
//               GPU's candidates with more than one GPU a replica and of its disaggregated ones (the base
//               scenario's [parallel] topology when absent); it must hold the whole fleet (units x GPUs a unit)
//   [search]    seeds = [1]; rate_min = 0.25, rate_max = 64 (req/s), tolerance = 0.05, max_probes = 12
//               (search.h); num_requests = 1000 (per probe run); fleet_num_requests (default: replicas x
//               num_requests, at most the trace's rows); max_extra_replicas = 2
//
// num_requests trades time for fidelity: a probe simulates num_requests / rate seconds, and queues that build
// slowly near saturation (a P99 that would still grow in a longer run) go unseen in a short one, so short probes
// overestimate a replica's capacity; the full-fleet run (replicas x num_requests requests by default) catches
// that, adding replicas.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/common/config.h"
#include "sim/plan/search.h"

namespace servesim {

struct SloSpec {
  double ttft_p99_ms = 0;
  double tpot_p99_ms = 0;
  std::optional<double> goodput;  // share of admitted requests meeting both (per request), in (0, 1]
};

// One deployment to price: replicas of `tensor_parallel_size` x `pipeline_parallel_size` GPUs of type `gpu`,
// aggregated, or disaggregated in units of `prefill` prefill replicas + `decode` decode replicas (a P:D ratio;
// README "Disaggregated prefill and decode"). A fleet is a number of replicas (aggregated) or of units.
struct CandidateSpec {
  std::string gpu;
  std::int64_t tensor_parallel_size = 1;
  std::int64_t pipeline_parallel_size = 1;
  std::int64_t prefill = 0;       // P of a P:D unit; 0 = aggregated
  std::int64_t decode = 0;        // D of a P:D unit
  double price_per_gpu_hour = 0;  // USD: the candidate's, else [prices], else the catalog's
  std::string topology;           // passed as [parallel] topology ("" = the base scenario's)
  std::string where;              // "plan.toml:12" of the key that made it (for messages)

  [[nodiscard]] bool disaggregated() const { return prefill > 0; }
  // Replicas in one unit of the fleet: P + D, or 1 aggregated.
  [[nodiscard]] std::int64_t replicas_per_unit() const { return disaggregated() ? prefill + decode : 1; }
  [[nodiscard]] std::int64_t gpus_per_unit() const {
    return replicas_per_unit() * tensor_parallel_size * pipeline_parallel_size;
  }
  // "aggregated" or "P:D".
  [[nodiscard]] std::string pd_ratio() const;
  // "h100-sxm tp2" (and " pp2" when pipelined, " 1P:2D" when disaggregated).
  [[nodiscard]] std::string label() const;
};

// "aggregated" (prefill = decode = 0) or "P:D" with P, D >= 1 (e.g. "1:2"); throws InputError naming `key` of `t`.
void parse_pd_ratio(const Config& t, const std::string& key, const std::string& text, CandidateSpec& c);

// How the plan makes the base scenario's workload arrive at a rate: [workload.arrival] rate, which poisson and
// gamma draw at and a trace or measured replay is rescaled to (the replayed requests' mean rate,
// (n - 1) / (rate x the span of the n replayed arrivals); sim/workload/).
struct RateControl {
  std::string impl;            // the base scenario's [workload.arrival] impl
  std::int64_t available = 0;  // the requests a replay holds (trace, measured); 0 for a synthetic process
  // The --set lines for `num_requests` requests arriving at `rate` req/s.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> sets(double rate, std::int64_t num_requests) const;
  // The most requests one run can have: the replay's, else the limit of requests per run.
  [[nodiscard]] std::int64_t max_requests() const;
};

// `v` as a TOML float that reads back as the same double (shortest round trip, with a decimal point).
[[nodiscard]] std::string toml_float(double v);

struct PlanSpec {
  std::string file;      // the plan as given
  std::string scenario;  // the base scenario (resolved against the plan's folder)
  std::vector<std::pair<std::string, std::string>> sets;  // `set`, then none of the plan's own
  double target_rate = 0;
  SloSpec slo;
  std::vector<CandidateSpec> candidates;
  std::vector<std::uint64_t> seeds{1};
  BisectSettings bisect;
  std::int64_t num_requests = 1000;
  std::optional<std::int64_t> fleet_num_requests;
  std::int64_t max_extra_replicas = 2;
  RateControl rate;
};

// Reads and checks the plan at `path`: every key above, the base scenario's document (it must exist and parse;
// its [hardware] catalog and [workload.arrival]; the scenario is built per candidate by the planner), every
// candidate's GPU in that GPU catalog (an unknown name lists the valid ones) with a price (an unpriced GPU is
// refused unless the plan prices it), and unknown keys. Throws InputError naming the plan's file:line and key; an
// empty candidate set is an error. `set` values are --set values: a path in one is relative to the working
// directory.
[[nodiscard]] PlanSpec read_plan(const std::string& path);

}  // namespace servesim
