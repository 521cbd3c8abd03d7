// vLLM's default all-to-all backend, AgRsAll2AllManager: dispatch is an all-gather(v) of every rank's hidden
// states and router logits, combine a reduce-scatter(v) of every rank's partial outputs for all tokens.
#include "models/cost/moe_all2all.h"

namespace servesim {
namespace {

class AllgatherReducescatter final : public MoeAll2AllBackend {
 public:
  [[nodiscard]] bool gathers_logits() const override { return true; }
  [[nodiscard]] MoeCommPlan dispatch(const MoeTraffic& t) const override {
    return MoeCommPlan{}.add(CollectiveOp::all_gather, t.total_tokens * (t.hidden_bytes + t.logits_bytes));
  }
  [[nodiscard]] MoeCommPlan combine(const MoeTraffic& t) const override {
    return MoeCommPlan{}.add(CollectiveOp::reduce_scatter, t.total_tokens * t.hidden_bytes);
  }
};

}  // namespace

std::unique_ptr<MoeAll2AllBackend> make_allgather_reducescatter_all2all() {
  return std::make_unique<AllgatherReducescatter>();
}

}  // namespace servesim
