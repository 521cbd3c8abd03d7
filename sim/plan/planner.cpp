#include "sim/plan/planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

#include "models/common/error.h"

namespace servesim {

namespace {

// What one run gave: its metrics, or why its scenario did not load.
struct Outcome {
  ProbeMetrics metrics;
  std::optional<std::string> error;  // the InputError's message
  std::string detail;                // its message without its place (the --set key)
};

std::vector<Outcome> run_batch(const PlanSpec& plan, const std::vector<ProbePoint>& points, const ParallelFor& pool) {
  std::vector<Outcome> out(points.size());
  pool(points.size(), [&](std::size_t i) {
    try {
      out[i].metrics = run_point(plan, points[i]);
    } catch (const InputError& e) {
      out[i].error = e.what();
      out[i].detail = e.detail();
    }
  });
  return out;
}

// The worst over a group of seeds' outcomes, or the first error.
Outcome worst_outcome(const std::vector<Outcome>& outcomes, std::size_t first, std::size_t n) {
  std::vector<ProbeMetrics> runs;
  for (std::size_t j = first; j < first + n; ++j) {
    if (outcomes[j].error) return outcomes[j];
    runs.push_back(outcomes[j].metrics);
  }
  return Outcome{worst_of(runs), std::nullopt, ""};
}

std::int64_t fleet_requests(const PlanSpec& plan, std::int64_t replicas) {
  if (plan.fleet_num_requests) return *plan.fleet_num_requests;
  const double want = static_cast<double>(replicas) * static_cast<double>(plan.num_requests);
  return static_cast<std::int64_t>(std::min(want, static_cast<double>(plan.rate.max_requests())));
}

// A number as people write it: "20", "0.25", "13.7236".
std::string num_text(double v) { return fmt::format("{}", v); }

// "2.41 s" from 2410 ms at and above a second, "812.3 ms" below.
std::string duration_text(double ms) {
  if (ms >= 1000.0) return num_text(std::round(ms / 10.0) / 100.0) + " s";
  return fmt::format("{:.1f} ms", ms);
}

std::string slo_text(double ms) {
  if (ms >= 1000.0) return fmt::format("{} s", ms / 1000.0);
  return fmt::format("{} ms", ms);
}

// "P99 TTFT 2.41 s (1.21x the SLO of 2 s)" for the SLO missed by the largest factor.
std::string worst_miss(const SloSpec& slo, const ProbeMetrics& m) {
  const double ttft = m.p99_ttft_ms / slo.ttft_p99_ms;
  const double tpot = m.p99_tpot_ms / slo.tpot_p99_ms;
  const double good = slo.goodput ? (m.goodput > 0 ? *slo.goodput / m.goodput : std::numeric_limits<double>::infinity())
                                  : 0.0;
  if (good > ttft && good > tpot) return fmt::format("goodput {:.3f} (under the SLO of {})", m.goodput, *slo.goodput);
  if (tpot > ttft) {
    return fmt::format("P99 TPOT {} ({:.2f}x the SLO of {})", duration_text(m.p99_tpot_ms), tpot,
                       slo_text(slo.tpot_p99_ms));
  }
  return fmt::format("P99 TTFT {} ({:.2f}x the SLO of {})", duration_text(m.p99_ttft_ms), ttft,
                     slo_text(slo.ttft_p99_ms));
}

}  // namespace

FleetSearch::FleetSearch(std::int64_t first, std::int64_t max_extra)
    : first_(first), max_extra_(max_extra), next_(first) {}

std::optional<std::int64_t> FleetSearch::next() const { return next_; }

void FleetSearch::record(bool meets) {
  const std::int64_t r = next_.value();
  if (meets) {
    best_ = r;
    next_ = down_ && r > 1 ? std::optional<std::int64_t>(r - 1) : std::nullopt;
    return;
  }
  if (r == first_) {
    down_ = false;
    next_ = max_extra_ > 0 ? std::optional<std::int64_t>(r + 1) : std::nullopt;
  } else if (down_) {
    next_ = std::nullopt;  // one fewer than a fleet that met misses: that one is the smallest
  } else {
    next_ = r < first_ + max_extra_ ? std::optional<std::int64_t>(r + 1) : std::nullopt;
  }
}

std::vector<ProbePoint> fleet_points(const PlanSpec& plan, std::size_t c, std::int64_t replicas) {
  std::vector<ProbePoint> points;
  for (const std::uint64_t seed : plan.seeds) {
    points.push_back({c, replicas, plan.target_rate, fleet_requests(plan, replicas), seed});
  }
  return points;
}

std::vector<CandidateResult> run_candidates(const PlanSpec& plan, const std::vector<std::size_t>& which,
                                            const ParallelFor& pool) {
  const std::size_t n = which.size();
  const std::size_t seeds = plan.seeds.size();
  std::vector<CandidateResult> results(n);
  std::vector<Bisection> searches;
  std::vector<bool> skipped(n, false);
  for (std::size_t k = 0; k < n; ++k) {
    results[k].index = which[k];
    searches.emplace_back(plan.bisect);
  }
  // Bisections, one probe of every unfinished candidate a round.
  for (;;) {
    std::vector<std::size_t> active;
    std::vector<ProbePoint> points;
    for (std::size_t k = 0; k < n; ++k) {
      const auto rate = skipped[k] ? std::nullopt : searches[k].next();
      if (!rate) continue;
      active.push_back(k);
      for (const std::uint64_t seed : plan.seeds) points.push_back({which[k], 1, *rate, plan.num_requests, seed});
    }
    if (active.empty()) break;
    const std::vector<Outcome> outcomes = run_batch(plan, points, pool);
    for (std::size_t a = 0; a < active.size(); ++a) {
      const std::size_t k = active[a];
      const Outcome o = worst_outcome(outcomes, a * seeds, seeds);
      if (o.error) {
        skipped[k] = true;
        results[k].note = *o.error;
        continue;
      }
      if (searches[k].result().probes.empty()) results[k].at_rate_min = o.metrics;
      searches[k].record(check_slo(plan.slo, o.metrics).meets());
    }
  }
  std::vector<std::optional<FleetSearch>> fleets(n);
  for (std::size_t k = 0; k < n; ++k) {
    CandidateResult& r = results[k];
    if (skipped[k]) continue;
    r.search = searches[k].result();
    if (!r.search.max_rate) {
      r.status = CandidateResult::Status::misses;
      continue;
    }
    r.status = CandidateResult::Status::ok;
    fleets[k].emplace(replicas_for(plan.target_rate, *r.search.max_rate), plan.max_extra_replicas);
  }
  // Fleet searches, one fleet of every unfinished candidate a round.
  for (;;) {
    std::vector<std::size_t> active;
    std::vector<ProbePoint> points;
    for (std::size_t k = 0; k < n; ++k) {
      if (!fleets[k] || !fleets[k]->next()) continue;
      active.push_back(k);
      for (const ProbePoint& p : fleet_points(plan, which[k], *fleets[k]->next())) points.push_back(p);
    }
    if (active.empty()) break;
    const std::vector<Outcome> outcomes = run_batch(plan, points, pool);
    for (std::size_t a = 0; a < active.size(); ++a) {
      const std::size_t k = active[a];
      const std::int64_t replicas = *fleets[k]->next();
      const Outcome o = worst_outcome(outcomes, a * seeds, seeds);
      if (o.error) {
        results[k].note = "a fleet of " + std::to_string(replicas) + " replicas does not load: " + o.detail;
        fleets[k].reset();
        continue;
      }
      const bool meets = check_slo(plan.slo, o.metrics).meets();
      results[k].fleet_runs.push_back({replicas, o.metrics, meets});
      fleets[k]->record(meets);
      if (!fleets[k]->next()) {
        const auto confirmed = fleets[k]->confirmed();
        results[k].meets = confirmed.has_value();
        fleets[k].reset();
      }
    }
  }
  for (CandidateResult& r : results) {
    if (r.fleet_runs.empty()) continue;
    const CandidateSpec& c = plan.candidates[r.index];
    // The confirmed (smallest meeting) fleet, else the largest tried.
    const FleetRun* pick = nullptr;
    for (const FleetRun& f : r.fleet_runs) {
      if (r.meets ? (f.meets && (!pick || f.replicas < pick->replicas)) : (!pick || f.replicas > pick->replicas)) {
        pick = &f;
      }
    }
    r.replicas = pick->replicas;
    r.fleet = pick->metrics;
    r.cost_per_hour = fleet_cost_per_hour(r.replicas, c.gpus_per_unit(), c.price_per_gpu_hour);
  }
  return results;
}

void rank_results(const std::vector<CandidateResult>& results, std::vector<std::size_t>& ranking,
                  std::vector<std::size_t>& pareto) {
  using Status = CandidateResult::Status;
  const auto group = [](const CandidateResult& r) {
    if (r.status == Status::ok) return r.meets ? 0 : 1;
    return r.status == Status::misses ? 2 : 3;
  };
  ranking.resize(results.size());
  for (std::size_t i = 0; i < results.size(); ++i) ranking[i] = i;
  std::stable_sort(ranking.begin(), ranking.end(), [&](std::size_t a, std::size_t b) {
    const CandidateResult& x = results[a];
    const CandidateResult& y = results[b];
    if (group(x) != group(y)) return group(x) < group(y);
    if (group(x) != 0) return false;
    if (x.cost_per_hour != y.cost_per_hour) return x.cost_per_hour < y.cost_per_hour;
    return x.fleet.p99_ttft_ms < y.fleet.p99_ttft_ms;
  });
  std::vector<std::size_t> meets;
  std::vector<CostPoint> points;
  for (const std::size_t i : ranking) {
    if (group(results[i]) != 0) continue;
    meets.push_back(i);
    points.push_back({results[i].cost_per_hour, results[i].fleet.p99_ttft_ms});
  }
  pareto.clear();
  for (const std::size_t j : pareto_front(points)) pareto.push_back(meets[j]);
}

PlanResult plan_result(const PlanSpec& plan, std::vector<CandidateResult> results, const ParallelFor& pool) {
  PlanResult out;
  out.candidates = std::move(results);
  rank_results(out.candidates, out.ranking, out.pareto);
  const auto& rs = out.candidates;
  if (rs.size() != plan.candidates.size()) throw std::logic_error("plan_result: one result per candidate, in order");
  if (!rs[out.ranking[0]].meets) {
    // The best candidate: one that meets the SLOs at some rate but whose fleet did not load (a topology too small
    // for it), else the smallest factor by which one misses, at rate_min with one replica (misses) or with its
    // largest fleet at the target rate (ok).
    const CandidateResult* best = nullptr;
    double best_ratio = std::numeric_limits<double>::infinity();
    const CandidateResult* unloaded = nullptr;
    const CandidateResult* first_skipped = nullptr;
    for (const CandidateResult& r : rs) {
      if (r.status == CandidateResult::Status::skipped) {
        if (!first_skipped) first_skipped = &r;
        continue;
      }
      if (r.status == CandidateResult::Status::ok && r.fleet_runs.empty()) {
        if (!unloaded) unloaded = &r;
        continue;
      }
      const ProbeMetrics& m = r.status == CandidateResult::Status::misses ? r.at_rate_min : r.fleet;
      const double ratio = check_slo(plan.slo, m).worst_ratio;
      if (!best || ratio < best_ratio) {
        best = &r;
        best_ratio = ratio;
      }
    }
    if (unloaded) {
      throw InputError(fmt::format("{}: no fleet meets the SLOs at {} req/s; best: {} sustains {:.2f} req/s a "
                                   "replica, but {}",
                                   plan.file, num_text(plan.target_rate), plan.candidates[unloaded->index].label(),
                                   *unloaded->search.max_rate, unloaded->note));
    }
    if (best && best->status == CandidateResult::Status::misses) {
      throw InputError(fmt::format("{}: no candidate meets the SLOs; best: {} reaches {} at 1 replica's minimum rate "
                                   "{} req/s",
                                   plan.file, plan.candidates[best->index].label(),
                                   worst_miss(plan.slo, best->at_rate_min), num_text(plan.bisect.rate_min)));
    }
    if (best) {
      throw InputError(fmt::format("{}: no fleet meets the SLOs at {} req/s; best: {} with {} replicas reaches {}{}",
                                   plan.file, num_text(plan.target_rate), plan.candidates[best->index].label(),
                                   best->replicas, worst_miss(plan.slo, best->fleet),
                                   best->note.empty() ? "" : " (then " + best->note + ")"));
    }
    throw InputError(plan.file + ": no candidate loads; " + plan.candidates[first_skipped->index].label() + ": " +
                     first_skipped->note);
  }
  out.chosen = out.ranking[0];
  const double chosen_cost = rs[out.chosen].cost_per_hour;
  std::optional<PlanResult::Cheaper> cheaper;
  for (const CandidateResult& r : rs) {
    if (r.status != CandidateResult::Status::ok) continue;
    const CandidateSpec& c = plan.candidates[r.index];
    auto replicas = static_cast<std::int64_t>(std::floor(chosen_cost / (c.gpus_per_unit() * c.price_per_gpu_hour)));
    while (replicas >= 1 && fleet_cost_per_hour(replicas, c.gpus_per_unit(), c.price_per_gpu_hour) >= chosen_cost) {
      --replicas;
    }
    if (replicas < 1) continue;
    const double cost = fleet_cost_per_hour(replicas, c.gpus_per_unit(), c.price_per_gpu_hour);
    if (!cheaper || cost > cheaper->cost_per_hour) cheaper = PlanResult::Cheaper{r.index, replicas, cost, {}, ""};
  }
  if (cheaper) {
    const CandidateResult& r = rs[cheaper->candidate];
    const auto ran = std::find_if(r.fleet_runs.begin(), r.fleet_runs.end(),
                                  [&](const FleetRun& f) { return f.replicas == cheaper->replicas; });
    if (ran != r.fleet_runs.end()) {
      cheaper->metrics = ran->metrics;
    } else {
      const std::vector<ProbePoint> points = fleet_points(plan, cheaper->candidate, cheaper->replicas);
      const std::vector<Outcome> outcomes = run_batch(plan, points, pool);
      const Outcome o = worst_outcome(outcomes, 0, points.size());
      if (o.error) {
        cheaper->note = o.detail;
      } else {
        cheaper->metrics = o.metrics;
      }
    }
  }
  out.cheaper = cheaper;
  return out;
}

}  // namespace servesim
