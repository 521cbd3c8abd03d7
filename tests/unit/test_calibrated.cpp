// The calibrated predictor on the shipped H200 profile, and the fitting machinery on planted data.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "h200.h"
#include "helpers.h"
#include "models/common/error.h"
#include "models/cost/calibrated.h"
#include "sim/cli/scenario.h"

using namespace servesim;

namespace {

using test::h200;
using test::h200_profile;

double measured_gemm_us(const std::string& op, std::int64_t m) {
  for (const auto& g : h200_profile()->gemm) {
    if (g.op == op && g.m == m) return g.median_us;
  }
  FAIL("no row " << op << " M=" << m);
  return 0;
}

double measured_prefill_us(std::int64_t s) {
  for (const auto& a : h200_profile()->attention) {
    if (a.op == "prefill" && a.hq == 32 && a.q_len == s && a.ctx_len == 0) return a.median_us;
  }
  FAIL("no prefill row S=" << s);
  return 0;
}

}  // namespace

TEST_CASE("the roofline fit recovers planted constants", "[calibrated]") {
  const RooflineFit truth{10e-6, 700e12, 4e12};
  std::vector<FitPoint> pts;
  for (double m = 1; m <= 16384; m *= 2) {
    const double f = 2 * m * 4096 * 4096, b = (m * 4096 * 2 + 4096.0 * 4096 + m * 4096) * 2;
    pts.push_back({f, b, truth.predict(f, b)});
  }
  const RooflineFit fit = fit_roofline(pts, RooflineFit{1e-6, 500e12, 2e12});
  CHECK(fit.latency_s == Approx(truth.latency_s).epsilon(1e-6));
  CHECK(fit.flops_per_s == Approx(truth.flops_per_s).epsilon(1e-6));
  CHECK(fit.bytes_per_s == Approx(truth.bytes_per_s).epsilon(1e-6));
}

TEST_CASE("measured curves pass through their points and follow the fit beyond them", "[calibrated]") {
  const RooflineFit fit{0.0, 1e12, 1e12};
  const MeasuredCurve c({{1, 2.0, 1, 0}, {4, 8.0, 4, 0}});
  CHECK(c.at(1, 1, 0, fit) == 2.0);
  CHECK(c.at(4, 4, 0, fit) == 8.0);
  CHECK(c.at(2, 2, 0, fit) == Approx(4.0));
  // Beyond the grid: anchored at the last point, scaled by the fitted shape (here linear): 16 -> 32.
  CHECK(c.at(16, 16, 0, fit) == Approx(32.0));
}

TEST_CASE("calibrated GEMMs reproduce the measured grid exactly and are never clamped", "[calibrated]") {
  const CalibratedPredictor p(h200(), h200_profile());
  // Llama-3-8B qkv: N = 6144, K = 4096.
  for (const std::int64_t m : {1, 64, 1024, 16384}) {
    const double t = p.gemm(GemmShape{"qkv", m, 6144, 4096, 2.0}).time.v * 1e6;
    CHECK(t == Approx(measured_gemm_us("l8b_qkv", m)).epsilon(1e-9));
  }
  // Beyond the largest measured M the time keeps growing with the work.
  const double t16k = p.gemm(GemmShape{"qkv", 16384, 6144, 4096, 2.0}).time.v;
  const double t64k = p.gemm(GemmShape{"qkv", 65536, 6144, 4096, 2.0}).time.v;
  CHECK(t64k == Approx(4.0 * t16k).epsilon(0.05));
}

TEST_CASE("leave-one-out accuracy on the H200 profile", "[calibrated]") {
  const CalibratedPredictor p(h200(), h200_profile());
  std::map<std::string, FamilyReport> by;
  for (const auto& r : p.report()) by[r.family] = r;
  CHECK(by.at("gemm").points == 133);
  CHECK(by.at("gemm").loo_mape <= 5.0);
  int shapes_within = 0;
  for (const auto& [name, r] : by) {
    if (name.rfind("gemm:", 0) == 0 && r.loo_mape <= 5.0) ++shapes_within;
  }
  // 8 of the 9 shapes; l8b_o carries one noisy point (M=4: median 27.9 us, spread 20.5-30.9 us).
  CHECK(shapes_within >= 8);
  CHECK(by.at("attention_prefill").loo_mape <= 10.0);
  CHECK(by.at("attention_decode").loo_mape <= 18.0);
}

TEST_CASE("servesim step with the H200 profile matches the measured kernels of a prefill", "[calibrated]") {
  const auto dir = test::temp_dir("h200step");
  const std::string path = test::write_file(dir / "s.toml", R"(
[model]
config = "llama-3-8b"
[hardware]
gpu = "h200"
profile = "calibrate/data/h200"
[workload]
num_requests = 1
[workload.arrival]
impl = "poisson"
rate = 1.0
[workload.prompt_tokens]
impl = "fixed"
value = 10
[workload.output_tokens]
impl = "fixed"
value = 10
)");
  const ScenarioLoader loader(path, {});
  CHECK(loader.scenario().step_model->predictor().name() == "calibrated");
  for (const std::int64_t s : {2048, 4096, 8192}) {
    BatchShape b;
    b.prefills.push_back({s, 0});
    b.num_sampled = 1;
    const double predicted_ms = loader.scenario().step_model->step_time(b).v * 1e3;
    const double per_layer_us = measured_gemm_us("l8b_qkv", s) + measured_gemm_us("l8b_o", s) +
                                measured_gemm_us("l8b_gateup", s) + measured_gemm_us("l8b_down", s) +
                                measured_prefill_us(s);
    const double measured_ms = (32 * per_layer_us + measured_gemm_us("l8b_lmhead", 1)) / 1e3;
    INFO(fmt::format("prefill {}: predicted {:.2f} ms, measured kernels {:.2f} ms", s, predicted_ms, measured_ms));
    CHECK(std::abs(predicted_ms - measured_ms) / measured_ms < 0.15);
    CHECK(predicted_ms > measured_ms);  // norms, activations and engine overhead come on top
  }
}

TEST_CASE("profile files with bad rows are named with file:line", "[calibrated]") {
  const auto dir = test::temp_dir("badprofile");
  test::write_file(dir / "profile.json", "{\"gpu\": \"test\"}");
  test::write_file(dir / "gemm.csv", "op,M,N,K,dtype,median_us,min_us,max_us\nqkv,1,6144,4096,bf16,abc,1,1\n");
  CHECK_THROWS_WITH(CalibrationProfile::load(dir.string()), Catch::Contains("gemm.csv:2") && Catch::Contains("median_us"));
  test::write_file(dir / "gemm.csv", "op,M,N\nqkv,1,6144\n");
  CHECK_THROWS_WITH(CalibrationProfile::load(dir.string()), Catch::Contains("gemm.csv:1") && Catch::Contains("expected header"));
  CHECK_THROWS_WITH(CalibrationProfile::load((dir / "nope").string()), Catch::Contains("not found"));
}

TEST_CASE("a head layout the profile lacks runs on the nearest measured layout at equal work", "[calibrated]") {
  const CalibratedPredictor p(h200(), h200_profile());
  // 16 query / 2 KV heads (GQA group 8) is not measured; 8/1 (group 8) is.
  const AttentionShape missing{16, 2, 128, 2.0}, measured{8, 1, 128, 2.0};
  for (const std::int64_t s : {300, 2048, 5000}) {
    // Same attention FLOPs: one chunk with 16 query heads = two such chunks with 8.
    const std::vector<PrefillChunk> one{{s, 0}}, two{{s, 0}, {s, 0}};
    CHECK(p.attention_prefill(missing, one).time.v == p.attention_prefill(measured, two).time.v);
  }
  for (const std::int64_t b : {1, 16, 100}) {
    // Same KV bytes: twice the cached tokens with half the KV heads.
    CHECK(p.attention_decode(missing, b, b * 3000).time.v == p.attention_decode(measured, b, b * 6000).time.v);
  }
  // No measured layout with this head_dim: the family's fitted roofline.
  std::map<std::string, FamilyReport> by;
  for (const auto& r : p.report()) by[r.family] = r;
  const AttentionShape other_dim{32, 8, 64, 2.0};
  const double f = decode_attention_flops(other_dim, 4096).v, bytes = decode_attention_bytes(other_dim, 4, 4096).v;
  CHECK(p.attention_decode(other_dim, 4, 4096).time.v == by.at("attention_decode").fit.predict(f, bytes));
  // The transfer is itself reported: each layout predicted from the other.
  CHECK(by.at("attention_prefill (other layout)").points == 18);
  CHECK(by.at("attention_decode (other layout)").points == 36);
}

TEST_CASE("the report names the worst points and how steady the measurements were", "[calibrated]") {
  const CalibratedPredictor p(h200(), h200_profile());
  std::map<std::string, FamilyReport> by;
  for (const auto& r : p.report()) by[r.family] = r;
  const auto& o = by.at("gemm:l8b_o");
  REQUIRE(o.worst.size() == 3);
  CHECK(o.worst[0].label == "M=4");
  // l8b_o M=4: min 20.5248, median 27.9088, max 30.9376 us.
  CHECK(o.worst[0].spread_pct == Approx(100.0 * (30.937600135803223 - 20.524799823760986) / 27.908799052238464));
  CHECK(o.worst[0].loo_err_pct >= o.worst[1].loo_err_pct);
  CHECK(o.worst[1].loo_err_pct >= o.worst[2].loo_err_pct);
  CHECK(o.worst[0].loo_err_pct == Approx(o.loo_max));
  CHECK(by.at("gemm").worst[0].label == "l8b_o M=4");
  // Steady GPU-bound shapes spread little; the host-contended small shapes spread a lot.
  CHECK(by.at("gemm:l8b_gateup").spread_pct < 5.0);
  CHECK(by.at("gemm:l8b_o").spread_pct > 15.0);
}

TEST_CASE("a profile row whose median is outside [min, max] is rejected", "[calibrated][bad-input]") {
  const auto dir = test::temp_dir("badspread");
  test::write_file(dir / "profile.json", "{\"gpu\": \"test\"}");
  test::write_file(dir / "gemm.csv", "op,M,N,K,dtype,median_us,min_us,max_us\nqkv,1,6144,4096,bf16,10,11,12\n");
  CHECK_THROWS_WITH(CalibrationProfile::load(dir.string()), Catch::Contains("gemm.csv:2") && Catch::Contains("min_us"));
}

TEST_CASE("two GEMM shapes with one op name are reported apart", "[calibrated]") {
  const auto dir = test::temp_dir("sharedop");
  test::write_file(dir / "profile.json", "{\"gpu\": \"h200\"}");
  test::write_file(dir / "gemm.csv",
                   "op,M,N,K,dtype,median_us,min_us,max_us\n"
                   "qkv,1,6144,4096,bf16,20,19,21\nqkv,64,6144,4096,bf16,21,20,22\nqkv,1024,6144,4096,bf16,70,69,71\n"
                   "qkv,1,1280,8192,bf16,10,5,15\nqkv,64,1280,8192,bf16,11,6,16\nqkv,1024,1280,8192,bf16,30,15,45\n");
  const CalibratedPredictor p(h200(), std::make_shared<const CalibrationProfile>(CalibrationProfile::load(dir.string())));
  std::map<std::string, FamilyReport> by;
  for (const auto& r : p.report()) by[r.family] = r;
  REQUIRE(by.count("gemm:qkv 6144x4096") == 1);
  REQUIRE(by.count("gemm:qkv 1280x8192") == 1);
  // Spreads come from each shape's own rows: 10 % of 20 us, 100 % of 10 us.
  CHECK(by.at("gemm:qkv 6144x4096").spread_pct < 15.0);
  CHECK(by.at("gemm:qkv 1280x8192").spread_pct == Approx(100.0));
}
