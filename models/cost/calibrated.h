// The calibrated op-time predictor: op times interpolated on a measured profile (calibrate/data/<gpu>/).
//   GEMM              per measured (N, K, dtype) shape: log-log in M; a shape not measured uses the GEMM family fit.
//                     A precision not measured for the shape (fp8 math, fp8 weight-only) scales the bf16 curve by
//                     the fitted rooflines' ratio; the fp8 fit is fitted to fp8 rows, or without any, the bf16 fit
//                     at the GPU's datasheet fp8/bf16 ratio
//   attention prefill per (heads_q, heads_kv, head_dim): log-log in query-key pairs (causal-equivalent work)
//   attention decode  per head layout: log-log in cached tokens along each measured batch size, then log-log
//                     across batch sizes
//                     (a mixed-length batch row, timed as one call per length, is not a point of these lines:
//                     the report predicts it as the sum of its lengths' calls, out of sample)
//   a head layout the profile lacks takes the measured layout of the same head_dim nearest in GQA group size
//   (then in query heads), at equal work: prefill at the same attention FLOPs, decode at the same KV bytes
//   grouped GEMM      per measured (N, K, dtype) shape (grouped_gemm.csv): for each measured group count, log-log
//                     in rows per group; between two measured group counts, log-log in groups; outside them, the
//                     nearest count's time scaled by the GEMM roofline fit's ratio of the two shapes. A precision
//                     not measured (fp8 weight-only, MXFP4 weights) scales the bf16 time as for GEMMs; a shape not
//                     measured uses the GEMM roofline fit
//   elementwise       kernel launch + bytes over the device-copy bandwidth fitted to memory.csv
// Every fitted bandwidth is capped at the GPU's datasheet HBM bandwidth (GpuSpec::memory_bandwidth, from
// scenarios/hardware/gpus.toml; fit.h): a fit above it means L2 hits or a bad fit.
// Outside a measured range, the family's fitted roofline (fit.h) carries the curve from its last measured
// point -- never a silent clamp. Ops the profile does not cover fall back to the roofline predictor.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "models/cost/fit.h"
#include "models/cost/roofline.h"
#include "models/hw/profile.h"

namespace servesim {

struct FamilyReport {
  // gemm (bf16), gemm fp8_e4m3, gemm:<op> [fp8_e4m3], grouped_gemm, grouped_gemm (other group counts),
  // attention_prefill, attention_decode, attention_decode (mixed batches), attention_{prefill,decode} (other
  // layout), memory_copy (fit, in-sample)
  std::string family;
  std::size_t points = 0;
  double loo_mape = 0;  // mean |pred - meas| / meas, leave-one-out, in percent
  double loo_max = 0;
  RooflineFit fit;
  // How steady the measurements themselves are: median over the points of (max - min) / median of the
  // repetitions, in percent (0 where the profile has no spread).
  double spread_pct = 0;
  struct Point {
    std::string label;  // e.g. "M=4", "32/8 S=2048", "32/8 B=4 L=1024"
    double loo_err_pct = 0;
    double spread_pct = 0;
  };
  std::vector<Point> worst;  // the largest leave-one-out errors, up to 3, largest first
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
  // Mixture-of-experts grouped GEMMs: the profile's grouped-GEMM rows where it has the shape, else the GEMM
  // roofline fitted to its GEMM rows.
  [[nodiscard]] OpCost grouped_gemm(const GroupedGemmShape& g) const override;

  // Leave-one-out errors per family (and per GEMM shape and precision) against the profile's own points.
  [[nodiscard]] std::vector<FamilyReport> report() const;
  [[nodiscard]] const GpuSpec& gpu() const { return gpu_; }
  [[nodiscard]] const CalibrationProfile& profile() const { return *profile_; }

 private:
  using HeadKey = std::tuple<std::int64_t, std::int64_t, std::int64_t>;  // heads_q, heads_kv, head_dim
  struct DecodeLines {
    std::map<std::int64_t, MeasuredCurve> by_batch;  // batch -> curve over kv_total
    AttentionShape shape;
  };
  [[nodiscard]] double decode_time(const DecodeLines& lines, std::int64_t batch, double kv_total) const;
  // A mixed-length decode row as it was timed: the sum of one call per length ("groups"), or one padded call.
  [[nodiscard]] double mixed_decode_time(const AttentionSample& a) const;
  [[nodiscard]] static MeasuredCurve::Point decode_point(const AttentionShape& a, std::int64_t batch, double kv,
                                                         double t);
  // The measured layout standing in for `key` (itself when measured); end() when none has its head_dim.
  template <class Map>
  [[nodiscard]] static typename Map::const_iterator layout_for(const Map& m, const HeadKey& key);
  [[nodiscard]] double prefill_time(const MeasuredCurve& curve, const AttentionShape& measured, double pairs) const;
  // Attention of layout `a` on the layout of `layouts` standing in for it; nullopt when none has its head_dim.
  [[nodiscard]] std::optional<double> prefill_on(const std::map<HeadKey, MeasuredCurve>& layouts,
                                                 const AttentionShape& a, double pairs) const;
  [[nodiscard]] std::optional<double> decode_on(const std::map<HeadKey, DecodeLines>& layouts, const AttentionShape& a,
                                                std::int64_t batch, double kv_tokens) const;
  // Spread (percent) of the profile row behind a point, and its label.
  using GemmKey = std::tuple<std::int64_t, std::int64_t, std::string>;  // N, K, dtype (bf16 | fp8_e4m3)
  [[nodiscard]] FamilyReport::Point describe_gemm(const GemmKey& key, double m) const;
  [[nodiscard]] FamilyReport::Point describe_attention(const std::string& op, const HeadKey& key, std::int64_t batch,
                                                       double x) const;

  GpuSpec gpu_;
  std::shared_ptr<const CalibrationProfile> profile_;
  RooflinePredictor roofline_;
  std::map<GemmKey, MeasuredCurve> gemm_;                                // curve over M
  std::map<GemmKey, std::string> gemm_names_;
  // Grouped GEMMs by (N, K, dtype), then by group count: curve over rows per group.
  std::map<GemmKey, std::map<std::int64_t, MeasuredCurve>> grouped_;
  // The measured time of grouped GEMM `g` (N, K and precision of `curves`' shape) with `fit` beyond the rows.
  [[nodiscard]] double grouped_time(const std::map<std::int64_t, MeasuredCurve>& curves, const GroupedGemmShape& g,
                                    const RooflineFit& fit) const;
  std::map<HeadKey, MeasuredCurve> prefill_;  // curve over pairs
  std::map<HeadKey, DecodeLines> decode_;
  std::vector<AttentionSample> mixed_decode_;
  RooflineFit gemm_fit_, gemm_fp8_fit_, prefill_fit_, decode_fit_, copy_fit_;
};

}  // namespace servesim
