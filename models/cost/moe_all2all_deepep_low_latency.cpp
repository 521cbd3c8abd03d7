// DeepEP's low-latency kernels as vLLM's deepep_low_latency backend runs them: one copy of a token per expert it
// picked (fp8 when the experts compute in fp8), and each expert's output sent back in the activation dtype.
#include "models/cost/moe_all2all.h"

namespace servesim {
namespace {

class DeepepLowLatency final : public MoeAll2AllBackend {
 public:
  [[nodiscard]] MoeCommPlan dispatch(const MoeTraffic& t) const override {
    return MoeCommPlan{}.add(CollectiveOp::all_to_all, sent(t) * t.dispatch_row_bytes());
  }
  [[nodiscard]] MoeCommPlan combine(const MoeTraffic& t) const override {
    return MoeCommPlan{}.add(CollectiveOp::all_to_all, sent(t) * t.hidden_bytes);
  }
  // vLLM's VLLM_MOE_DP_CHUNK_SIZE default (vllm/envs.py), the low-latency buffers' tokens per rank.
  [[nodiscard]] std::int64_t chunk_tokens() const override { return 256; }

 private:
  // Rows each rank sends, costed at the busiest receiver's share.
  static double sent(const MoeTraffic& t) {
    return t.rank_tokens * static_cast<double>(t.experts_per_token) * t.busiest_rows_share;
  }
};

}  // namespace

std::unique_ptr<MoeAll2AllBackend> make_deepep_low_latency_all2all() { return std::make_unique<DeepepLowLatency>(); }

}  // namespace servesim
