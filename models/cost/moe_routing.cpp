#include "models/cost/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "models/common/error.h"

namespace servesim {

ExpertRouting ExpertRouting::uniform(std::int64_t experts, std::int64_t k) {
  if (experts < 1 || k < 1 || k > experts) {
    throw InputError("expert routing: " + std::to_string(k) + " experts per token of " + std::to_string(experts) +
                     " experts (need 1 <= k <= experts)");
  }
  return ExpertRouting(std::vector<double>(static_cast<std::size_t>(experts), double(k) / double(experts)), k);
}

ExpertRouting ExpertRouting::from_popularity(std::vector<double> p, std::int64_t k) {
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& v : p) v /= total;
  // Water-filling: q_i = min(1, c p_i) with sum q_i = k. Experts capped at 1 are fixed, c rescales the rest.
  std::vector<double> q(p.size(), 0.0);
  std::vector<bool> capped(p.size(), false);
  for (std::size_t round = 0; round <= p.size(); ++round) {
    double free_mass = 0.0;
    std::int64_t fixed = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (capped[i]) {
        ++fixed;
      } else {
        free_mass += p[i];
      }
    }
    const double c = free_mass > 0.0 ? double(k - fixed) / free_mass : 0.0;
    bool changed = false;
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (capped[i]) continue;
      q[i] = c * p[i];
      if (q[i] > 1.0) {
        capped[i] = true;
        changed = true;
      }
    }
    if (!changed) break;
  }
  for (std::size_t i = 0; i < p.size(); ++i) q[i] = capped[i] ? 1.0 : std::min(1.0, q[i]);
  return ExpertRouting(std::move(q), k);
}

ExpertRouting ExpertRouting::zipf(std::int64_t experts, std::int64_t k, double exponent) {
  (void)uniform(experts, k);  // the same range checks
  if (!(exponent >= 0.0) || !std::isfinite(exponent) || exponent > 100.0) {
    throw InputError("expert routing: zipf exponent " + std::to_string(exponent) + " must be in [0, 100]");
  }
  std::vector<double> p(static_cast<std::size_t>(experts));
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = std::pow(double(i + 1), -exponent);
  return from_popularity(std::move(p), k);
}

ExpertRouting ExpertRouting::from_loads(const std::vector<double>& loads, std::int64_t k, const std::string& where) {
  if (k < 1 || k > static_cast<std::int64_t>(loads.size())) {
    throw InputError(where + ": " + std::to_string(loads.size()) + " expert loads for " + std::to_string(k) +
                     " experts per token (need one load per routed expert, at least k of them)");
  }
  double total = 0.0;
  for (const double v : loads) {
    if (!(v >= 0.0) || !std::isfinite(v)) throw InputError(where + ": expert loads must be finite and >= 0");
    total += v;
  }
  if (total <= 0.0) throw InputError(where + ": expert loads are all 0");
  return from_popularity(loads, k);
}

double ExpertRouting::busiest_share() const {
  if (select_.empty()) return 0.0;
  return *std::max_element(select_.begin(), select_.end()) / double(k_);
}

namespace {

// One physical expert selected with probability q per token, over `tokens` tokens.
void add_expert(ExpertRouting::Load& out, double q, double tokens) {
  out.groups += 1.0 - std::pow(1.0 - q, tokens);
  out.rows += tokens * q;
  out.busiest_rows = std::max(out.busiest_rows, tokens * q);
}

InputError placement_error(const std::string& detail) { return InputError("expert placement: " + detail); }

}  // namespace

ExpertRouting::Load ExpertRouting::load(double tokens, const std::vector<PhysicalExpert>& rank) const {
  Load out;
  // q / 1 is q exactly: a placement without replicas gives the bits of the contiguous sum.
  for (const PhysicalExpert& p : rank) {
    add_expert(out, select_[static_cast<std::size_t>(p.expert)] / double(p.replicas), tokens);
  }
  return out;
}

double ExpertRouting::rank_hit(const std::vector<PhysicalExpert>& rank) const {
  double miss = 1.0;
  for (const PhysicalExpert& p : rank) miss *= 1.0 - select_[static_cast<std::size_t>(p.expert)] / double(p.replicas);
  return 1.0 - miss;
}

ExpertRouting::Load ExpertRouting::load(double tokens) const {
  Load out;
  for (const double q : select_) add_expert(out, q, tokens);
  return out;
}

ExpertPlacement ExpertPlacement::contiguous(std::int64_t experts, std::int64_t ranks) {
  if (experts < 1 || ranks < 1 || experts % ranks != 0) {
    throw placement_error(std::to_string(experts) + " experts do not split evenly over " + std::to_string(ranks) +
                          " expert-parallel ranks");
  }
  ExpertPlacement out;
  out.experts_per_rank_ = experts / ranks;
  out.replicas_.assign(static_cast<std::size_t>(experts), 1);
  out.ranks_.resize(static_cast<std::size_t>(ranks));
  for (std::int64_t i = 0; i < experts; ++i) {
    out.ranks_[static_cast<std::size_t>(i / out.experts_per_rank_)].push_back(PhysicalExpert{i, 1});
  }
  return out;
}

ExpertPlacement ExpertPlacement::balanced(const std::vector<double>& loads, std::int64_t ranks,
                                          std::int64_t redundant) {
  const auto experts = static_cast<std::int64_t>(loads.size());
  for (const double v : loads) {
    if (!(v >= 0.0) || !std::isfinite(v)) throw placement_error("expert loads must be finite and >= 0");
  }
  if (experts < 1 || ranks < 1 || redundant < 0 || (experts + redundant) % ranks != 0) {
    throw placement_error(std::to_string(experts) + " experts + " + std::to_string(redundant) +
                          " redundant ones do not split evenly over " + std::to_string(ranks) +
                          " expert-parallel ranks");
  }
  ExpertPlacement out;
  const std::int64_t physical = experts + redundant;
  out.experts_per_rank_ = physical / ranks;
  // (a) Replicate: each extra copy goes to the logical expert whose copies carry the most load each. Compared as
  // load_a / n_a > load_b / n_b, computed as divisions (as eplb.py's weight / logcnt); the strict > keeps the
  // lower index on ties.
  out.replicas_.assign(static_cast<std::size_t>(experts), 1);
  for (std::int64_t extra = 0; extra < redundant; ++extra) {
    std::size_t best = 0;
    double best_load = loads[0] / double(out.replicas_[0]);
    for (std::size_t i = 1; i < loads.size(); ++i) {
      const double per_copy = loads[i] / double(out.replicas_[i]);
      if (per_copy > best_load) {
        best = i;
        best_load = per_copy;
      }
    }
    ++out.replicas_[best];
  }
  // (b) Balanced packing: the physical experts in order of logical index (a logical expert's copies together), then
  // stably by weight descending, each onto the least loaded rank that still has room.
  struct Item {
    std::int64_t expert;
    double weight;
  };
  std::vector<Item> items;
  items.reserve(static_cast<std::size_t>(physical));
  for (std::size_t i = 0; i < loads.size(); ++i) {
    for (std::int64_t c = 0; c < out.replicas_[i]; ++c) {
      items.push_back(Item{static_cast<std::int64_t>(i), loads[i] / double(out.replicas_[i])});
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.weight > b.weight; });
  out.ranks_.resize(static_cast<std::size_t>(ranks));
  std::vector<double> total(static_cast<std::size_t>(ranks), 0.0);
  for (const Item& it : items) {
    std::size_t best = 0;
    bool found = false;
    for (std::size_t r = 0; r < out.ranks_.size(); ++r) {
      if (static_cast<std::int64_t>(out.ranks_[r].size()) >= out.experts_per_rank_) continue;
      if (!found || total[r] < total[best]) {
        best = r;
        found = true;
      }
    }
    // Always found: fewer items than ranks x experts_per_rank are placed before this one.
    out.ranks_[best].push_back(PhysicalExpert{it.expert, out.replicas_[static_cast<std::size_t>(it.expert)]});
    total[best] += it.weight;
  }
  return out;
}

}  // namespace servesim
