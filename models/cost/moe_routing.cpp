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

ExpertRouting::Load ExpertRouting::load(double tokens, std::int64_t first, std::int64_t count) const {
  Load out;
  const auto end = static_cast<std::size_t>(std::min<std::int64_t>(first + count, experts()));
  for (auto i = static_cast<std::size_t>(first); i < end; ++i) {
    const double q = select_[i];
    out.groups += 1.0 - std::pow(1.0 - q, tokens);
    out.rows += tokens * q;
    out.busiest_rows = std::max(out.busiest_rows, tokens * q);
  }
  return out;
}

}  // namespace servesim
