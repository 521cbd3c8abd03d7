// DeepEP's normal (high-throughput) kernels as vLLM's deepep_high_throughput backend runs them: a token goes once to
// each rank holding one or more of its experts (fp8 when the experts compute in fp8), and comes back once per such rank;
// across nodes once per node, over its rail, forwarded within the node over NVLink (models/cost/moe_all2all.h).
#include "models/cost/moe_all2all.h"

namespace servesim {
namespace {

class DeepepHighThroughput final : public MoeAll2AllBackend {
 public:
  [[nodiscard]] MoeCommPlan dispatch(const MoeTraffic& t) const override { return plan(t, t.dispatch_row_bytes()); }
  [[nodiscard]] MoeCommPlan combine(const MoeTraffic& t) const override { return plan(t, t.hidden_bytes); }
  // As the default (every rank's tokens may arrive, not chunked per rank), in fp8 when the experts compute in fp8,
  // through vLLM's modular kernel.
  [[nodiscard]] MoePeakRows peak_rows(double rank_tokens, std::int64_t ep, std::int64_t k,
                                      std::int64_t local_experts) const override {
    MoePeakRows r = MoeAll2AllBackend::peak_rows(rank_tokens, ep, k, local_experts);
    r.fp8_rows = true;
    r.modular = true;
    return r;
  }

 private:
  // Every rank costed at the busiest receiver's share (of nodes across the network, of ranks within a node).
  static MoeCommPlan plan(const MoeTraffic& t, double row) {
    const double ranks = t.rank_tokens * t.ranks_per_token * t.busiest_rank_share;
    if (t.nodes <= 1) return MoeCommPlan{}.add(CollectiveOp::all_to_all, ranks * row);
    MoeCommPlan p;
    p.concurrent = true;
    p.add(CollectiveOp::all_to_all, t.rank_tokens * t.nodes_per_token * t.busiest_node_share * row, ExpertScope::rail);
    p.add(CollectiveOp::all_to_all, ranks / double(t.nodes) * row, ExpertScope::node);
    return p;
  }
};

}  // namespace

std::unique_ptr<MoeAll2AllBackend> make_deepep_high_throughput_all2all() {
  return std::make_unique<DeepepHighThroughput>();
}

}  // namespace servesim
