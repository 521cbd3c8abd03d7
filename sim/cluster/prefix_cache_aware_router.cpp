// Prefix-cache-aware routing, as llm-d's prefix-cache scorer and SGLang's cache-aware router do it: a request goes
// where the longest prefix of its prompt is already cached, unless that replica is much busier than the rest.
//
// Contract: among the replicas whose outstanding requests (ReplicaLoad::outstanding) are at most the fewest of any
// replica plus `balance_abs_threshold`, the one with the most prompt tokens cached (Replica::cached_prefix_tokens:
// the real cache of the engine the request would enter, whole blocks, read without touching its LRU order); ties
// go to the fewest outstanding requests, then the lowest index. Deterministic; with no cache hit anywhere it is
// least_loaded.
//
// [router] balance_abs_threshold (requests, >= 0; default 32, the default of SGLang's router,
// sgl-router CacheAwareConfig::balance_abs_threshold): how much busier than the least loaded replica a replica may
// be and still be chosen for its cache. 0 routes among the least loaded only. SGLang switches to least-loaded
// routing altogether while max - min > balance_abs_threshold (and max > balance_rel_threshold x min); servesim
// applies the same cap per replica instead, so a busy replica never takes a request for its cache while an idle
// one with the same hit exists.
#include <algorithm>
#include <limits>

#include "sim/cluster/router.h"

namespace servesim {
namespace {

class PrefixCacheAwareRouter final : public Router {
 public:
  explicit PrefixCacheAwareRouter(const Config& c)
      : cap_(c.non_negative_int_or("balance_abs_threshold", kSglangBalanceAbsThreshold)) {}

  std::size_t route(const Request& r, const std::vector<std::unique_ptr<Replica>>& replicas) override {
    loads_.clear();
    std::int64_t fewest = std::numeric_limits<std::int64_t>::max();
    for (const auto& rep : replicas) {
      loads_.push_back(rep->outstanding());
      fewest = std::min(fewest, loads_.back());
    }
    std::size_t best = 0;
    std::int64_t best_hit = -1;
    for (std::size_t i = 0; i < replicas.size(); ++i) {
      if (loads_[i] - fewest > cap_) continue;
      const std::int64_t hit = replicas[i]->cached_prefix_tokens(r);
      if (hit > best_hit || (hit == best_hit && loads_[i] < loads_[best])) {
        best = i;
        best_hit = hit;
      }
    }
    return best;
  }

 private:
  static constexpr std::int64_t kSglangBalanceAbsThreshold = 32;
  std::int64_t cap_;
  std::vector<std::int64_t> loads_;
};

}  // namespace

std::unique_ptr<Router> make_prefix_cache_aware_router(const Config& c) {
  return std::make_unique<PrefixCacheAwareRouter>(c);
}

}  // namespace servesim
