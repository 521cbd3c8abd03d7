// CUDA graphs as vLLM runs them: capture sizes, padding, which graph a step replays, and the host's launch time
// without them (models/cost/cuda_graphs.h); the scenario keys and `servesim step`'s report.
#include <catch2/catch.hpp>

#include <memory>

#include <nlohmann/json.hpp>

#include "helpers.h"
#include "step_helpers.h"
#include "models/arch/model_arch.h"
#include "models/cost/cuda_graphs.h"
#include "models/cost/roofline.h"
#include "models/cost/step_model.h"
#include "models/cost/step_timer.h"
#include "sim/scenario/scenario.h"

using namespace servesim;

namespace {

BatchShape decodes(std::int64_t n, std::int64_t context) {
  BatchShape b;
  for (std::int64_t i = 0; i < n; ++i) b.add_decode(context);
  b.num_sampled = n;
  return b;
}

CudaGraphConfig vllm_defaults(std::int64_t max_num_seqs) {
  CudaGraphConfig g;
  g.modelled = true;
  g.capture_sizes = default_cuda_graph_capture_sizes(std::min<std::int64_t>(2 * max_num_seqs, 512));
  g.eager_op_host = Seconds{20e-6};
  g.graph_replay_host = Seconds{5e-6};
  return g;
}

StepModel llama8b(CudaGraphConfig graphs) {
  const GpuSpec gpu = test::simple_gpu();
  return StepModel(ModelArch::from_hf_config(test::scenario_path("models/llama-3-8b.json")), gpu, ParallelConfig{},
                   std::make_shared<RooflinePredictor>(gpu), EngineOverhead{}, nullptr, {}, std::move(graphs));
}

}  // namespace

TEST_CASE("vLLM's default capture sizes: 1, 2, 4, multiples of 8 below 256, of 16 from 256", "[cuda-graphs]") {
  const auto s512 = default_cuda_graph_capture_sizes(512);
  CHECK(s512.size() == 3 + 31 + 17);  // 1 2 4 | 8..248 | 256..512
  CHECK(s512.front() == 1);
  CHECK(s512[3] == 8);
  CHECK(s512[33] == 248);
  CHECK(s512[34] == 256);
  CHECK(s512.back() == 512);
  // max_num_seqs 64: min(2 x 64, 512) = 128, the list cut there.
  const auto s128 = default_cuda_graph_capture_sizes(128);
  CHECK(s128.back() == 128);
  CHECK(s128.size() == 3 + 16);
  CHECK(default_cuda_graph_capture_sizes(3) == std::vector<std::int64_t>{1, 2});
  CHECK(default_cuda_graph_capture_sizes(0).empty());
  // The step budget is captured when the list reaches it (max_num_batched_tokens 500 < 512).
  CHECK(default_cuda_graph_capture_sizes(500, 500).back() == 500);
  CHECK(default_cuda_graph_capture_sizes(500, 500)[default_cuda_graph_capture_sizes(500, 500).size() - 2] == 496);
  CHECK(default_cuda_graph_capture_sizes(512, 8192).back() == 512);
}

TEST_CASE("which graph a step replays and the tokens it runs on", "[cuda-graphs]") {
  CudaGraphConfig g = vllm_defaults(256);  // capture sizes up to 512
  // FULL_AND_PIECEWISE (vLLM's default): decodes alone replay the full graph, a prefill chunk the pieces.
  CHECK(g.run_of(true, 17) == GraphRun::full);
  CHECK(g.run_of(false, 17) == GraphRun::piecewise);
  CHECK(g.run_of(true, 513) == GraphRun::eager);  // past the largest capture size
  CHECK(g.padded_tokens(true, 17) == 24);
  CHECK(g.padded_tokens(false, 3) == 4);
  CHECK(g.padded_tokens(true, 257) == 272);
  CHECK(g.padded_tokens(true, 512) == 512);
  CHECK(g.padded_tokens(false, 600) == 600);
  g.mode = CudaGraphMode::full_decode_only;
  CHECK(g.run_of(false, 17) == GraphRun::eager);
  CHECK(g.padded_tokens(false, 17) == 17);  // no graph replayed, no padding
  CHECK(g.padded_tokens(true, 17) == 24);
  g.mode = CudaGraphMode::piecewise;
  CHECK(g.run_of(true, 17) == GraphRun::piecewise);
  g.mode = CudaGraphMode::full;
  CHECK(g.run_of(false, 17) == GraphRun::full);
  g.mode = CudaGraphMode::none;
  CHECK(g.run_of(true, 1) == GraphRun::eager);
  CHECK(g.padded_tokens(true, 17) == 17);
  // Full decode graphs stop at max_num_seqs: 100 decodes pad to 104, past it, so the pieces run (or, with
  // FULL_DECODE_ONLY, nothing); 96 pad to 96.
  g.max_num_seqs = 100;
  g.mode = CudaGraphMode::full_and_piecewise;
  CHECK(g.run_of(true, 100) == GraphRun::piecewise);
  CHECK(g.padded_tokens(true, 100) == 104);
  CHECK(g.run_of(true, 96) == GraphRun::full);
  g.mode = CudaGraphMode::full_decode_only;
  CHECK(g.run_of(true, 100) == GraphRun::eager);
  CHECK(g.padded_tokens(true, 100) == 100);
  g.mode = CudaGraphMode::none;
  // Host time: one replay; layers + 1 replays and an attention call per layer; every operator call.
  CHECK(g.host_time(GraphRun::full, 32, 400.0).v == Approx(5e-6));
  CHECK(g.host_time(GraphRun::piecewise, 32, 400.0).v == Approx(33 * 5e-6 + 32 * 20e-6));
  CHECK(g.host_time(GraphRun::eager, 32, 400.0).v == Approx(400 * 20e-6));
  CHECK(parse_cuda_graph_mode("FULL_AND_PIECEWISE") == CudaGraphMode::full_and_piecewise);
  CHECK_THROWS_WITH(parse_cuda_graph_mode("full"), Catch::Contains("valid: NONE, PIECEWISE, FULL, FULL_DECODE_ONLY"));
}

TEST_CASE("a replayed graph costs the padded tokens, an eager step at least the host's launch time",
          "[cuda-graphs]") {
  const StepModel bare = llama8b(CudaGraphConfig{});
  const StepModel graphs = llama8b(vllm_defaults(256));
  CudaGraphConfig eager_cfg = vllm_defaults(256);
  eager_cfg.mode = CudaGraphMode::none;
  eager_cfg.capture_sizes.clear();
  const StepModel eager = llama8b(eager_cfg);

  // 17 decodes replay the 24-token graph: the token-count operators of 24 tokens, attention of the 17 sequences.
  const BatchShape b17 = decodes(17, 1000);
  const StepCost c = graphs.breakdown(b17);
  CHECK(c.run == GraphRun::full);
  CHECK(c.rank_tokens == 17);
  CHECK(c.padded_tokens == 24);
  CHECK(c.gpu.v == Approx((bare.token_time(24) + bare.attention_time(b17) + bare.sampling_time(17)).v));
  CHECK(c.gpu.v > bare.breakdown(b17).gpu.v);
  // One replay, and the head's final_norm, lm_head and sampling issued after it.
  CHECK(c.host.v == Approx(5e-6 + 3 * 20e-6));

  // Eager: every operator of the breakdown issued from the host, 20 us each. Llama-3-8B: 9 operators per layer
  // (attn_norm, qkv, rope, o, mlp_norm, gate_up, act_mul, down + one attention call) x 32, embedding, final_norm,
  // lm_head, sampling.
  const StepCost e1 = eager.breakdown(decodes(1, 100));
  CHECK(e1.run == GraphRun::eager);
  CHECK(e1.host.v == Approx((9 * 32 + 4) * 20e-6));
  // One decode on this GPU (2 TB/s achieved) reads 16 GB of weights: 8 ms of kernels, more than 5.84 ms of launches.
  CHECK(e1.gpu.v == Approx(bare.breakdown(decodes(1, 100)).gpu.v));
  // A GPU 10x faster leaves the step launch-bound: the GPU waits for the host, operator host_launch_wait.
  GpuSpec fast = test::simple_gpu();
  fast.memory_bandwidth = BytesPerSec{40e12};
  fast.bf16_peak = FlopsPerSec{10000e12};
  const StepModel eager_fast(ModelArch::from_hf_config(test::scenario_path("models/llama-3-8b.json")), fast,
                             ParallelConfig{}, std::make_shared<RooflinePredictor>(fast), EngineOverhead{}, nullptr,
                             {}, eager_cfg);
  const StepCost f = eager_fast.breakdown(decodes(1, 100));
  CHECK(f.gpu.v == Approx((9 * 32 + 4) * 20e-6));
  const StepOp& wait = test::op_named(f, "host_launch_wait");
  CHECK(wait.bound == Bound::overhead);
  double sum = 0;
  for (const auto& o : f.ops) sum += o.time.v;
  CHECK(sum == Approx(f.gpu.v));
  // The event loop's timer gives the same bits as the step model, and books the wait as overhead.
  StepTimer timer(std::make_shared<const StepModel>(eager_fast));
  BoundTimes bounds;
  CHECK(timer.gpu_time(decodes(1, 100), bounds).v == eager_fast.step_time(decodes(1, 100)).v);
  CHECK(bounds.of(Bound::overhead) == Approx(wait.time.v));
  StepTimer graph_timer(std::make_shared<const StepModel>(graphs));
  CHECK(graph_timer.gpu_time(b17, bounds).v == graphs.step_time(b17).v);
}

TEST_CASE("CUDA-graph keys: vLLM's names, defaults, refusals naming the key", "[cuda-graphs]") {
  const std::string base = test::scenario_path("quickstart.toml");
  {
    const ScenarioLoader s(base, ScenarioOptions{});
    const CudaGraphConfig& g = s.scenario().step_model->cuda_graphs();
    CHECK(g.modelled);
    CHECK(g.mode == CudaGraphMode::full_and_piecewise);
    CHECK(g.max_capture_size() == 512);  // min(2 x max_num_seqs 256, 512)
    CHECK(g.eager_op_host.v == Approx(18.9e-6));
    CHECK(g.graph_replay_host.v == Approx(4.56e-6));
  }
  {
    ScenarioOptions o;
    o.sets = {{"engine.max_num_seqs", "32"}};
    CHECK(ScenarioLoader(base, o).scenario().step_model->cuda_graphs().max_capture_size() == 64);
    o.sets = {{"engine.cudagraph_capture_sizes", "[16, 1, 16, 9000]"}, {"engine.max_num_batched_tokens", "8192"}};
    CHECK(ScenarioLoader(base, o).scenario().step_model->cuda_graphs().capture_sizes ==
          std::vector<std::int64_t>{1, 16});
    o.sets = {{"engine.enforce_eager", "true"}};
    const ScenarioLoader eager(base, o);
    CHECK(eager.scenario().step_model->cuda_graphs().mode == CudaGraphMode::none);
    CHECK(eager.scenario().step_model->cuda_graphs().capture_sizes.empty());
  }
  auto error_of = [&](std::vector<std::pair<std::string, std::string>> sets) {
    ScenarioOptions o;
    o.sets = std::move(sets);
    return test::input_error([&] { (void)ScenarioLoader(base, o); });
  };
  CHECK_THAT(error_of({{"engine.cudagraph_mode", "\"full\""}}),
             Catch::Contains("cudagraph_mode") && Catch::Contains("FULL_AND_PIECEWISE"));
  CHECK_THAT(error_of({{"engine.enforce_eager", "true"}, {"engine.cudagraph_mode", "\"FULL\""}}),
             Catch::Contains("enforce_eager") && Catch::Contains("turns CUDA graphs off"));
  CHECK_THAT(error_of({{"engine.cudagraph_capture_sizes", "[0, 8]"}}),
             Catch::Contains("cudagraph_capture_sizes") && Catch::Contains(">= 1"));
  CHECK_THAT(error_of({{"engine.cudagraph_capture_sizes", "[8, 16]"}, {"engine.max_cudagraph_capture_size", "32"}}),
             Catch::Contains("max_cudagraph_capture_size"));
  CHECK_THAT(error_of({{"engine.overhead.per_eager_op", "\"-1us\""}}), Catch::Contains("per_eager_op"));
  {
    ScenarioOptions o;
    o.sets = {{"engine.max_num_batched_tokens", "500"}, {"engine.max_num_seqs", "300"}};
    const ScenarioLoader budget(base, o);
    const auto& g = budget.scenario().step_model->cuda_graphs();
    CHECK(g.max_capture_size() == 500);  // min(600, 512) cut to the budget, which is captured
    CHECK(g.max_num_seqs == 300);
  }
}

TEST_CASE("vLLM runs DeepEP's high-throughput kernels with data parallelism eagerly", "[cuda-graphs]") {
  ScenarioOptions o;
  o.sets = {{"parallel.all2all_backend", "\"deepep_high_throughput\""}};
  const ScenarioLoader ht(test::scenario_path("deepseek-v3-ep16-2x-dgx-h100.toml"), o);
  CHECK(ht.scenario().step_model->cuda_graphs().mode == CudaGraphMode::none);
  o.sets = {{"parallel.all2all_backend", "\"deepep_low_latency\""}};
  const ScenarioLoader ll(test::scenario_path("deepseek-v3-ep16-2x-dgx-h100.toml"), o);
  CHECK(ll.scenario().step_model->cuda_graphs().mode == CudaGraphMode::full_and_piecewise);
  // A decode step of 16 x 2000 on the busiest rank: eager, the host's launches longer than the kernels.
  const auto r = test::run_cli("step " + test::scenario_path("deepseek-v3-ep16-2x-dgx-h100.toml") +
                               " --decode 16x2000 --set 'parallel.all2all_backend=\"deepep_high_throughput\"'");
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("CUDA graphs: eager (DeepEP high-throughput with data parallelism"));
}

TEST_CASE("enforce_eager: no padding, and steps past the largest graph run eagerly either way", "[cuda-graphs]") {
  const std::string q = test::scenario_path("quickstart.toml");
  auto step = [&](const std::string& batch, const std::string& extra) {
    const auto r = test::run_cli("step " + q + " " + batch + " --json" + extra);
    INFO(r.output);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.output);
  };
  const std::string eager = " --set engine.enforce_eager=true";
  // 4096 prefill tokens are past the 512-token graphs: eager with or without enforce_eager.
  CHECK(step("--prefill 4096", eager)["total_ms"] == step("--prefill 4096", "")["total_ms"]);
  CHECK(step("--prefill 4096", "")["cuda_graph"]["run"] == "eager");
  // 17 decodes: the graph pads them to 24; eager runs 17 (Llama-3-8B's kernels on an H100 outlast its launches).
  const auto graphed = step("--decode 17x1024", "");
  const auto eager17 = step("--decode 17x1024", eager);
  CHECK(graphed["cuda_graph"]["padded_tokens"] == 24);
  CHECK(graphed["cuda_graph"]["run"] == "full");
  CHECK(eager17["cuda_graph"]["padded_tokens"] == 17);
  CHECK(eager17["cuda_graph"]["run"] == "eager");
  // FULL_DECODE_ONLY pads decodes alone as the default does, and runs a step with a prefill chunk eagerly.
  const auto decode_only = step("--decode 17x1024", " --set 'engine.cudagraph_mode=\"FULL_DECODE_ONLY\"'");
  CHECK(decode_only["cuda_graph"]["padded_tokens"] == 24);
  CHECK(decode_only["gpu_ms"] == graphed["gpu_ms"]);
  const auto mixed = step("--prefill 300 --decode 4x100", " --set 'engine.cudagraph_mode=\"FULL_DECODE_ONLY\"'");
  CHECK(mixed["cuda_graph"]["run"] == "eager");
  CHECK(mixed["cuda_graph"]["padded_tokens"] == mixed["cuda_graph"]["tokens"]);  // eager: no padding
  // The text line says why a step runs eagerly.
  const auto text = test::run_cli("step " + q + " --decode 300x100 --set 'engine.cudagraph_mode=\"FULL_DECODE_ONLY\"'");
  CHECK_THAT(text.output, Catch::Contains("CUDA graphs: eager (FULL_DECODE_ONLY, and no decode graph of 304 past "
                                          "max_num_seqs 256)"));
  const auto off = test::run_cli("step " + q + " --decode 8x100" + eager);
  CHECK_THAT(off.output, Catch::Contains("CUDA graphs: eager (enforce_eager)"));
  CHECK(eager17["cuda_graph"]["host_ms"].get<double>() > 5.0);
  CHECK(eager17["gpu_ms"].get<double>() < graphed["gpu_ms"].get<double>());
}
