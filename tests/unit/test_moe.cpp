// Mixture-of-experts and multi-head latent attention: architecture, memory, expert routing, grouped GEMMs.
#include <catch2/catch.hpp>

#include <cmath>
#include <tuple>

#include "helpers.h"
#include "step_helpers.h"
#include "models/arch/model_arch.h"
#include "models/common/error.h"
#include "models/cost/moe_mla_cost.h"
#include "models/cost/moe_routing.h"
#include "models/cost/roofline.h"
#include "models/cost/step_model.h"

using namespace servesim;

namespace {

ModelArch model(const std::string& name) { return ModelArch::from_hf_config(test::scenario_path("models/" + name)); }

using test::FreeComm;
using test::op_named;

// A scenario of `config` (scenarios/models/) on one H100: 20 requests of 512 + 32 tokens at 5 req/s.
std::string one_h100_scenario(const std::string& config) {
  return "[model]\nconfig = \"" + test::scenario_path("models/" + config) +
         "\"\n[hardware]\ngpu = \"h100-sxm\"\n[workload]\nnum_requests = 20\n"
         "[workload.arrival]\nimpl = \"poisson\"\nrate = 5.0\n"
         "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 512\n"
         "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 32\n";
}

BatchShape decodes(std::int64_t n, std::int64_t context) {
  BatchShape b;
  for (std::int64_t i = 0; i < n; ++i) b.add_decode(context);
  b.num_sampled = n;
  return b;
}

}  // namespace

TEST_CASE("Mixtral-8x7B: 46.7 B parameters, 87.0 GiB in bf16, every expert counted", "[moe]") {
  const ModelArch m = model("mixtral-8x7b.json");
  REQUIRE(m.moe.enabled());
  CHECK(m.moe.num_experts == 8);
  CHECK(m.moe.experts_per_token == 2);
  CHECK(m.moe.expert_intermediate_size == 14336);  // Mixtral's experts use intermediate_size
  CHECK(m.moe.moe_layers() == 32);
  // 32 x (attention 41,943,040 + 8 experts x 3 x 4096 x 14336 + router 4096 x 8 + norms 8192) + 2 x 32000 x 4096 + 4096
  CHECK(m.params() == 46702792704.0);
  CHECK(m.weight_bytes().v / double(1ull << 30) == Approx(86.99).margin(0.005));
  // One token runs 2 of the 8 experts: 12.9 B active parameters.
  CHECK(m.active_params() == 46702792704.0 - 32.0 * 6.0 * 3.0 * 4096.0 * 14336.0);
}

TEST_CASE("Mixtral-8x7B does not fit one 80 GB H100 and fits two with TP 2", "[moe]") {
  const auto dir = test::temp_dir("moe-fit");
  const std::string base = one_h100_scenario("mixtral-8x7b.json");
  const auto one = test::write_file(dir / "one.toml", base);
  const auto r1 = test::run_cli("run " + one + " --out " + (dir / "o1").string());
  CHECK(r1.code == 2);
  CHECK(r1.output.find("does not fit") != std::string::npos);
  CHECK(r1.output.find("87.0") != std::string::npos);  // the weights, in GiB
  CHECK_FALSE(std::filesystem::exists(dir / "o1"));
  const auto two = test::write_file(
      dir / "two.toml", base + "[parallel]\ntensor_parallel_size = 2\ntopology = \"dgx-h100\"\n");
  const auto r2 = test::run_cli("run " + two + " --out " + (dir / "o2").string());
  INFO(r2.output);
  CHECK(r2.code == 0);
  CHECK(std::filesystem::exists(dir / "o2" / "summary.json"));
}

TEST_CASE("MoE activation reserve: vLLM's fused_experts workspaces at the profile run's peak", "[moe][memory]") {
  // Mixtral-8x7B with TP 2, 8,192 tokens: each GPU runs both experts' halves (N = 2 x 14336 / 2) for k = 2 rows per
  // token: residual and input 2 x 8192 x 4096, output 8192 x 4096, cache13 16384 x max(14336, 4096), cache2
  // 16384 x 7168, in bf16.
  const ModelArch mixtral = model("mixtral-8x7b.json");
  ParallelConfig tp2;
  tp2.tensor = 2;
  CHECK(moe_activation_peak(mixtral, tp2, 8192).value() ==
        2.0 * (3.0 * 8192.0 * 4096.0 + 16384.0 * (14336.0 + 7168.0)));
  // Past VLLM_FUSED_MOE_CHUNK_SIZE (32,768 tokens) the workspaces stay one pass's.
  CHECK(moe_activation_peak(mixtral, tp2, 65536).value() ==
        2.0 * (3.0 * 65536.0 * 4096.0 + 65536.0 * (14336.0 + 7168.0)));
  // DeepSeek-V3, EP 16 with data-parallel attention, 4,096 tokens a rank: vLLM's default backend gathers all 16
  // ranks' tokens with their 256 router logits, and the experts (whole: N = 2 x 2048) run one 32,768-token pass of
  // 8 rows each through the modular kernel (fp8 experts): max(N / 2, h) + max(N, h) = 2 h per row; activations in
  // bf16 (the checkpoint's dtype, its weights fp8).
  const ModelArch v3 = model("deepseek-v3.json");
  ParallelConfig ep16;
  ep16.data = 16;
  ep16.expert = 16;
  const double h = 7168.0;
  CHECK(moe_activation_peak(v3, ep16, 4096).value() ==
        2.0 * (2.0 * 4096.0 * h + 65536.0 * (h + 256.0) + 65536.0 * h + 32768.0 * 8.0 * 2.0 * h));
  // Per-tensor fp8 experts (no weight_block_size) stay on fused_experts' Triton path and its narrower workspaces.
  ModelArch v3_per_tensor = v3;
  REQUIRE(v3.fp8_block_scaled);
  v3_per_tensor.fp8_block_scaled = false;
  CHECK(moe_activation_peak(v3_per_tensor, ep16, 4096).value() ==
        2.0 * (2.0 * 4096.0 * h + 65536.0 * (h + 256.0) + 65536.0 * h + 32768.0 * 8.0 * (h + 2048.0)));
  // DeepEP's low-latency kernels: each of the rank's 16 experts has room for 256 tokens of every rank, received in
  // fp8, the experts' output in their workspace; the same whatever the tokens.
  ep16.all2all_backend = "deepep_low_latency";
  const double ll = 16.0 * 256.0 * 16.0;
  CHECK(moe_activation_peak(v3, ep16, 4096).value() == 2.0 * (2.0 * 4096.0 * h + ll * 2.0 * h) + ll * h);
  CHECK(moe_activation_peak(v3, ep16, 64).value() == 2.0 * (2.0 * 64.0 * h + ll * 2.0 * h) + ll * h);
  // A dense model has none.
  CHECK(moe_activation_peak(model("llama-3-8b.json"), tp2, 8192).value() == 0.0);
}

TEST_CASE("DeepSeek-V2-Lite: MLA caches (512 + 64) x 27 x 2 B = 31,104 B per token on every TP rank", "[moe][mla]") {
  const ModelArch m = model("deepseek-v2-lite.json");
  REQUIRE(m.mla.enabled());
  CHECK(m.mla.q_lora_rank == 0);
  CHECK(m.kv_bytes_per_token().v == 31104.0);
  // first_k_dense_replace = 1: layer 0 is a dense MLP, the other 26 are MoE with 2 shared experts.
  CHECK(m.moe.moe_layers() == 26);
  CHECK_FALSE(m.is_moe_layer(0));
  CHECK(m.moe.shared_intermediate_size == 2 * 1408);
  auto pred = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  const StepModel tp1(m, test::simple_gpu(), ParallelConfig{1, 1, 0.0}, pred, {}, nullptr);
  const StepModel tp2(m, test::simple_gpu(), ParallelConfig{2, 1, 0.0}, pred, {}, std::make_shared<FreeComm>());
  CHECK(tp1.kv_bytes_per_token_per_gpu().v == 31104.0);
  CHECK(tp2.kv_bytes_per_token_per_gpu().v == 31104.0);  // the latent is not split by TP (vLLM replicates it)
  // About 15.7 B parameters (DeepSeek's "16B"), half of the routed experts' weights per GPU at TP 2.
  CHECK(m.params() / 1e9 == Approx(15.71).margin(0.01));
  CHECK(tp2.weight_bytes_per_gpu().v < 0.52 * tp1.weight_bytes_per_gpu().v);
}

TEST_CASE("DeepSeek-V3: 671 B parameters, 37.6 B active, fp8 weights", "[moe][mla]") {
  const ModelArch m = model("deepseek-v3.json");
  CHECK(m.params() == 671026404352.0);
  CHECK(m.active_params() == 37552282624.0);
  CHECK(m.quantization == Quantization::fp8);
  CHECK(m.moe.moe_layers() == 58);  // first_k_dense_replace = 3
  CHECK(m.kv_bytes_per_token().v == 61.0 * 576.0 * 2.0);
}

TEST_CASE("decode with batch B reads the weights of E (1 - (1 - k/E)^B) experts per layer", "[moe]") {
  const ModelArch m = model("mixtral-8x7b.json");
  auto pred = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  const StepModel sm(m, test::simple_gpu(), ParallelConfig{1, 1, 0.0}, pred, {}, nullptr);
  const double E = 8, k = 2, h = 4096, I = 14336;
  for (const std::int64_t B : {1, 3, 16}) {
    const StepCost c = sm.breakdown(decodes(B, 100));
    const double hit = E * (1.0 - std::pow(1.0 - k / E, double(B)));
    // gate_up: hit x (2I x h) weights + B x k rows x (h in + 2I out), bf16; summed over the 32 MoE layers.
    const double expected = hit * 2.0 * I * h * 2.0 + double(B) * k * (h + 2.0 * I) * 2.0;
    INFO("B = " << B);
    CHECK(op_named(c, "moe_gate_up").bytes.v == Approx(32.0 * expected).epsilon(1e-12));
    if (B == 1) CHECK(hit == Approx(2.0));  // batch 1 touches exactly top-k experts
  }
}

TEST_CASE("expert routing: uniform, Zipf and measured loads", "[moe]") {
  const auto u = ExpertRouting::uniform(8, 2);
  CHECK(u.busiest_share() == Approx(1.0 / 8.0));
  const auto l = u.load(4.0);
  CHECK(l.rows == Approx(8.0));
  CHECK(l.groups == Approx(8.0 * (1.0 - std::pow(0.75, 4.0))));
  const auto z = ExpertRouting::zipf(8, 2, 1.0);
  double sum = 0.0;
  for (const double q : z.select()) sum += q;
  CHECK(sum == Approx(2.0));
  CHECK(z.select().front() > z.select().back());
  // A measured histogram whose hot expert would be picked with probability > 1 is capped at 1 (water-filling).
  const auto capped = ExpertRouting::from_loads({100, 1, 1, 1}, 2, "loads");
  CHECK(capped.select().front() == 1.0);
  CHECK(capped.select()[1] == Approx(1.0 / 3.0));
  CHECK_THROWS_AS(ExpertRouting::uniform(4, 5), InputError);
  CHECK_THROWS_AS(ExpertRouting::from_loads({0, 0}, 1, "loads"), InputError);
  CHECK_THROWS_AS(ExpertRouting::zipf(4, 1, -1.0), InputError);
}

TEST_CASE("skew: doubling the busiest expert's share doubles the grouped GEMMs' compute", "[moe]") {
  const ModelArch m = model("mixtral-8x7b.json");
  auto pred = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  // Busiest expert's share 2/8 vs 4/10 of the routed rows (loads 2,1,...,1 and 4,1,...,1 over 8 experts).
  std::vector<double> a(8, 1.0), b(8, 1.0);
  a[0] = 2.0;
  b[0] = 4.0;
  const auto ra = ExpertRouting::from_loads(a, 2, "a");
  const auto rb = ExpertRouting::from_loads(b, 2, "b");
  CHECK(ra.busiest_share() == Approx(2.0 / 9.0));
  CHECK(rb.busiest_share() == Approx(4.0 / 11.0));
  const StepModel sa(m, test::simple_gpu(), ParallelConfig{1, 1, 0.0}, pred, {}, nullptr, ra);
  const StepModel sb(m, test::simple_gpu(), ParallelConfig{1, 1, 0.0}, pred, {}, nullptr, rb);
  BatchShape prefill;
  prefill.prefills.push_back({8192, 0});
  prefill.num_sampled = 1;
  const double T = 8192, k = 2, h = 4096, I = 14336;
  for (const auto* s : {&sa, &sb}) {
    const StepCost c = s->breakdown(prefill);
    // 8192 tokens hit every expert: the grouped GEMM runs 8 groups of the busiest expert's rows.
    const double busiest = T * k * s->routing().busiest_share();
    const double flops = 2.0 * 8.0 * busiest * 2.0 * I * h;
    const StepOp& gu = op_named(c, "moe_gate_up");
    CHECK(gu.flops.v == Approx(32.0 * flops).epsilon(1e-9));
    CHECK(gu.bound == Bound::compute);
    CHECK(gu.time.v == Approx(32.0 * (flops / 500e12 + 1e-6)).epsilon(1e-9));  // 500 TFLOP/s achieved + launch
  }
  const double ta = op_named(sa.breakdown(prefill), "moe_gate_up").time.v;
  const double tb = op_named(sb.breakdown(prefill), "moe_gate_up").time.v;
  CHECK(tb / ta == Approx((4.0 / 11.0) / (2.0 / 9.0)).epsilon(1e-3));
}

TEST_CASE("expert parallelism: experts split whole over the ranks, the busiest rank bounds the layer", "[moe]") {
  const ModelArch m = model("mixtral-8x7b.json");
  auto pred = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  auto comm = std::make_shared<FreeComm>();
  ParallelConfig tp{4, 1, 0.0};
  ParallelConfig ep{4, 1, 0.0, 4, 1};
  const StepModel s_tp(m, test::simple_gpu(), tp, pred, {}, comm);
  const StepModel s_ep(m, test::simple_gpu(), ep, pred, {}, comm);
  // Same weights per GPU: 8 experts x I/4 or 2 experts x I.
  CHECK(s_tp.weight_bytes_per_gpu().v == Approx(s_ep.weight_bytes_per_gpu().v));
  // Batch 1, uniform routing: TP reads a quarter of each of the 2 chosen experts on every GPU; EP reads whole
  // experts, each rank 2 x 1/4 of one expected: the same expected weight bytes per GPU (the rows differ).
  const double rows = 2.0 * 32.0 * 2.0;  // 2 token rows x 32 layers x bf16, per element of the row widths
  const double tp_bytes = op_named(s_tp.breakdown(decodes(1, 10)), "moe_gate_up").bytes.v;
  const double ep_bytes = op_named(s_ep.breakdown(decodes(1, 10)), "moe_gate_up").bytes.v;
  CHECK(tp_bytes - rows * (4096.0 + 2.0 * 14336.0 / 4.0) == Approx(32.0 * 2.0 * 2.0 * 14336.0 / 4.0 * 4096.0 * 2.0));
  CHECK(ep_bytes - 0.25 * rows * (4096.0 + 2.0 * 14336.0) == Approx(32.0 * 2.0 * 2.0 * 14336.0 / 4.0 * 4096.0 * 2.0));
  // Skewed routing: rank 0 holds the two most popular experts and bounds the layer under EP: its grouped GEMM
  // tiles by the hottest expert's rows, 4096 q_0 instead of 4096 x 2/8.
  const auto zipf = ExpertRouting::zipf(8, 2, 1.5);
  const StepModel z_ep(m, test::simple_gpu(), ep, pred, {}, comm, zipf);
  BatchShape prefill;
  prefill.prefills.push_back({4096, 0});
  prefill.num_sampled = 1;
  const double skewed = op_named(z_ep.breakdown(prefill), "moe_gate_up").time.v - 32.0 * 1e-6;  // minus launches
  const double even = op_named(s_ep.breakdown(prefill), "moe_gate_up").time.v - 32.0 * 1e-6;
  CHECK(skewed / even == Approx(zipf.select()[0] / 0.25).epsilon(1e-6));
  // Rank 0's rows under EP: 4096 x (q_0 + q_1); its grouped GEMM tiles both experts by the busier one's rows.
  const double q0 = zipf.select()[0];
  CHECK(op_named(z_ep.breakdown(prefill), "moe_gate_up").flops.v ==
        Approx(32.0 * 2.0 * 2.0 * 4096.0 * q0 * 2.0 * 14336.0 * 4096.0).epsilon(1e-9));
  CHECK_THROWS_AS(StepModel(m, test::simple_gpu(), ParallelConfig{4, 1, 0.0, 2, 1}, pred, {}, comm), InputError);
  CHECK_THROWS_AS(StepModel(m, test::simple_gpu(), ParallelConfig{1, 1, 0.0, 1, 2}, pred, {}, comm), InputError);
  const ModelArch dense = model("llama-3-8b.json");
  CHECK_THROWS_AS(StepModel(dense, test::simple_gpu(), ep, pred, {}, comm), InputError);
}

TEST_CASE("MoE and MLA config.json errors name the key", "[moe]") {
  const auto dir = test::temp_dir("moe-bad");
  const std::string mix = test::read_file(test::scenario_path("models/mixtral-8x7b.json"));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = mix;
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
    return test::write_file(dir / "m.json", s);
  };
  auto message = [](const std::string& path) {
    try {
      (void)ModelArch::from_hf_config(path);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message(with("\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 9")),
             Catch::Contains("num_experts_per_tok (9) exceeds num_local_experts (8)"));
  CHECK_THAT(message(with("\"num_local_experts\": 8", "\"num_local_experts\": null")),
             Catch::Contains("num_experts_per_tok' is set but no number of routed experts"));
  CHECK_THAT(message(with("\"num_local_experts\": 8", "\"num_local_experts\": 8, \"num_experts\": 8")),
             Catch::Contains("both give the number of experts"));
  CHECK_THAT(message(with("\"model_type\": \"mixtral\"", "\"model_type\": \"mixtral\", \"mlp_only_layers\": [40]")),
             Catch::Contains("mlp_only_layers: 40 is not a layer index"));
  CHECK_THAT(message(with("\"model_type\": \"mixtral\"", "\"model_type\": \"mixtral\", \"q_lora_rank\": 64")),
             Catch::Contains("q_lora_rank' is set without kv_lora_rank"));
}

namespace {
double op_ms(const std::string& json, const std::string& op) {
  const auto at = json.find("\"name\": \"" + op + "\"");
  if (at == std::string::npos) return -1.0;
  const auto t = json.find("\"time_ms\": ", at);
  return std::stod(json.substr(t + 11));
}
}  // namespace

TEST_CASE("DeepSeek-V3 over two DGX H100 with EP 16: the inter-node all-to-all leads a small decode step",
          "[moe][mla]") {
  const std::string scenario = test::scenario_path("deepseek-v3-ep16-2x-dgx-h100.toml");
  // DeepEP's low-latency kernels, as vLLM's expert-parallel guide runs multi-node decode.
  const std::string ll = " --set 'parallel.all2all_backend=\"deepep_low_latency\"'";
  const auto r = test::run_cli("step " + scenario + ll + " --decode 16x2000 --json");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const double a2a = op_ms(r.output, "moe_dispatch") + op_ms(r.output, "moe_combine");
  CHECK(op_ms(r.output, "moe_dispatch") > 0.0);
  CHECK(op_ms(r.output, "tp_all_reduce_moe") < 0.0);  // no all-reduce with data-parallel attention
  for (const char* other : {"moe_gate_up", "moe_down", "o", "attention_decode", "mla_q_b"}) {
    INFO(other);
    CHECK(a2a > op_ms(r.output, other));
  }
  // At DeepEP's benchmark batch (128 tokens per rank), the same replica inside one node (NVLink): the dispatch
  // halves (at 1 token per rank both are mostly the kernels' fixed time).
  const auto two_nodes = test::run_cli("step " + scenario + ll + " --decode 2048x2000 --json");
  const auto one_node = test::run_cli("step " + scenario + ll +
                                      " --set parallel.topology='\"hgx-h200\"' --set hardware.gpu='\"h200\"'"
                                      " --set parallel.data_parallel_size=8 --set parallel.expert_parallel_size=8"
                                      " --decode 1024x2000 --json");
  INFO(one_node.output);
  REQUIRE(one_node.code == 0);
  REQUIRE(two_nodes.code == 0);
  CHECK(op_ms(one_node.output, "moe_dispatch") * 2.0 < op_ms(two_nodes.output, "moe_dispatch"));
  // DeepSeek-V3 on one 8 x H200 node runs with TP 8 (experts split over TP, all-reduces) and with EP 8.
  for (const char* par : {"--set parallel.tensor_parallel_size=8 --set parallel.data_parallel_size=1"
                          " --set parallel.expert_parallel_size=1",
                          "--set parallel.data_parallel_size=8 --set parallel.expert_parallel_size=8"}) {
    const auto d = test::temp_dir("moe-h200");
    const auto h200 = test::run_cli("run " + scenario + " --set parallel.topology='\"hgx-h200\"' --set "
                                    "hardware.gpu='\"h200\"' " + par + " --set workload.num_requests=50 --out " +
                                    (d / "o").string());
    INFO(par << "\n" << h200.output);
    CHECK(h200.code == 0);
    CHECK(std::filesystem::exists(d / "o" / "summary.json"));
  }
  // And a run completes with data-parallel attention (KV and engine limits per data-parallel rank).
  const auto dir = test::temp_dir("moe-ep16");
  const auto run = test::run_cli("run " + scenario + " --set workload.num_requests=50 --out " + (dir / "o").string());
  INFO(run.output);
  CHECK(run.code == 0);
}

TEST_CASE("expert and data parallelism that the model or the replica cannot take name the key", "[moe]") {
  const auto dir = test::temp_dir("moe-par");
  const std::string base = test::base_scenario_text() +
                           "[workload]\nnum_requests = 5\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
                           "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 64\n"
                           "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 4\n";
  const auto dense = test::write_file(dir / "dense.toml", base + "[parallel]\ntensor_parallel_size = 2\n"
                                                                 "expert_parallel_size = 2\ntopology = \"dgx-h100\"\n");
  auto r = test::run_cli("run " + dense + " --out " + (dir / "o").string());
  CHECK(r.code == 2);
  CHECK(r.output.find("expert_parallel_size") != std::string::npos);
  CHECK(r.output.find("no mixture-of-experts layers") != std::string::npos);
  const auto dp = test::write_file(dir / "dp.toml", base + "[parallel]\ndata_parallel_size = 2\ntopology = \"dgx-h100\"\n");
  r = test::run_cli("run " + dp + " --out " + (dir / "o").string());
  CHECK(r.code == 2);
  CHECK(r.output.find("data_parallel_size") != std::string::npos);
  const auto routing = test::run_cli("run " + dense + " --set 'model.expert_routing=\"zipf\"' --out " +
                                     (dir / "o").string());
  CHECK(routing.code == 2);
  CHECK(routing.output.find("expert_routing") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "o"));
}

TEST_CASE("gpt-oss: parameters and active parameters as published, MXFP4 experts at 4.25 bits", "[moe][gpt-oss]") {
  // Per layer: attention q/k/v/o 2880 x (4096 + 512 + 512) + 4096 x 2880 = 26,542,080 and their biases
  // 4096 + 512 + 512 + 2880 = 8,000; 64 sinks; two norms 5,760; router 2880 x E + E; each expert gate_up
  // 2880 x 5760 + 5760 and down 2880 x 2880 + 2880 = 24,891,840. Embedding and untied LM head 201088 x 2880 each,
  // final norm 2880.
  const double attention = 26542080.0 + 8000.0 + 64.0 + 5760.0;
  const double expert = 2880.0 * 5760.0 + 5760.0 + 2880.0 * 2880.0 + 2880.0;
  const double tables = 2.0 * 201088.0 * 2880.0 + 2880.0;
  for (const auto& [name, layers, experts, total, active] :
       {std::tuple{"gpt-oss-20b.json", 24.0, 32.0, 20914757184.0, 3608307264.0},
        std::tuple{"gpt-oss-120b.json", 36.0, 128.0, 116829156672.0, 5132849472.0}}) {
    INFO(name);
    const ModelArch m = model(name);
    REQUIRE(m.moe.enabled());
    CHECK(m.moe.num_experts == experts);
    CHECK(m.moe.experts_per_token == 4);
    CHECK(m.quantization == Quantization::mxfp4);
    CHECK(m.sliding_window == 128);
    CHECK(m.sliding_layers() == layers / 2);  // alternating sliding and full attention
    CHECK(m.params() == layers * (attention + 2880.0 * experts + experts + experts * expert) + tables);
    CHECK(m.params() == total);  // OpenAI's model card: 20.9 B and 116.8 B
    // Active: 4 experts a token; OpenAI counts active parameters without the embedding (3.6 B and 5.1 B).
    CHECK(m.active_params() - 201088.0 * 2880.0 == active);
    // Weights: the experts' matrices at 4.25 bits (4-bit values + an 8-bit scale per 32), the rest bf16.
    const double expert_weights = layers * experts * (2880.0 * 5760.0 + 2880.0 * 2880.0);
    CHECK(m.weight_bytes().v == expert_weights * 4.25 / 8.0 + (total - expert_weights) * 2.0);
  }
  // 13.76 GB and 65.25 GB: the sizes of the published checkpoints (12.8 and 60.8 GiB).
  CHECK(model("gpt-oss-20b.json").weight_bytes().v == 13761264768.0);
  CHECK(model("gpt-oss-120b.json").weight_bytes().v == 65248815744.0);
}

TEST_CASE("gpt-oss-120b fits one 80 GB H100, its expert GEMMs read MXFP4 weights, attention bf16", "[moe][gpt-oss]") {
  const ModelArch m = model("gpt-oss-120b.json");
  auto pred = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  const StepModel sm(m, test::simple_gpu(), ParallelConfig{1, 1, 0.0}, pred, {}, nullptr);
  CHECK(sm.weight_bytes_per_gpu().v == m.weight_bytes().v);
  const StepCost c = sm.breakdown(decodes(1, 100));
  // Batch 1: the 4 experts of its token, per MoE layer (36): 4 x 5760 x 2880 weights at 4.25 bits, plus one row in
  // (2880) and out (5760) in bf16.
  CHECK(op_named(c, "moe_gate_up").bytes.v ==
        Approx(36.0 * (4.0 * 5760.0 * 2880.0 * 4.25 / 8.0 + 4.0 * (2880.0 + 5760.0) * 2.0)).epsilon(1e-12));
  // qkv stays bf16: 2880 x 5120 weights at 2 bytes per layer.
  CHECK(op_named(c, "qkv").bytes.v == Approx(36.0 * (2880.0 * 5120.0 * 2.0 + (2880.0 + 5120.0) * 2.0)).epsilon(1e-12));

  const auto dir = test::temp_dir("gpt-oss");
  const std::string base = one_h100_scenario("gpt-oss-120b.json");
  const auto one = test::write_file(dir / "one.toml", base);
  const auto r1 = test::run_cli("run " + one + " --out " + (dir / "o1").string());
  INFO(r1.output);
  CHECK(r1.code == 0);
  // The same checkpoint dequantized to bf16 (quantization = "none"): 217.6 GiB, it no longer fits.
  const auto r2 = test::run_cli("run " + one + " --set 'model.quantization=\"none\"' --out " + (dir / "o2").string());
  CHECK(r2.code == 2);
  CHECK(r2.output.find("does not fit") != std::string::npos);
  // mxfp4 on a dense model names the key.
  const auto dense = test::write_file(dir / "dense.toml", test::base_scenario_text());
  const auto r3 = test::run_cli("run " + dense + " --set 'model.quantization=\"mxfp4\"' --out " + (dir / "o3").string());
  CHECK(r3.code == 2);
  CHECK(r3.output.find("model.quantization") != std::string::npos);
  CHECK(r3.output.find("mixture-of-experts") != std::string::npos);
}
