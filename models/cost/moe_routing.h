// Expert routing statistics of a mixture-of-experts layer: for a batch of tokens, how many distinct experts receive
// at least one token (their weights are read), how many token rows each group of experts gets, and the busiest
// expert's rows (a grouped GEMM tiles every expert by the busiest one's rows; see GroupedGemmShape).
//
// Model: each token selects expert i with probability q_i, independently across tokens, with sum_i q_i = k (the
// experts per token). Over T tokens expert i receives T q_i rows on average and at least one token with probability
// 1 - (1 - q_i)^T. Uniform routing: q_i = k / E. Skewed routing, from expert popularities p_i (summing to 1):
// q_i = min(1, c p_i) with c set so that sum_i q_i = k (no expert is picked twice by one token; the cap is filled
// water-wise). Popularity order is the expert index: expert 0 is the most popular.
//
// Placement over expert-parallel ranks (ExpertPlacement): without load balancing, rank r holds the contiguous
// logical experts [r E / ep, (r + 1) E / ep) (vLLM's placement without --enable-eplb), so skew lands on rank 0.
// With expert-parallel load balancing (vLLM's --enable-eplb, num_redundant_experts R) there are E + R physical
// experts: the hottest logical experts are replicated and the physical experts packed so that the ranks' loads are
// even (DeepSeek's open-source EPLB algorithm, its global or hierarchical policy; see ExpertPlacement::balanced). A replicated
// expert's tokens split evenly over its replicas: each gets q_i / replicas of every token.
//
// Group-limited routing (DeepSeek's n_group and topk_group, vLLM's grouped_topk): the E experts in G equal contiguous
// groups, and each token first picks topk_group of the groups, then its k experts among theirs. Model: the token's
// groups are a random topk_group-subset S of the G groups with probability proportional to prod_{g in S} w_g
// (conditional Poisson sampling), w_g = P_g / (1 - P_g), P_g = min(1, c Q_g) water-filled from the groups' summed
// q_i (Q_g) so that sum_g P_g = topk_group as above (a group with P_g = 1 is in every S); pi_g is group g's exact
// inclusion probability under that design (pi_g = P_g = topk_group / G when the routing is uniform, where the model
// is the exact uniform choice of topk_group groups). Given its group is picked, expert i has the conditional weight
// r_i = min(1, q_i / pi_g), and the group yields its summed weight M_g = sum_{i in g} r_i of experts on average (k /
// topk_group under uniform routing: DeepSeek-V3, 2 of 32; every picked group contributes, as DeepSeek's grouped top-k
// picks a group for its top-2 experts' scores), drawn without replacement: a set of the group's experts holding a
// share f of M_g is missed with prod_{t < M_g} (1 - f N / (N - t)) (C(N - m, n) / C(N, n) for m of the N under
// uniform routing; a fractional M_g interpolates between its floor and ceiling). Each expert's marginal stays q_i,
// exactly under uniform routing and within 7 % under Zipf 0.5, so the loads above (experts hit, rows) keep the q_i of
// the routing without the limit. The limit changes which experts a token's k share a rank or node with (hit()):
// DeepSeek-V3's 8 experts within 4 of 8 groups of 32 reach fewer ranks (EP 16: 6.06 expected, against 6.37 by the
// independent selections without the limit) and, with 4 groups per node on 2 nodes, both nodes but 1 in 70 times.
// Both are models: grouped top-k over independent random scores gives a picked group 1, 2, 3 or 4 experts (27, 48,
// 20, 4 % of the time) and reaches 5.7 ranks at EP 16, against 6.5 for top-8 without groups.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace servesim {

// One physical expert (one copy of a logical expert's weights on a rank): the logical expert and how many physical
// copies it has in all, so that this copy gets a share 1 / replicas of the expert's tokens.
struct PhysicalExpert {
  std::int64_t expert = 0;    // logical expert index, 0 <= expert < E
  std::int64_t replicas = 1;  // physical copies of that logical expert over all ranks (>= 1)
  friend bool operator==(const PhysicalExpert&, const PhysicalExpert&) = default;
};

class ExpertRouting {
 public:
  ExpertRouting() = default;
  // k of E experts, every expert equally likely. Throws InputError unless 1 <= k <= E.
  [[nodiscard]] static ExpertRouting uniform(std::int64_t experts, std::int64_t k);
  // Zipf popularities p_i proportional to (i + 1)^-exponent, exponent >= 0 (0 = uniform).
  [[nodiscard]] static ExpertRouting zipf(std::int64_t experts, std::int64_t k, double exponent);
  // Measured relative loads, one per expert (tokens routed to it in some sample, any scale; >= 0, not all 0).
  // `where` names the input in errors.
  [[nodiscard]] static ExpertRouting from_loads(const std::vector<double>& loads, std::int64_t k,
                                                const std::string& where);

  [[nodiscard]] bool empty() const { return select_.empty(); }
  [[nodiscard]] std::int64_t experts() const { return static_cast<std::int64_t>(select_.size()); }
  [[nodiscard]] std::int64_t experts_per_token() const { return k_; }
  // q_i: the probability that one token selects expert i.
  [[nodiscard]] const std::vector<double>& select() const { return select_; }
  // The share of routed rows the busiest expert gets: max_i q_i / k (1/E when uniform).
  [[nodiscard]] double busiest_share() const;

  // Over `tokens` tokens, for a set of physical experts: expected experts with at least one token (groups), expected
  // rows (token-expert pairs) and the busiest expert's expected rows. A physical expert of logical expert i with r
  // replicas is selected with probability s = q_i / r per token: groups += 1 - (1 - s)^T, rows += T s.
  struct Load {
    double groups = 0.0;
    double rows = 0.0;
    double busiest_rows = 0.0;
    // Rows a grouped GEMM tiles each group by: the busiest expert's, and at least the mean over the hit experts.
    [[nodiscard]] double rows_per_group() const {
      return groups > 0.0 ? (busiest_rows > rows / groups ? busiest_rows : rows / groups) : 0.0;
    }
  };
  // The physical experts of one rank (ExpertPlacement::rank); each `expert` must be < experts() (not checked).
  [[nodiscard]] Load load(double tokens, const std::vector<PhysicalExpert>& rank) const;
  // Every logical expert once, without replicas (one GPU holding all experts).
  [[nodiscard]] Load load(double tokens) const;
  // The probability that one token picks at least one of a set of physical experts (a rank's, a node's), s_j =
  // q_i / replicas as in load(): without group limits 1 - prod_j (1 - s_j) (selections independent across experts,
  // as everywhere in this model); with them 1 - sum_S P(S) prod_{g in S} (the set's miss within picked group g).
  // Summed over the ranks: about the expected distinct ranks a token's experts are on (exact for one expert per rank
  // without group limits). A set may list an expert more than once (several replicas on one node): a token picking
  // it reaches one replica, so m of its r copies are hit with q_i m / r.
  [[nodiscard]] double hit(const std::vector<PhysicalExpert>& experts) const;

  // This routing with group-limited selection (above): `groups` G equal contiguous groups of experts, each token's
  // k experts within `topk_group` of them. No limit (this routing as it is) when G = 1 or topk_group >= G, as
  // vLLM's grouped_topk with one group. Throws InputError unless G >= 1 divides the experts, topk_group >= 1, the
  // picked groups hold at least k experts (topk_group x E / G >= k), G <= 64 and C(G, topk_group) <= 100,000.
  [[nodiscard]] ExpertRouting limited_to_groups(std::int64_t groups, std::int64_t topk_group) const;
  // G (1 without group limits), topk_group (G without them) and pi_g (group g's inclusion probability; empty
  // without group limits).
  [[nodiscard]] std::int64_t groups() const { return groups_; }
  [[nodiscard]] std::int64_t topk_group() const { return topk_group_; }
  [[nodiscard]] const std::vector<double>& group_select() const { return group_pi_; }

 private:
  ExpertRouting(std::vector<double> select, std::int64_t k) : select_(std::move(select)), k_(k) {}
  [[nodiscard]] static ExpertRouting from_popularity(std::vector<double> p, std::int64_t k);
  std::vector<double> select_;
  std::int64_t k_ = 0;
  // Group-limited routing: G, topk_group, pi_g, and every topk_group-subset of groups (a bit mask) with its
  // probability.
  std::int64_t groups_ = 1;
  std::int64_t topk_group_ = 1;
  std::vector<double> group_pi_;
  std::vector<double> group_mass_;  // per group: sum_i min(1, q_i / pi_g)
  std::vector<std::pair<std::uint64_t, double>> group_sets_;
};


// Which physical experts each expert-parallel rank holds. Shapes: `num_ranks()` lists of `experts_per_rank()` physical
// experts each, (E + R) / ep, with R = 0 without load balancing; `replicas()` has one count per logical expert
// (each >= 1, summing to E + R).
class ExpertPlacement {
 public:
  ExpertPlacement() = default;
  // vLLM's placement without EPLB: rank r holds logical experts [r E / ep, (r + 1) E / ep), one copy each, in index
  // order. Throws InputError unless experts >= 1, 1 <= ranks and ranks divides experts.
  [[nodiscard]] static ExpertPlacement contiguous(std::int64_t experts, std::int64_t ranks);
  // Expert-parallel load balancing with `redundant` extra physical experts (vLLM --enable-eplb with
  // --eplb-config '{"num_redundant_experts": R}', older releases --num-redundant-experts R), by the global policy of
  // DeepSeek's open-source EPLB (github.com/deepseek-ai/EPLB, eplb.py: replicate_experts, balanced_packing):
  //   (a) replicate: R times, one more replica for the logical expert with the largest load / replicas (ties: the
  //       lower index);
  //   (b) pack: the E + R physical experts, of weight load / replicas, by weight descending (stable: equal weights
  //       keep the order of logical index, then replica), each onto the rank with the smallest total weight among
  //       the ranks holding fewer than (E + R) / ranks (ties: the lower rank).
  // With `groups` expert groups (DeepSeek's n_group: contiguous, equal) over ranks spread evenly on `nodes` nodes
  // (rank r on node r / (ranks / nodes)), EPLB's hierarchical policy (rebalance_experts_hierarchical), which
  // DeepSeek's EPLB and vLLM's port of it use whenever groups divide over nodes (else the global policy above, which
  // is the hierarchical one with one group and one node):
  //   (1) pack the groups onto the nodes by their summed loads, groups / nodes each (balanced packing as in (b));
  //   (2) on each node, replicate R / nodes times among its logical experts (its groups in packing order, each
  //       group's experts in index order), as in (a): a logical expert's copies all live on its node;
  //   (3) on each node, pack its physical experts onto its ranks as in (b).
  // Each rank lists its physical experts in the order they were packed. `loads`: one per logical expert, any scale
  // (the routing's selection probabilities q_i, ExpertRouting::select()). Throws InputError unless there is at
  // least one load, every load is finite and >= 0, ranks >= 1, redundant >= 0 and ranks divides E + R. Groups or
  // nodes that do not divide (E, groups, ranks) fall back to the global policy.
  [[nodiscard]] static ExpertPlacement balanced(const std::vector<double>& loads, std::int64_t ranks,
                                                std::int64_t redundant, std::int64_t groups = 1,
                                                std::int64_t nodes = 1);

  [[nodiscard]] bool empty() const { return ranks_.empty(); }
  [[nodiscard]] std::int64_t num_ranks() const { return static_cast<std::int64_t>(ranks_.size()); }
  [[nodiscard]] std::int64_t experts() const { return static_cast<std::int64_t>(replicas_.size()); }
  [[nodiscard]] std::int64_t physical_experts() const { return experts_per_rank_ * num_ranks(); }
  [[nodiscard]] std::int64_t experts_per_rank() const { return experts_per_rank_; }
  // Physical copies of each logical expert.
  [[nodiscard]] const std::vector<std::int64_t>& replicas() const { return replicas_; }
  // The physical experts rank r holds (0 <= r < num_ranks(), not checked).
  [[nodiscard]] const std::vector<PhysicalExpert>& rank(std::int64_t r) const {
    return ranks_[static_cast<std::size_t>(r)];
  }

 private:
  std::vector<std::int64_t> replicas_;
  std::vector<std::vector<PhysicalExpert>> ranks_;
  std::int64_t experts_per_rank_ = 0;
};

// Where one token's experts are, over a placement's ranks in `nodes` equal contiguous blocks (rank r on node
// r / (ranks / nodes)): the expected distinct ranks and nodes holding at least one of them (ExpertRouting::hit of each
// rank's and each node's physical experts, summed), and the busiest rank's and node's hit probability.
struct ExpertReach {
  double ranks_per_token = 0.0;
  double busiest_rank_hit = 0.0;
  double nodes_per_token = 0.0;
  double busiest_node_hit = 0.0;
};
// Throws std::invalid_argument unless nodes >= 1 divides the placement's ranks.
[[nodiscard]] ExpertReach expert_reach(const ExpertRouting& routing, const ExpertPlacement& placement,
                                       std::int64_t nodes);

}  // namespace servesim
