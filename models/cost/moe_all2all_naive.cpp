// vLLM's naive all-to-all backend (NaiveAll2AllManager): dispatch all-reduces a zeroed buffer of every rank's
// hidden states and one of their router logits, each rank having written its own rows (naive_multicast); combine
// all-reduces the partial outputs for all tokens and keeps its own rows.
#include "models/cost/moe_all2all.h"

namespace servesim {
namespace {

class Naive final : public MoeAll2AllBackend {
 public:
  [[nodiscard]] bool gathers_logits() const override { return true; }
  [[nodiscard]] MoeCommPlan dispatch(const MoeTraffic& t) const override {
    return MoeCommPlan{}
        .add(CollectiveOp::all_reduce, t.total_tokens * t.hidden_bytes)
        .add(CollectiveOp::all_reduce, t.total_tokens * t.logits_bytes);
  }
  [[nodiscard]] MoeCommPlan combine(const MoeTraffic& t) const override {
    return MoeCommPlan{}.add(CollectiveOp::all_reduce, t.total_tokens * t.hidden_bytes);
  }
};

}  // namespace

std::unique_ptr<MoeAll2AllBackend> make_naive_all2all() { return std::make_unique<Naive>(); }

}  // namespace servesim
