// vLLM's KV-cache accounting: the null block, the profiled activation reserve, per-stage weights under pipeline
// parallelism, and max_model_len against max_position_embeddings (issue 8, section 2).
#include <catch2/catch.hpp>

#include "helpers.h"
#include "sim/cli/run.h"
#include "sim/scenario/scenario.h"
#include "sim/engine/kv_cache.h"

using namespace servesim;

namespace {

const std::string kWorkload =
    "[workload]\nnum_requests = 1\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
    "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 10\n[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 10\n";

// Llama-3.1-8B on one GPU of `memory` total memory (nvidia-smi's figure, as torch.cuda.mem_get_info reports it),
// the other fields of the h100-sxm entry; `engine` holds extra [engine] lines.
std::string llama31_scenario(const std::filesystem::path& dir, const std::string& memory, const std::string& engine) {
  const std::string catalog = test::write_file(dir / "gpus.toml",
                                               "[card]\nbf16_tflops = 989.0\nmemory = \"" + memory +
                                                   "\"\nmemory_bandwidth = \"3.35TB/s\"\ngemm_efficiency = 0.8\n"
                                                   "memory_efficiency = 0.9\nkernel_launch = \"2us\"\n");
  return test::write_file(dir / "s.toml", "[model]\nconfig = \"" + test::source_dir() +
                                              "/scenarios/models/llama-3.1-8b.json\"\n[hardware]\ngpu = \"card\"\n"
                                              "catalog = \"" + catalog + "\"\n[engine]\n" + engine +
                                              "\n" + kWorkload);
}

// vLLM's "GPU KV cache size" (num_gpu_blocks x 16) at max_num_batched_tokens = `budget`, max_model_len
// `max_len`; chunked prefill off unless max_len < budget (the reserve depends on the budget alone).
std::int64_t tokens_at(std::int64_t budget, std::int64_t max_len) {
  const auto dir = test::temp_dir("kv-prof");
  const ScenarioLoader l(llama31_scenario(dir, "23.58GiB",
                                          "gpu_memory_utilization = 0.9\nenable_chunked_prefill = " +
                                              std::string(max_len < budget ? "true" : "false") +
                                              "\nmax_model_len = " + std::to_string(max_len) +
                                              "\nmax_num_batched_tokens = " + std::to_string(budget) + "\n"),
                         {});
  return l.scenario().replica.num_kv_blocks * l.scenario().replica.block_size;
}

ScenarioOptions quickstart_pp(const std::string& pp) {
  ScenarioOptions o;
  o.sets = {{"workload.num_requests", "10"},
            {"parallel.pipeline_parallel_size", pp},
            {"parallel.topology", "\"dgx-h100\""},
            {"engine.activation_reserve", "\"4GiB\""}};
  return o;
}

}  // namespace

TEST_CASE("the null block: a pool of 512 blocks of 16 holds 8176 tokens, so max_model_len 8192 is refused",
          "[kv-accounting]") {
  KvCacheManager kv(512, 16);
  CHECK(kv.num_blocks() == 511);
  CHECK(kv.free_blocks() == 511);
  CHECK(kv.can_ever_fit(8176));
  CHECK_FALSE(kv.can_ever_fit(8177));

  const auto dir = test::temp_dir("kv-null");
  const std::string ok = test::write_file(
      dir / "ok.toml", test::base_scenario_text() +
                           "[engine]\nnum_gpu_blocks_override = 512\nmax_model_len = 8176\n" + kWorkload);
  const ScenarioLoader loader(ok, {});
  CHECK(loader.scenario().replica.num_kv_blocks == 512);  // vLLM's num_gpu_blocks: the null block included

  const std::string bad = test::write_file(
      dir / "bad.toml", test::base_scenario_text() +
                            "[engine]\nnum_gpu_blocks_override = 512\nmax_model_len = 8192\n" + kWorkload);
  const std::string msg = test::input_error([&] { (void)ScenarioLoader(bad, {}); });
  INFO(msg);
  CHECK(msg.find("engine.max_model_len") != std::string::npos);
  CHECK(msg.find("8192") != std::string::npos);
  CHECK(msg.find("8176") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
  const auto r = test::run_cli("run " + bad);
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
}

TEST_CASE("activation reserve as vLLM profiles it: Llama-3.1-8B on a 23.58 GiB card, chunked prefill off",
          "[kv-accounting]") {
  // vLLM's reports (gpu_memory_utilization 0.9, max_model_len = max_num_batched_tokens, chunked prefill off):
  // 1,952 blocks (31,232 tokens) at 20000; at 29000 vLLM refuses to start, as the cache holds fewer tokens than
  // max_model_len, and estimates 23,648 tokens.
  const double at20k = double(tokens_at(20000, 20000));
  const double at29k = double(tokens_at(29000, 20000));
  INFO("20000: " << at20k << " tokens, 29000: " << at29k << " tokens");
  CHECK(at20k == Approx(31232).epsilon(0.03));
  CHECK(at29k == Approx(23648).epsilon(0.03));
  const std::string msg = test::input_error([&] { (void)tokens_at(29000, 29000); });
  INFO(msg);
  CHECK(msg.find("engine.max_model_len: 29000 is larger than the maximum number of tokens") != std::string::npos);
}

TEST_CASE("activation reserve terms: forward peak (3 I + 3 h) per token, the sampler when larger, user override",
          "[kv-accounting]") {
  const auto dir = test::temp_dir("kv-terms");
  const ScenarioLoader a(llama31_scenario(dir, "80GiB", "max_num_batched_tokens = 20000\nmax_model_len = 20000\n"), {});
  const ScenarioLoader b(llama31_scenario(dir, "80GiB", "max_num_batched_tokens = 30000\nmax_model_len = 20000\n"), {});
  // 10000 more tokens of forward peak: 10000 x (3 x 14336 + 3 x 4096) x 2 bytes.
  CHECK(b.scenario().kv.activations.v - a.scenario().kv.activations.v == Approx(10000.0 * 110592.0));
  const ScenarioLoader c(llama31_scenario(dir, "80GiB", "max_model_len = 20000\nactivation_reserve = \"3GiB\"\n"), {});
  CHECK(c.scenario().kv.activations.v == 3.0 * kGiB);
}

TEST_CASE("pipeline parallelism: embedding on the first stage, LM head on the last, the fewest blocks over stages",
          "[kv-accounting]") {
  const ScenarioLoader pp2(test::scenario_path("quickstart.toml"), quickstart_pp("2"));
  CHECK(pp2.scenario().replica.num_kv_blocks * 16 == 986368);
  const ScenarioLoader pp4(test::scenario_path("quickstart.toml"), quickstart_pp("4"));
  CHECK(pp4.scenario().replica.num_kv_blocks * 16 == 2079248);
  // The summary reports vLLM's figure (the null block included).
  CHECK(run_scenario(pp2).summary["servesim"]["kv_capacity_tokens_per_replica"].get<std::int64_t>() == 986368);

  const StepModel& m = *pp4.scenario().step_model;
  const double embed = 128256.0 * 4096.0 * 2.0;
  CHECK(m.weight_bytes_per_gpu(0).v - m.weight_bytes_per_gpu(1).v == embed);
  CHECK(m.weight_bytes_per_gpu(3).v - m.weight_bytes_per_gpu(1).v == embed + 4096.0 * 2.0);  // + final norm
  CHECK(m.weight_bytes_per_gpu(1).v == m.weight_bytes_per_gpu(2).v);
}

TEST_CASE("vLLM's layer split over pipeline stages (get_pp_indices)", "[kv-accounting]") {
  CHECK(StepModel::pp_stage_layers(32, 4) == std::vector<std::int64_t>{8, 8, 8, 8});
  CHECK(StepModel::pp_stage_layers(30, 4) == std::vector<std::int64_t>{7, 8, 8, 7});
  CHECK(StepModel::pp_stage_layers(31, 4) == std::vector<std::int64_t>{8, 8, 8, 7});
  CHECK(StepModel::pp_stage_layers(5, 2) == std::vector<std::int64_t>{3, 2});
}

TEST_CASE("max_model_len above max_position_embeddings is refused unless the scenario allows it", "[kv-accounting]") {
  const auto dir = test::temp_dir("kv-maxlen");
  const std::string bad = test::write_file(
      dir / "bad.toml", test::base_scenario_text() + "[engine]\nmax_model_len = 16384\n" + kWorkload);
  const std::string msg = test::input_error([&] { (void)ScenarioLoader(bad, {}); });
  INFO(msg);
  CHECK(msg.find("engine.max_model_len") != std::string::npos);
  CHECK(msg.find("16384") != std::string::npos);
  CHECK(msg.find("8192") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
  CHECK(test::run_cli("run " + bad).code == 2);

  const std::string ok = test::write_file(
      dir / "ok.toml", test::base_scenario_text() +
                           "[engine]\nmax_model_len = 16384\nallow_long_max_model_len = true\n" + kWorkload);
  const ScenarioLoader loader(ok, {});
  CHECK(loader.scenario().replica.max_model_len == 16384);
}

TEST_CASE("a sliding-window model needs room for its window, not for max_model_len", "[kv-accounting]") {
  // Mistral-7B (sliding_window 4096 on every layer), max_model_len 32768, a pool of 1000 blocks (15,984 tokens):
  // a sequence holds at most ceil((4096 - 1 + 8192) / 16) + 1 = 769 blocks, so vLLM starts; the same model
  // without the window needs 2048 blocks and is refused.
  const auto dir = test::temp_dir("kv-swa");
  const std::string engine = "[engine]\nnum_gpu_blocks_override = 1000\nmax_num_batched_tokens = 8192\n";
  const std::string mistral = test::source_dir() + "/scenarios/models/mistral-7b.json";
  const ScenarioLoader ok(test::write_file(dir / "ok.toml", "[model]\nconfig = \"" + mistral +
                                                                "\"\n[hardware]\ngpu = \"h100-sxm\"\n" + engine + kWorkload),
                          {});
  CHECK(ok.scenario().replica.max_model_len == 32768);
  CHECK(ok.scenario().replica.num_kv_blocks == 1000);
  std::string cfg = test::read_file(mistral);
  cfg.replace(cfg.find("\"sliding_window\": 4096"), 22, "\"sliding_window\": null");
  const std::string full = test::write_file(dir / "full.json", cfg);
  const std::string refused = test::write_file(
      dir / "full.toml", "[model]\nconfig = \"" + full + "\"\n[hardware]\ngpu = \"h100-sxm\"\n" + engine + kWorkload);
  CHECK_THROWS_WITH(ScenarioLoader(refused, {}),
                    Catch::Contains("engine.max_model_len") &&
                        Catch::Contains("32768 (the default: the model's max_position_embeddings) is larger than") &&
                        Catch::Contains("15984 = (1000 blocks - 1 null block)"));
}

TEST_CASE("num_gpu_blocks_override leaves room for more than the null block", "[kv-accounting]") {
  const auto dir = test::temp_dir("kv-override");
  const std::string s = test::write_file(dir / "s.toml", test::base_scenario_text() +
                                                             "[engine]\nnum_gpu_blocks_override = 1\n" + kWorkload);
  CHECK_THROWS_WITH(ScenarioLoader(s, {}), Catch::Contains("engine.num_gpu_blocks_override") &&
                                               Catch::Contains("must be at least 2") && Catch::Contains("null block"));
}
