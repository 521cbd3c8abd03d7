// Expert routing statistics of a mixture-of-experts layer: for a batch of tokens, how many distinct experts receive
// at least one token (their weights are read), how many token rows each group of experts gets, and the busiest
// expert's rows (a grouped GEMM tiles every expert by the busiest one's rows; see GroupedGemmShape).
//
// Model: each token selects expert i with probability q_i, independently across tokens, with sum_i q_i = k (the
// experts per token). Over T tokens expert i receives T q_i rows on average and at least one token with probability
// 1 - (1 - q_i)^T. Uniform routing: q_i = k / E. Skewed routing, from expert popularities p_i (summing to 1):
// q_i = min(1, c p_i) with c set so that sum_i q_i = k (no expert is picked twice by one token; the cap is filled
// water-wise). Popularity order is the expert index: expert 0 is the most popular, and expert-parallel ranks hold
// contiguous index ranges (vLLM's placement without expert-parallel load balancing), so skew lands on rank 0.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace servesim {

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

  // Over `tokens` tokens, for experts [first, first + count): expected experts with at least one token,
  // expected rows (token-expert pairs), and the busiest expert's expected rows.
  struct Load {
    double groups = 0.0;
    double rows = 0.0;
    double busiest_rows = 0.0;
    // Rows a grouped GEMM tiles each group by: the busiest expert's, and at least the mean over the hit experts.
    [[nodiscard]] double rows_per_group() const {
      return groups > 0.0 ? (busiest_rows > rows / groups ? busiest_rows : rows / groups) : 0.0;
    }
  };
  [[nodiscard]] Load load(double tokens, std::int64_t first, std::int64_t count) const;
  [[nodiscard]] Load load(double tokens) const { return load(tokens, 0, experts()); }

 private:
  ExpertRouting(std::vector<double> select, std::int64_t k) : select_(std::move(select)), k_(k) {}
  [[nodiscard]] static ExpertRouting from_popularity(std::vector<double> p, std::int64_t k);
  std::vector<double> select_;
  std::int64_t k_ = 0;
};

}  // namespace servesim
