// The roofline op-time predictor: time = max(FLOPs / achieved FLOP/s, bytes / achieved bytes/s) + launch.
// Achieved rates are datasheet peaks times the GPU's efficiency constants (scenarios/hardware/gpus.toml).
// Attention kernels reach a lower fraction of peak than GEMMs: kAttentionComputeShare of the GEMM rate
// (FlashAttention-class prefill measured on H200 at 16 K tokens: ~577 TFLOP/s vs ~790 for bf16 GEMMs).
#pragma once
#include "models/cost/op_predictor.h"
#include "models/hw/gpu.h"

namespace servesim {

inline constexpr double kAttentionComputeShare = 0.73;

class RooflinePredictor final : public OpPredictor {
 public:
  explicit RooflinePredictor(GpuSpec gpu) : gpu_(std::move(gpu)) {}
  [[nodiscard]] std::string name() const override { return "roofline"; }
  [[nodiscard]] OpCost gemm(const GemmShape& g) const override;
  [[nodiscard]] OpCost attention_prefill(const AttentionShape& a,
                                         std::span<const PrefillChunk> chunks) const override;
  [[nodiscard]] OpCost attention_decode(const AttentionShape& a, std::int64_t batch,
                                        std::int64_t kv_tokens) const override;
  [[nodiscard]] OpCost elementwise(Bytes bytes, Flops flops) const override;
  [[nodiscard]] OpCost grouped_gemm(const GroupedGemmShape& g) const override;

  // The roofline itself, without launch overhead: max of the compute and memory times, and which one won.
  [[nodiscard]] OpCost roof(Flops flops, FlopsPerSec rate, Bytes bytes) const;
  [[nodiscard]] const GpuSpec& gpu() const { return gpu_; }
  // Attention's FLOP rate: kAttentionComputeShare of the GEMM rate, fp8 for fp8 attention on GPUs that have it.
  [[nodiscard]] FlopsPerSec attention_rate(const AttentionShape& a) const;

 private:
  GpuSpec gpu_;
};

}  // namespace servesim
