// The MoE all-to-all backends by name: one line each. Byte model: models/cost/moe_all2all.h.
#include "models/cost/moe_all2all.h"

#include <algorithm>

namespace servesim {

const MoeAll2AllRegistry& moe_all2all_registry() {
  static const MoeAll2AllRegistry registry = [] {
    MoeAll2AllRegistry r("all2all backend");
    r.add("allgather_reducescatter", [] { return make_allgather_reducescatter_all2all(); });
    r.add("naive", [] { return make_naive_all2all(); });
    r.add("deepep_high_throughput", [] { return make_deepep_high_throughput_all2all(); });
    r.add("deepep_low_latency", [] { return make_deepep_low_latency_all2all(); });
    return r;
  }();
  return registry;
}

MoePeakRows MoeAll2AllBackend::peak_rows(double rank_tokens, std::int64_t ep, std::int64_t k,
                                         std::int64_t /*local_experts*/) const {
  MoePeakRows r;
  r.received = rank_tokens * double(ep);
  r.logits = gathers_logits();
  r.expert_rows = std::min(r.received, kFusedMoeChunkTokens) * double(k);
  return r;
}

double all_to_all_equivalent_bytes(const MoeCommPlan& plan) {
  double sum = 0;
  for (int i = 0; i < plan.count; ++i) {
    const MoeCollective& s = plan.steps[static_cast<std::size_t>(i)];
    if (s.scope == ExpertScope::node) continue;
    sum += s.op == CollectiveOp::all_reduce ? 2.0 * s.bytes : s.bytes;
  }
  return sum;
}

}  // namespace servesim
