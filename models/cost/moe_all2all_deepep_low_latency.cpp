// DeepEP's low-latency kernels as vLLM's deepep_low_latency backend runs them: one copy of a token per expert it
// picked (fp8 when the experts compute in fp8), and each expert's output sent back in the activation dtype.
#include "models/cost/moe_all2all.h"


namespace servesim {
namespace {

// DeepEP's kernels are GPU-initiated: each rank posts every row at once (NVLink stores within a node, IBGDA RDMA
// writes across nodes), so the rows cost one latency step on the topology (CommGroup::one_shot_all_to_all), not
// NCCL's one per peer. Besides moving the rows a kernel takes a fixed time (launch, the send and receive phases'
// flag synchronisation with every rank, the dispatch's fp8 cast, the receive side's per-expert layout and the
// combine's weighted sum). These two constants are that time, fitted (the mean residual, rounded to 1 us) to
// DeepEP's published low-latency rows (calibrate/data/published.md: 128 tokens per rank, hidden 7168, top-8,
// H800 with one CX7 400 Gb/s NIC each; EP 8 on NVLink at 200 GB/s, EP 16 / 32 / 64 over 2 / 4 / 8 nodes), with
// the transfers costed on the catalogue's DGX topologies: dispatch residuals 34.4, 37.7, 36.9 and 35.9 us, combine
// 33.3, 43.6, 48.2 and 52.5 us (the combine's grows with EP: its receive side waits on more senders). With them
// every row is reproduced within 10 %, and the EP 128 and 256 rows (16 and 32 nodes, left out of the fit) are
// predicted 5 and 3.5 % low for the dispatch, 12 and 7.5 % low for the combine (tests/unit/test_moe_all2all.cpp).
constexpr Seconds kDispatchOverhead{36e-6};
constexpr Seconds kCombineOverhead{44e-6};

class DeepepLowLatency final : public MoeAll2AllBackend {
 public:
  [[nodiscard]] MoeCommPlan dispatch(const MoeTraffic& t) const override {
    MoeCommPlan p;
    p.add(CollectiveOp::all_to_all, sent(t) * t.dispatch_row_bytes(), ExpertScope::group, true);
    p.overhead = kDispatchOverhead;
    return p;
  }
  [[nodiscard]] MoeCommPlan combine(const MoeTraffic& t) const override {
    MoeCommPlan p;
    p.add(CollectiveOp::all_to_all, sent(t) * t.hidden_bytes, ExpertScope::group, true);
    p.overhead = kCombineOverhead;
    return p;
  }
  // vLLM's VLLM_MOE_DP_CHUNK_SIZE default (vllm/envs.py), the low-latency buffers' tokens per rank.
  [[nodiscard]] std::int64_t chunk_tokens() const override { return 256; }
  // The received rows in DeepEP's expert-major layout ({local experts, ranks x 256, hidden}, fp8 when the experts
  // compute in fp8), which vLLM's batched experts (BatchedTritonExperts / BatchedDeepGemmExperts, through the
  // modular kernel) run as they are, sized for a full chunk whatever the tokens: local_experts x 256 x ep rows, their
  // output in the workspace (one chunk).
  [[nodiscard]] MoePeakRows peak_rows(double /*rank_tokens*/, std::int64_t ep, std::int64_t /*k*/,
                                      std::int64_t local_experts) const override {
    MoePeakRows r;
    r.received = double(local_experts) * double(chunk_tokens()) * double(ep);
    r.fp8_rows = true;
    r.expert_rows = r.received;
    r.modular = true;
    r.output_in_workspace = true;
    return r;
  }

 private:
  // Rows each rank sends, costed at the busiest receiver's share.
  static double sent(const MoeTraffic& t) {
    return t.rank_tokens * static_cast<double>(t.experts_per_token) * t.busiest_rows_share;
  }
};

}  // namespace

std::unique_ptr<MoeAll2AllBackend> make_deepep_low_latency_all2all() { return std::make_unique<DeepepLowLatency>(); }

}  // namespace servesim
