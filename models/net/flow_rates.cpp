// Max-min fair rates by progressive filling, and the continuous-time reference of a network of timed flows.
#include "models/net/flow_rates.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <string>

#include "models/common/error.h"

namespace servesim {

namespace {

std::string bps(double v) { return short_number(v) + " B/s"; }

}  // namespace

MaxMinSolver::MaxMinSolver(std::vector<BytesPerSec> capacity) {
  capacity_.reserve(capacity.size());
  for (std::size_t l = 0; l < capacity.size(); ++l) {
    const double c = capacity[l].value();
    if (!(c > 0) || !std::isfinite(c)) {
      throw InputError("link " + std::to_string(l) + ": capacity " + bps(c) + " must be finite and > 0");
    }
    capacity_.push_back(c);
  }
  const std::size_t n = capacity_.size();
  stamp_.assign(n, 0);
  remaining_.assign(n, 0.0);
  unfrozen_.assign(n, 0);
  first_.assign(n, 0);
  count_.assign(n, 0);
}

void MaxMinSolver::check(const FlowDemand& demand, const std::string& what) const {
  const std::string tail = problem(demand);
  if (!tail.empty()) throw InputError(what + tail);
}

std::string MaxMinSolver::problem(const FlowDemand& demand) const {
  const double cap = demand.cap.value();
  if (!(cap > 0)) return ": rate cap " + bps(cap) + " must be > 0";
  if (demand.links.empty() && !std::isfinite(cap)) {
    return " crosses no link and has no finite rate cap: its rate would be infinite";
  }
  const auto n = static_cast<std::int64_t>(capacity_.size());
  for (std::size_t k = 0; k < demand.links.size(); ++k) {
    const int l = demand.links[k];
    if (l < 0 || l >= n) {
      return ": link id " + std::to_string(l) + " is out of range (" + std::to_string(n) + " links)";
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (demand.links[j] == l) return " crosses link " + std::to_string(l) + " twice";
    }
  }
  return "";
}

void MaxMinSolver::solve(std::span<const FlowDemand* const> flows, std::span<double> rates) {
  const std::size_t n = flows.size();
  const auto link_ids = static_cast<std::int64_t>(capacity_.size());
  ++epoch_;
  touched_.clear();
  for (const FlowDemand* f : flows) {
    for (const int l : f->links) {
      const auto u = static_cast<std::size_t>(l);
      if (stamp_[u] != epoch_) {
        stamp_[u] = epoch_;
        touched_.push_back(l);
        count_[u] = 0;
        remaining_[u] = capacity_[u];
      }
      ++count_[u];
    }
  }
  // Incidence lists (compressed rows): the flows crossing each touched link, in flow order.
  std::int32_t end = 0;
  for (const int l : touched_) {
    const auto u = static_cast<std::size_t>(l);
    first_[u] = end;
    unfrozen_[u] = 0;  // fill cursor, then the count of unfrozen flows
    end += count_[u];
  }
  incidence_.resize(static_cast<std::size_t>(end));
  for (std::size_t i = 0; i < n; ++i) {
    for (const int l : flows[i]->links) {
      const auto u = static_cast<std::size_t>(l);
      incidence_[static_cast<std::size_t>(first_[u] + unfrozen_[u]++)] = static_cast<std::int32_t>(i);
    }
  }

  // Candidate saturation levels, smallest first (ties: smaller id first). A link's level only rises as flows
  // freeze on it (the share left to the others is never smaller than the level they froze at), so a link's entry
  // is a lower bound: when popped, it is re-pushed at its current level unless that equals the popped one.
  const auto later = [](const Level& a, const Level& b) {
    return a.level != b.level ? a.level > b.level : a.id > b.id;
  };
  heap_.clear();
  frozen_.assign(n, 0);
  std::size_t left = n;
  for (const int l : touched_) {
    const auto u = static_cast<std::size_t>(l);
    heap_.push_back(Level{remaining_[u] / unfrozen_[u], l});
  }
  for (std::size_t i = 0; i < n; ++i) {
    const double cap = flows[i]->cap.value();
    if (flows[i]->links.empty()) {
      rates[i] = cap;
      frozen_[i] = 1;
      --left;
    } else if (std::isfinite(cap)) {
      heap_.push_back(Level{cap, link_ids + static_cast<std::int64_t>(i)});
    }
  }
  std::make_heap(heap_.begin(), heap_.end(), later);

  const auto freeze = [&](std::size_t i, double rate) {
    rates[i] = rate;
    frozen_[i] = 1;
    --left;
    for (const int l : flows[i]->links) {
      const auto u = static_cast<std::size_t>(l);
      remaining_[u] -= rate;
      --unfrozen_[u];
    }
  };
  double level = 0;
  while (left > 0 && !heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const Level top = heap_.back();
    heap_.pop_back();
    if (top.id >= link_ids) {  // a flow reaches its cap
      const auto i = static_cast<std::size_t>(top.id - link_ids);
      if (frozen_[i]) continue;
      level = std::max(level, top.level);
      freeze(i, top.level);
      continue;
    }
    const auto u = static_cast<std::size_t>(top.id);
    if (unfrozen_[u] == 0) continue;
    const double current = std::max(remaining_[u], 0.0) / unfrozen_[u];
    if (current > top.level) {
      heap_.push_back(Level{current, top.id});
      std::push_heap(heap_.begin(), heap_.end(), later);
      continue;
    }
    level = std::max(level, current);  // rounding may put `current` an ulp below a level already reached
    const auto begin = static_cast<std::size_t>(first_[u]);
    const auto stop = begin + static_cast<std::size_t>(count_[u]);
    for (std::size_t k = begin; k < stop; ++k) {
      const auto i = static_cast<std::size_t>(incidence_[k]);
      if (!frozen_[i]) freeze(i, level);
    }
  }
}

std::vector<BytesPerSec> max_min_rates(const std::vector<BytesPerSec>& capacity,
                                       const std::vector<FlowDemand>& flows) {
  MaxMinSolver solver(capacity);
  std::vector<const FlowDemand*> views;
  views.reserve(flows.size());
  for (std::size_t f = 0; f < flows.size(); ++f) {
    solver.check(flows[f], "flow " + std::to_string(f));
    views.push_back(&flows[f]);
  }
  std::vector<double> rates(flows.size(), 0.0);
  solver.solve(views, rates);
  std::vector<BytesPerSec> out;
  out.reserve(rates.size());
  for (const double r : rates) out.emplace_back(r);
  return out;
}

std::vector<Seconds> flow_finish_times(const std::vector<BytesPerSec>& capacity,
                                       const std::vector<TimedFlow>& flows) {
  constexpr double kTogether = 1e-13;  // seconds: finishes this close are one event
  MaxMinSolver solver(capacity);
  const std::size_t n = flows.size();
  for (std::size_t f = 0; f < n; ++f) {
    const std::string what = "flow " + std::to_string(f);
    solver.check(flows[f].demand, what);
    const double b = flows[f].bytes.value();
    const double s = flows[f].start.value();
    if (!(b >= 0) || !std::isfinite(b)) throw InputError(what + ": bytes " + short_number(b) + " must be >= 0");
    if (!(s >= 0) || !std::isfinite(s)) throw InputError(what + ": start " + short_number(s) + " s must be >= 0");
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return flows[a].start < flows[b].start; });

  std::vector<Seconds> finish(n, Seconds{0});
  std::vector<double> remaining(n, 0.0);
  std::vector<double> rate(n, 0.0);
  std::vector<std::size_t> active;
  std::vector<std::size_t> still;
  std::vector<const FlowDemand*> views;
  std::vector<double> solved;
  std::size_t next = 0;
  double now = 0;
  while (next < n || !active.empty()) {
    const double next_start = next < n ? flows[order[next]].start.value() : std::numeric_limits<double>::infinity();
    double next_finish = std::numeric_limits<double>::infinity();
    for (const std::size_t f : active) next_finish = std::min(next_finish, now + remaining[f] / rate[f]);
    const double t = std::min(next_start, next_finish);
    still.clear();
    for (const std::size_t f : active) {
      if (now + remaining[f] / rate[f] <= next_finish + kTogether && next_finish <= next_start + kTogether) {
        finish[f] = Seconds{t};
      } else {
        remaining[f] -= rate[f] * (t - now);
        still.push_back(f);
      }
    }
    now = t;
    while (next < n && flows[order[next]].start.value() <= t) {
      const std::size_t f = order[next++];
      if (flows[f].bytes.value() == 0) {
        finish[f] = flows[f].start;
      } else {
        remaining[f] = flows[f].bytes.value();
        still.push_back(f);
      }
    }
    active.swap(still);
    views.clear();
    for (const std::size_t f : active) views.push_back(&flows[f].demand);
    solved.assign(active.size(), 0.0);
    solver.solve(views, solved);
    for (std::size_t k = 0; k < active.size(); ++k) rate[active[k]] = solved[k];
  }
  return finish;
}

}  // namespace servesim
