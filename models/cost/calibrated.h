// The calibrated op-time predictor: op times interpolated on a measured profile (calibrate/data/<gpu>/).
//   GEMM              per measured (N, K) shape: log-log in M; a shape not measured uses the GEMM family fit
//   attention prefill per (heads_q, heads_kv, head_dim): log-log in query-key pairs (causal-equivalent work)
//   attention decode  per head layout: log-log in cached tokens along each measured batch size, then log-log
//                     across batch sizes
//   elementwise       kernel launch + bytes over the device-copy bandwidth fitted to memory.csv
// Outside a measured range, the family's fitted roofline (fit.h) carries the curve from its last measured
// point -- never a silent clamp. Ops the profile does not cover fall back to the roofline predictor.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "models/cost/fit.h"
#include "models/cost/roofline.h"
#include "models/hw/profile.h"

namespace servesim {

struct FamilyReport {
  std::string family;  // gemm, gemm:<op>, attention_prefill, attention_decode, memory
  std::size_t points = 0;
  double loo_mape = 0;  // mean |pred - meas| / meas, leave-one-out, in percent
  double loo_max = 0;
  RooflineFit fit;
};

class CalibratedPredictor final : public OpPredictor {
 public:
  CalibratedPredictor(GpuSpec gpu, std::shared_ptr<const CalibrationProfile> profile);
  [[nodiscard]] std::string name() const override { return "calibrated"; }
  [[nodiscard]] OpCost gemm(const GemmShape& g) const override;
  [[nodiscard]] OpCost attention_prefill(const AttentionShape& a,
                                         std::span<const PrefillChunk> chunks) const override;
  [[nodiscard]] OpCost attention_decode(const AttentionShape& a, std::int64_t batch,
                                        std::int64_t kv_tokens) const override;
  [[nodiscard]] OpCost elementwise(Bytes bytes, Flops flops) const override;

  // Leave-one-out errors per family (and per GEMM shape) against the profile's own points.
  [[nodiscard]] std::vector<FamilyReport> report() const;
  [[nodiscard]] const CalibrationProfile& profile() const { return *profile_; }

 private:
  using HeadKey = std::tuple<std::int64_t, std::int64_t, std::int64_t>;  // heads_q, heads_kv, head_dim
  struct DecodeLines {
    std::map<std::int64_t, MeasuredCurve> by_batch;  // batch -> curve over kv_total
    AttentionShape shape;
  };
  [[nodiscard]] double decode_time(const DecodeLines& lines, std::int64_t batch, double kv_total) const;
  [[nodiscard]] static MeasuredCurve::Point decode_point(const AttentionShape& a, std::int64_t batch, double kv,
                                                         double t);

  GpuSpec gpu_;
  std::shared_ptr<const CalibrationProfile> profile_;
  RooflinePredictor roofline_;
  std::map<std::pair<std::int64_t, std::int64_t>, MeasuredCurve> gemm_;  // (N, K) -> curve over M
  std::map<std::pair<std::int64_t, std::int64_t>, std::string> gemm_names_;
  std::map<HeadKey, MeasuredCurve> prefill_;  // curve over pairs
  std::map<HeadKey, DecodeLines> decode_;
  RooflineFit gemm_fit_, prefill_fit_, decode_fit_, copy_fit_;
};

}  // namespace servesim
