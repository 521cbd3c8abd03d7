// fp8 weights and fp8 KV cache: exact roofline GEMM costs, weight and KV sizes, config and scenario keys, and the
// calibrated predictor's use of fp8 measurements (or, without them, of the bf16 curve scaled by the fits).
#include <catch2/catch.hpp>

#include "h200.h"
#include "helpers.h"
#include "models/arch/model_arch.h"
#include "models/cost/calibrated.h"
#include "models/cost/roofline.h"
#include "models/cost/step_model.h"
#include "sim/scenario/scenario.h"

using namespace servesim;

namespace {

GpuSpec fp8_gpu() { return test::simple_gpu(2000.0); }  // 500 TFLOP/s bf16, 1000 fp8, 2 TB/s achieved

ModelArch llama3_8b() { return ModelArch::from_hf_config(test::scenario_path("models/llama-3-8b.json")); }

std::string scenario(const std::filesystem::path& dir, const std::string& extra) {
  return test::write_file(dir / "s.toml", test::base_scenario_text() + extra +
                                              "[workload]\nnum_requests = 1\n[workload.arrival]\nimpl = \"poisson\"\n"
                                              "rate = 1.0\n[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 10\n"
                                              "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 10\n");
}

}  // namespace

TEST_CASE("fp8 GEMMs: 1-byte inputs, bf16 output, the fp8 rate where the GPU has one", "[quant]") {
  const RooflinePredictor r(fp8_gpu());
  // Compute-bound: 2 x 8192 x 8192 x 8192 FLOPs at 1000 TFLOP/s + 1 us.
  const GemmShape big{"x", 8192, 8192, 8192, 2.0, 1.0, true};
  CHECK(r.gemm(big).time.v == Approx(2.0 * 8192.0 * 8192 * 8192 / 1000e12 + 1e-6).epsilon(1e-12));
  // Memory-bound: X and W at 1 byte, Y at 2 bytes, over 2 TB/s + 1 us.
  const GemmShape small{"x", 1, 4096, 4096, 2.0, 1.0, true};
  CHECK(small.bytes().v == 4096.0 + 4096.0 * 4096 + 2.0 * 4096);
  CHECK(r.gemm(small).time.v == Approx(small.bytes().v / 2e12 + 1e-6).epsilon(1e-12));
  // Without fp8 tensor cores the math runs at the bf16 rate.
  GpuSpec old = fp8_gpu();
  old.fp8_peak = FlopsPerSec{0.0};
  CHECK(RooflinePredictor(old).gemm(big).time.v == Approx(2.0 * 8192.0 * 8192 * 8192 / 500e12 + 1e-6).epsilon(1e-12));
  // Weight-only fp8 (bf16 math): X and Y at 2 bytes, W at 1.
  const GemmShape w8a16{"x", 1, 4096, 4096, 2.0, 1.0, false};
  CHECK(w8a16.bytes().v == 2.0 * 4096 + 4096.0 * 4096 + 2.0 * 4096);
}

TEST_CASE("fp8 weights halve the linear layers only, the step model adds the activation quantization", "[quant]") {
  const ModelArch bf16 = llama3_8b();
  ModelArch fp8 = bf16;
  fp8.quantization = Quantization::fp8;
  // Llama-3-8B: 4096 x (4096 + 2 x 1024) + 4096 x 4096 + 3 x 4096 x 14336 = 218103808 linear parameters per layer.
  CHECK(bf16.linear_params_per_layer() == 218103808.0);
  CHECK(bf16.weight_bytes().v - fp8.weight_bytes().v == 32.0 * 218103808.0);
  auto pred = std::make_shared<const RooflinePredictor>(fp8_gpu());
  const StepModel m16(bf16, fp8_gpu(), ParallelConfig{}, pred, {}, nullptr);
  const StepModel m8(fp8, fp8_gpu(), ParallelConfig{}, pred, {}, nullptr);
  CHECK(m16.weight_bytes_per_gpu().v - m8.weight_bytes_per_gpu().v == 32.0 * 218103808.0);
  // A decode step of 64 sequences: faster with fp8 weights, and the breakdown shows the quantization kernels.
  BatchShape b;
  b.num_decodes = 64;
  b.decode_context_tokens = 64 * 1024;
  b.num_sampled = 64;
  CHECK(m8.step_time(b).v < m16.step_time(b).v);
  const auto ops = m8.breakdown(b);
  bool quant = false;
  int separate_quant_kernels = 0;
  for (const auto& o : ops.ops) separate_quant_kernels += o.name.ends_with("_input_quant");
  for (const auto& o : ops.ops) quant = quant || o.name == "o_input_quant";
  CHECK(quant);
  CHECK(separate_quant_kernels == 1);  // the others are fused into the norms and the activation
}

TEST_CASE("fp8 checkpoints from config.json's quantization_config, other methods need a scenario choice",
          "[quant][bad-input]") {
  const auto dir = test::temp_dir("quantcfg");
  std::string text = test::read_file(test::scenario_path("models/llama-3-8b.json"));
  const auto brace = text.rfind('}');
  auto with = [&](const std::string& name, const std::string& qc) {
    return test::write_file(dir / name, text.substr(0, brace) + ", \"quantization_config\": " + qc + "}");
  };
  for (const auto& qc : {std::string(R"({"quant_method": "fp8", "activation_scheme": "dynamic"})"),
                         std::string(R"({"quant_method": "fbgemm_fp8"})"),
                         std::string(R"({"quant_method": "modelopt", "quant_algo": "FP8"})"),
                         std::string(R"({"quant_method": "compressed-tensors", "config_groups": {"group_0": )"
                                     R"({"weights": {"num_bits": 8, "type": "float"}}}})")}) {
    INFO(qc);
    const ModelArch m = ModelArch::from_hf_config(with("fp8.json", qc));
    CHECK(m.quantization == Quantization::fp8);
    CHECK(m.quant_method_modelled);
  }
  const std::string int4 = R"({"quant_method": "compressed-tensors", "config_groups": {"group_0": )"
                           R"({"weights": {"num_bits": 4, "type": "int"}}}})";
  CHECK(ModelArch::from_hf_config(with("w4.json", int4)).quantization == Quantization::none);
  CHECK_FALSE(ModelArch::from_hf_config(with("w4.json", int4)).quant_method_modelled);

  // A scenario on a checkpoint whose scheme is not modelled fails naming the file and the method, unless the
  // scenario says how to cost it.
  const std::string awq = with("awq.json", R"({"quant_method": "awq"})");
  const std::string scn = test::write_file(dir / "s.toml", "[model]\nconfig = \"" + awq + "\"\n[hardware]\ngpu = \"h100-sxm\"\n"
                                           "[workload]\nnum_requests = 1\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
                                           "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 10\n"
                                           "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 10\n");
  const auto r = test::run_cli("run " + scn + " --out " + (dir / "out").string());
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
  CHECK(r.output.find("s.toml:2:") != std::string::npos);
  CHECK(r.output.find("quant_method 'awq' is not modelled") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "out"));
  CHECK(test::run_cli("run " + scn + " --out " + (dir / "out").string() + " --set model.quantization='\"fp8\"'").code == 0);
}

TEST_CASE("scenario keys: model.quantization and engine.kv_cache_dtype", "[quant]") {
  const auto dir = test::temp_dir("quantscn");
  const ScenarioLoader base(scenario(dir, ""), {});
  const ScenarioLoader kv8(scenario(dir, "[engine]\nkv_cache_dtype = \"fp8\"\n"), {});
  // Same memory for the KV cache, half the bytes per token: twice the blocks (give or take the rounding).
  const double ratio = double(kv8.scenario().replica.num_kv_blocks) / double(base.scenario().replica.num_kv_blocks);
  CHECK(ratio == Approx(2.0).epsilon(1e-3));
  ScenarioOptions fp8_weights;
  fp8_weights.sets.emplace_back("model.quantization", "\"fp8\"");
  const ScenarioLoader w8(scenario(dir, "[engine]\n"), fp8_weights);
  CHECK(w8.scenario().step_model->weight_bytes_per_gpu().v < 0.6 * base.scenario().step_model->weight_bytes_per_gpu().v);
  CHECK(w8.scenario().replica.num_kv_blocks > base.scenario().replica.num_kv_blocks);

  const auto bad_q = test::run_cli("run " + scenario(dir, "") + " --set model.quantization='\"int4\"'");
  CHECK(bad_q.code == 2);
  CHECK(bad_q.output.find("model.quantization") != std::string::npos);
  CHECK(test::count_lines(bad_q.output) == 1);
  const auto bad_kv = test::run_cli("run " + scenario(dir, "[engine]\nkv_cache_dtype = \"int8\"\n"));
  CHECK(bad_kv.code == 2);
  CHECK(bad_kv.output.find("kv_cache_dtype") != std::string::npos);
  CHECK(test::count_lines(bad_kv.output) == 1);
}

TEST_CASE("an fp8 KV cache halves the K/V bytes decode attention reads, not Q and O", "[quant]") {
  const AttentionShape bf16{32, 8, 128, 2.0}, fp8{32, 8, 128, 1.0};
  // 4 x 1024 cached tokens: K and V 2 x 4096 x 8 x 128 elements; Q and O 2 x 4 x 32 x 128 elements at 2 bytes.
  CHECK(decode_attention_bytes(fp8, 4, 4096).v == 2.0 * 4096 * 8 * 128 * 1.0 + 2.0 * 4 * 32 * 128 * 2.0);
  CHECK(decode_attention_bytes(bf16, 4, 4096).v == 2.0 * 4096 * 8 * 128 * 2.0 + 2.0 * 4 * 32 * 128 * 2.0);
  // The calibrated predictor reads the bf16 profile at the same KV bytes: half the cached tokens.
  const CalibratedPredictor p(test::h200(), test::h200_profile());
  for (const std::int64_t b : {1, 16, 128}) {
    CHECK(p.attention_decode(fp8, b, b * 4096).time.v == p.attention_decode(bf16, b, b * 2048).time.v);
  }
}

TEST_CASE("calibrated fp8 GEMMs: measured fp8 rows, or the bf16 curve scaled by the fits", "[quant][calibrated]") {
  const GpuSpec h200 = test::h200();
  const auto shipped = test::h200_profile();
  const CalibratedPredictor p(h200, shipped);
  std::map<std::string, FamilyReport> by;
  for (const auto& r : p.report()) by[r.family] = r;
  // The shipped profile measures fp8 for the Llama-3-70B TP-8 shapes only: Llama-3-8B's qkv in fp8 is its bf16
  // curve scaled by the ratio of the rooflines fitted to the profile's fp8 and bf16 rows.
  const RooflineFit bf16_fit = by.at("gemm").fit;
  const RooflineFit fp8_fit = by.at("gemm fp8_e4m3").fit;
  CHECK(fp8_fit.flops_per_s > 1.5 * bf16_fit.flops_per_s);
  for (const std::int64_t m : {1, 16384}) {
    double measured = 0;
    for (const auto& g : shipped->gemm) {
      if (g.op == "l8b_qkv" && g.m == m) measured = g.median_us * 1e-6;
    }
    const GemmShape g16{"qkv", m, 6144, 4096, 2.0};
    const GemmShape g8{"qkv", m, 6144, 4096, 2.0, 1.0, true};
    const double expect = measured * fp8_fit.predict(g8.flops().v, g8.bytes().v) /
                          bf16_fit.predict(g16.flops().v, g16.bytes().v);
    CHECK(p.gemm(g8).time.v == Approx(expect).epsilon(1e-12));
    CHECK(p.gemm(g8).time.v < measured);
  }
  // A shape measured in fp8 (l70b_tp8_qkv, N = 1280, K = 8192) is its own fp8 curve.
  for (const auto& g : shipped->gemm) {
    if (g.op == "l70b_tp8_qkv" && g.dtype == "fp8_e4m3" && (g.m == 1 || g.m == 4096)) {
      CHECK(p.gemm(GemmShape{"qkv", g.m, 1280, 8192, 2.0, 1.0, true}).time.v == Approx(g.median_us * 1e-6).epsilon(1e-12));
    }
  }

  // A profile with fp8 rows: they are used as measured.
  const auto dir = test::temp_dir("fp8profile");
  test::write_file(dir / "profile.json", "{\"gpu\": \"h200\"}");
  test::write_file(dir / "gemm.csv",
                   "op,M,N,K,dtype,median_us,min_us,max_us\n"
                   "qkv,1,6144,4096,bf16,20,19,21\nqkv,1024,6144,4096,bf16,70,69,71\nqkv,16384,6144,4096,bf16,1190,1180,1200\n"
                   "qkv,1,6144,4096,fp8_e4m3,12,11,13\nqkv,1024,6144,4096,fp8_e4m3,40,39,41\n"
                   "qkv,16384,6144,4096,fp8_e4m3,640,630,650\n");
  const CalibratedPredictor q(h200, std::make_shared<const CalibrationProfile>(CalibrationProfile::load(dir.string())));
  CHECK(q.gemm(GemmShape{"qkv", 1024, 6144, 4096, 2.0, 1.0, true}).time.v == Approx(40e-6).epsilon(1e-12));
  CHECK(q.gemm(GemmShape{"qkv", 1024, 6144, 4096, 2.0}).time.v == Approx(70e-6).epsilon(1e-12));
  bool fp8_row = false;
  for (const auto& r : q.report()) fp8_row = fp8_row || (r.family == "gemm:qkv fp8_e4m3" && r.points == 3);
  CHECK(fp8_row);
}

TEST_CASE("fp8 attention (FlashAttention-3 on an fp8 KV cache): Q in fp8, the fp8 rate", "[quant]") {
  const RooflinePredictor r(fp8_gpu());
  AttentionShape a{32, 8, 128, 1.0};
  a.fp8 = true;
  const std::vector<PrefillChunk> chunk{{8192, 0}};
  // Q 8192 x 32 x 128 at 1 byte in, O at 2 bytes out; K and V 8192 x 8 x 128 each at 1 byte.
  CHECK(prefill_attention_bytes(a, chunk).v == 8192.0 * 32 * 128 * 3.0 + 2.0 * 8192 * 8 * 128);
  const double flops = prefill_attention_flops(a, chunk).v;
  CHECK(r.attention_prefill(a, chunk).time.v == Approx(flops / (1000e12 * kAttentionComputeShare) + 1e-6).epsilon(1e-12));
  a.fp8 = false;
  CHECK(r.attention_prefill(a, chunk).time.v == Approx(flops / (500e12 * kAttentionComputeShare) + 1e-6).epsilon(1e-12));

  // The step model turns it on for an fp8 KV cache on a GPU with fp8 tensor cores, with a Q-quantization kernel.
  ModelArch m = llama3_8b();
  m.kv_bytes_per_element = 1.0;
  BatchShape b;
  b.prefills.push_back({4096, 0});
  b.num_sampled = 1;
  auto has_q_quant = [&](const GpuSpec& g) {
    const StepModel sm(m, g, ParallelConfig{}, std::make_shared<const RooflinePredictor>(g), {}, nullptr);
    for (const auto& o : sm.breakdown(b).ops) {
      if (o.name == "attn_q_quant") return true;
    }
    return false;
  };
  CHECK(has_q_quant(fp8_gpu()));
  CHECK_FALSE(has_q_quant(test::simple_gpu()));  // no fp8 tensor cores: bf16 attention on the fp8 cache

  // Calibrated: the bf16 measurement scaled by the fitted roofline at the fp8/bf16 rate ratio.
  const GpuSpec h200 = test::h200();
  const auto profile = test::h200_profile();
  const CalibratedPredictor p(h200, profile);
  RooflineFit fit{};
  for (const auto& row : p.report()) {
    if (row.family == "attention_prefill") fit = row.fit;
  }
  RooflineFit fit8 = fit;
  fit8.flops_per_s *= 1979.0 / 989.0;  // H200 datasheet fp8 / bf16
  double measured = 0;
  for (const auto& row : profile->attention) {
    if (row.op == "prefill" && row.hq == 32 && row.q_len == 8192) measured = row.median_us * 1e-6;
  }
  AttentionShape bf16{32, 8, 128, 2.0}, q8{32, 8, 128, 2.0};
  q8.fp8 = true;
  const double f = prefill_attention_flops(bf16, chunk).v;
  const double expect = measured * fit8.predict(f, prefill_attention_bytes(q8, chunk).v) /
                        fit.predict(f, prefill_attention_bytes(bf16, chunk).v);
  AttentionShape kv8{32, 8, 128, 1.0};
  kv8.fp8 = true;
  CHECK(p.attention_prefill(kv8, chunk).time.v == Approx(expect).epsilon(1e-12));
  CHECK(p.attention_prefill(kv8, chunk).time.v < 0.75 * measured);
}
