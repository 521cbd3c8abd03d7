#include "models/cost/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "models/common/error.h"

namespace servesim {

ExpertRouting ExpertRouting::uniform(std::int64_t experts, std::int64_t k) {
  if (experts < 1 || k < 1 || k > experts) {
    throw InputError("expert routing: " + std::to_string(k) + " experts per token of " + std::to_string(experts) +
                     " experts (need 1 <= k <= experts)");
  }
  return ExpertRouting(std::vector<double>(static_cast<std::size_t>(experts), double(k) / double(experts)), k);
}

namespace {

// Water-filling: q_i = min(1, c p_i) with sum q_i = k, p normalized to sum 1. Entries capped at 1 are fixed, c
// rescales the rest.
std::vector<double> water_fill(const std::vector<double>& p, std::int64_t k) {
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
  return q;
}

}  // namespace

ExpertRouting ExpertRouting::from_popularity(std::vector<double> p, std::int64_t k) {
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& v : p) v /= total;
  return ExpertRouting(water_fill(p, k), k);
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

double ExpertRouting::hit(const std::vector<PhysicalExpert>& experts) const {
  if (group_sets_.empty()) {
    // A token that picks expert i goes to one of its replicas: the set's m of them take m / replicas of it.
    double miss = 1.0;
    for (std::size_t j = 0; j < experts.size(); ++j) {
      const PhysicalExpert& p = experts[j];
      double copies = 1.0;
      bool seen = false;
      for (std::size_t o = 0; o < experts.size() && !seen; ++o) {
        if (o != j && experts[o].expert == p.expert) {
          seen = o < j;
          copies += 1.0;
        }
      }
      if (seen) continue;  // counted with its first copy in the set
      miss *= 1.0 - select_[static_cast<std::size_t>(p.expert)] * copies / double(p.replicas);
    }
    return 1.0 - miss;
  }
  // Per group: the set's conditional selection mass given the group is picked (sum_j min(1, s_j / pi_g)) as a share
  // f of the group's own, M_g; the picked group yields M_g experts on average (n = k / topk_group under uniform
  // routing), drawn without replacement, so the set is missed with prod_{t < M_g} (1 - f N / (N - t)), at least 0
  // (a fractional M_g interpolates between its floor and ceiling).
  const std::int64_t per_group = this->experts() / groups_;
  std::vector<double> share(static_cast<std::size_t>(groups_), 0.0);
  for (const PhysicalExpert& p : experts) {
    const auto g = static_cast<std::size_t>(p.expert / per_group);
    const double s = select_[static_cast<std::size_t>(p.expert)] / double(p.replicas);
    if (group_pi_[g] > 0.0) share[g] += std::min(1.0, s / group_pi_[g]);
  }
  const double N = double(per_group);
  const auto none_of = [&](double f, int draws) {
    double m = 1.0;
    for (int t = 0; t < draws; ++t) m *= std::max(0.0, 1.0 - f * N / (N - double(t)));
    return m;
  };
  std::vector<double> inner(share.size(), 1.0);
  for (std::size_t g = 0; g < share.size(); ++g) {
    if (share[g] <= 0.0) continue;
    const double draws = group_mass_[g];
    const double f = std::min(1.0, share[g] / draws);
    const int lo = static_cast<int>(std::floor(draws));
    const double frac = draws - double(lo);
    inner[g] = frac > 0.0 ? (1.0 - frac) * none_of(f, lo) + frac * none_of(f, lo + 1) : none_of(f, lo);
  }
  double miss = 0.0;
  for (const auto& [mask, prob] : group_sets_) {
    double m = prob;
    for (std::size_t g = 0; g < inner.size(); ++g) {
      if ((mask >> g) & 1U) m *= inner[g];
    }
    miss += m;
  }
  return std::clamp(1.0 - miss, 0.0, 1.0);
}

ExpertRouting ExpertRouting::limited_to_groups(std::int64_t groups, std::int64_t topk_group) const {
  const std::int64_t E = experts();
  if (groups < 1 || E % groups != 0) {
    throw InputError("expert routing: " + std::to_string(groups) + " expert groups do not divide the " +
                     std::to_string(E) + " experts");
  }
  if (topk_group < 1) throw InputError("expert routing: topk_group must be >= 1");
  if (groups == 1 || topk_group >= groups) return *this;
  if (topk_group * (E / groups) < k_) {
    throw InputError("expert routing: " + std::to_string(topk_group) + " groups of " + std::to_string(E / groups) +
                     " experts hold fewer than the " + std::to_string(k_) + " experts per token");
  }
  constexpr double kMaxSets = 100000.0;
  double sets = 1.0;  // C(groups, topk_group)
  for (std::int64_t i = 0; i < topk_group; ++i) sets = sets * double(groups - i) / double(i + 1);
  if (groups > 64 || sets > kMaxSets) {
    throw InputError("expert routing: choosing " + std::to_string(topk_group) + " of " + std::to_string(groups) +
                     " expert groups has more than 100,000 combinations (servesim enumerates them; at most 64 groups)");
  }
  ExpertRouting out = *this;
  out.groups_ = groups;
  out.topk_group_ = topk_group;
  const auto G = static_cast<std::size_t>(groups);
  const std::int64_t per_group = E / groups;
  std::vector<double> Q(G, 0.0);
  for (std::int64_t i = 0; i < E; ++i) {
    Q[static_cast<std::size_t>(i / per_group)] += select_[static_cast<std::size_t>(i)];
  }
  const double total = std::accumulate(Q.begin(), Q.end(), 0.0);
  for (double& v : Q) v /= total;
  const std::vector<double> P = water_fill(Q, topk_group);
  // Conditional Poisson sampling over the topk_group-subsets: weight prod w_g, a group with P_g = 1 in every subset.
  std::uint64_t must = 0;
  for (std::size_t g = 0; g < G; ++g) {
    if (P[g] >= 1.0) must |= std::uint64_t{1} << g;
  }
  // Fewer than topk_group groups with any load (measured loads with zeros): they are all capped, and the token's
  // other groups are any of the unloaded ones, equally likely (they yield no expert of any set: q = 0 there).
  std::size_t loaded = 0;
  for (const double p : P) loaded += p > 0.0 ? 1 : 0;
  const bool fill_unloaded = loaded < static_cast<std::size_t>(topk_group);
  double weight_sum = 0.0;
  const std::uint64_t last = G == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << G) - 1;
  // Every mask of topk_group bits among G, in increasing order (Gosper's hack).
  for (std::uint64_t mask = (std::uint64_t{1} << topk_group) - 1; mask != 0 && mask <= last;) {
    if ((mask & must) == must) {
      double w = 1.0;
      for (std::size_t g = 0; g < G && w > 0.0; ++g) {
        if (((mask >> g) & 1U) && P[g] < 1.0) w *= fill_unloaded && P[g] == 0.0 ? 1.0 : P[g] / (1.0 - P[g]);
      }
      if (w > 0.0) {
        out.group_sets_.emplace_back(mask, w);
        weight_sum += w;
      }
    }
    const std::uint64_t c = mask & (~mask + 1);
    const std::uint64_t r = mask + c;
    if (r == 0) break;  // past the top bit
    mask = (((r ^ mask) >> 2) / c) | r;
  }
  out.group_pi_.assign(G, 0.0);
  for (auto& [mask, w] : out.group_sets_) {
    w /= weight_sum;
    for (std::size_t g = 0; g < G; ++g) {
      if ((mask >> g) & 1U) out.group_pi_[g] += w;
    }
  }
  // Each group's conditional selection mass, sum_i min(1, q_i / pi_g) (hit()'s normaliser; at least tiny).
  out.group_mass_.assign(G, 0.0);
  for (std::int64_t i = 0; i < E; ++i) {
    const auto g = static_cast<std::size_t>(i / per_group);
    const double q = select_[static_cast<std::size_t>(i)];
    if (out.group_pi_[g] > 0.0) out.group_mass_[g] += std::min(1.0, q / out.group_pi_[g]);
  }
  return out;
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

namespace {

// DeepSeek EPLB's replicate_experts: `extra` more copies, each to the expert whose copies carry the most load each.
// Compared as load_a / n_a > load_b / n_b, computed as divisions (as eplb.py's weight / logcnt); the strict > keeps
// the lower index on ties. Returns each expert's copies (>= 1).
std::vector<std::int64_t> replicate(const std::vector<double>& loads, std::int64_t extra) {
  std::vector<std::int64_t> copies(loads.size(), 1);
  for (std::int64_t x = 0; x < extra; ++x) {
    std::size_t best = 0;
    double best_load = loads[0] / double(copies[0]);
    for (std::size_t i = 1; i < loads.size(); ++i) {
      const double per_copy = loads[i] / double(copies[i]);
      if (per_copy > best_load) {
        best = i;
        best_load = per_copy;
      }
    }
    ++copies[best];
  }
  return copies;
}

// DeepSeek EPLB's balanced_packing: items (in the given order) stably by weight descending, each onto the pack with
// the smallest total among those holding fewer than `per_pack` (ties: the lower pack). Returns each pack's items
// (indices into `weights`) in packing order.
std::vector<std::vector<std::size_t>> balanced_packing(const std::vector<double>& weights, std::size_t packs,
                                                       std::size_t per_pack) {
  std::vector<std::size_t> order(weights.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return weights[a] > weights[b]; });
  std::vector<std::vector<std::size_t>> out(packs);
  std::vector<double> total(packs, 0.0);
  for (const std::size_t it : order) {
    std::size_t best = 0;
    bool found = false;
    for (std::size_t p = 0; p < packs; ++p) {
      if (out[p].size() >= per_pack) continue;
      if (!found || total[p] < total[best]) {
        best = p;
        found = true;
      }
    }
    // Always found: fewer items than packs x per_pack are placed before this one.
    out[best].push_back(it);
    total[best] += weights[it];
  }
  return out;
}

}  // namespace

ExpertPlacement ExpertPlacement::balanced(const std::vector<double>& loads, std::int64_t ranks,
                                          std::int64_t redundant, std::int64_t groups, std::int64_t nodes) {
  const auto experts = static_cast<std::int64_t>(loads.size());
  for (const double v : loads) {
    if (!(v >= 0.0) || !std::isfinite(v)) throw placement_error("expert loads must be finite and >= 0");
  }
  if (experts < 1 || ranks < 1 || redundant < 0 || (experts + redundant) % ranks != 0) {
    throw placement_error(std::to_string(experts) + " experts + " + std::to_string(redundant) +
                          " redundant ones do not split evenly over " + std::to_string(ranks) +
                          " expert-parallel ranks");
  }
  // DeepSeek's rule: hierarchical when the groups divide over the nodes, else global (one group on one node).
  if (groups < 1 || nodes < 1 || experts % groups != 0 || groups % nodes != 0 || ranks % nodes != 0) {
    groups = 1;
    nodes = 1;
  }
  ExpertPlacement out;
  const std::int64_t physical = experts + redundant;
  out.experts_per_rank_ = physical / ranks;
  out.replicas_.assign(static_cast<std::size_t>(experts), 1);
  out.ranks_.resize(static_cast<std::size_t>(ranks));
  const std::int64_t group_size = experts / groups;
  const std::int64_t ranks_per_node = ranks / nodes;
  // (1) The groups onto the nodes, by their summed loads: groups / nodes each.
  std::vector<double> group_load(static_cast<std::size_t>(groups), 0.0);
  for (std::int64_t i = 0; i < experts; ++i) group_load[static_cast<std::size_t>(i / group_size)] += loads[static_cast<std::size_t>(i)];
  const auto node_groups =
      balanced_packing(group_load, static_cast<std::size_t>(nodes), static_cast<std::size_t>(groups / nodes));
  for (std::int64_t n = 0; n < nodes; ++n) {
    // (2) The node's logical experts (its groups in packing order, each group's experts in index order), with the
    // node's share of the redundant experts replicated among them.
    std::vector<std::int64_t> logical;
    for (const std::size_t g : node_groups[static_cast<std::size_t>(n)]) {
      for (std::int64_t i = 0; i < group_size; ++i) logical.push_back(static_cast<std::int64_t>(g) * group_size + i);
    }
    std::vector<double> node_loads;
    for (const std::int64_t i : logical) node_loads.push_back(loads[static_cast<std::size_t>(i)]);
    const std::vector<std::int64_t> copies = replicate(node_loads, redundant / nodes);
    // (3) Its physical experts (in that order, a logical expert's copies together) onto its GPUs.
    std::vector<std::int64_t> item_expert;
    std::vector<double> item_weight;
    for (std::size_t j = 0; j < logical.size(); ++j) {
      out.replicas_[static_cast<std::size_t>(logical[j])] = copies[j];
      for (std::int64_t c = 0; c < copies[j]; ++c) {
        item_expert.push_back(logical[j]);
        item_weight.push_back(node_loads[j] / double(copies[j]));
      }
    }
    const auto gpus = balanced_packing(item_weight, static_cast<std::size_t>(ranks_per_node),
                                       static_cast<std::size_t>(out.experts_per_rank_));
    for (std::int64_t r = 0; r < ranks_per_node; ++r) {
      auto& rank = out.ranks_[static_cast<std::size_t>(n * ranks_per_node + r)];
      for (const std::size_t it : gpus[static_cast<std::size_t>(r)]) {
        rank.push_back(PhysicalExpert{item_expert[it], out.replicas_[static_cast<std::size_t>(item_expert[it])]});
      }
    }
  }
  return out;
}

ExpertReach expert_reach(const ExpertRouting& routing, const ExpertPlacement& placement, std::int64_t nodes) {
  const std::int64_t ranks = placement.num_ranks();
  if (nodes < 1 || ranks % nodes != 0) {
    throw std::invalid_argument("expert_reach: " + std::to_string(nodes) + " nodes do not divide " +
                                std::to_string(ranks) + " ranks");
  }
  const std::int64_t per_node = ranks / nodes;
  ExpertReach out;
  std::vector<PhysicalExpert> node;
  for (std::int64_t r = 0; r < ranks; ++r) {
    const double hit = routing.hit(placement.rank(r));
    out.ranks_per_token += hit;
    out.busiest_rank_hit = std::max(out.busiest_rank_hit, hit);
    node.insert(node.end(), placement.rank(r).begin(), placement.rank(r).end());
    if ((r + 1) % per_node == 0) {
      const double node_hit = routing.hit(node);
      out.nodes_per_token += node_hit;
      out.busiest_node_hit = std::max(out.busiest_node_hit, node_hit);
      node.clear();
    }
  }
  return out;
}

}  // namespace servesim
