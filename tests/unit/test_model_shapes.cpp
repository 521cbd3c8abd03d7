// Model shapes that are not dense full attention: sliding-window attention (cost over min(context, window), KV
// blocks outside the window freed as vLLM v1 does), and the configs servesim refuses by name (mixture of experts,
// multi-head latent attention, config.json keys it neither models nor knowingly ignores).
#include <catch2/catch.hpp>

#include <algorithm>

#include "helpers.h"
#include "models/arch/model_arch.h"
#include "models/common/error.h"
#include "models/cost/roofline.h"
#include "models/cost/step_model.h"
#include "sim/engine/kv_cache.h"

using namespace servesim;

namespace {

ModelArch load(const std::string& name) {
  return ModelArch::from_hf_config(test::scenario_path("models/" + name + ".json"));
}

std::string test_model(const std::string& name) { return test::source_dir() + "/tests/data/models/" + name; }

// The message of the InputError that loading `path` throws ("" when it loads).
std::string load_error(const std::string& path, const std::vector<std::string>& ignore = {}) {
  try {
    (void)ModelArch::from_hf_config(path, ignore);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Llama-3-8B's config.json with `extra` ("key": value pairs) added before the closing brace.
std::string llama_with(const std::filesystem::path& dir, const std::string& name, const std::string& extra) {
  std::string text = test::read_file(test::scenario_path("models/llama-3-8b.json"));
  return test::write_file(dir / name, text.substr(0, text.rfind('}')) + ", " + extra + "}");
}

// Qwen2.5-7B's config.json with use_sliding_window true and max_window_layers `first`.
std::string qwen_sliding(const std::filesystem::path& dir, const std::string& name, int first) {
  std::string text = test::read_file(test::scenario_path("models/qwen2.5-7b.json"));
  const std::pair<std::string, std::string> edits[] = {
      {"\"use_sliding_window\": false", "\"use_sliding_window\": true"},
      {"\"max_window_layers\": 28", "\"max_window_layers\": " + std::to_string(first)}};
  for (const auto& [from, to] : edits) text.replace(text.find(from), from.size(), to);
  return test::write_file(dir / name, text);
}

StepModel step_model(const ModelArch& m) {
  auto roofline = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  return StepModel(m, test::simple_gpu(), ParallelConfig{}, roofline, EngineOverhead{}, nullptr);
}

BatchShape one_decode(std::int64_t tokens, std::int64_t window) {
  BatchShape b;
  b.window = window;
  b.add_decode(tokens);
  b.num_sampled = 1;
  return b;
}

const StepOp* find_op(const StepCost& c, const std::string& name) {
  for (const auto& o : c.ops) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

const char* kWorkload = R"(
[workload]
num_requests = 4
[workload.arrival]
impl = "poisson"
rate = 5.0
[workload.prompt_tokens]
impl = "fixed"
value = 100
[workload.output_tokens]
impl = "fixed"
value = 4
)";

// `servesim step` on `config` on one H100.
test::CliResult step_cli(const std::string& config, const std::string& args) {
  const auto dir = test::temp_dir("shapes-step");
  const std::string s = test::write_file(
      dir / "s.toml", "[model]\nconfig = \"" + config + "\"\n[hardware]\ngpu = \"h100-sxm\"\n" + kWorkload);
  return test::run_cli("step " + s + " " + args);
}

double json_op_ms(const std::string& json, const std::string& op) {
  const auto at = json.find("\"name\": \"" + op + "\"");
  if (at == std::string::npos) return -1.0;
  const auto t = json.find("\"time_ms\": ", at);
  return std::stod(json.substr(t + 11));
}


// `servesim run` on the model config `config` with `model_extra` lines in [model].
test::CliResult run_with(const std::string& config, const std::string& model_extra = "") {
  const auto dir = test::temp_dir("shapes-run");
  const std::string s = test::write_file(dir / "s.toml", "[model]\nconfig = \"" + config + "\"\n" + model_extra +
                                                             "[hardware]\ngpu = \"h100-sxm\"\n" + kWorkload);
  return test::run_cli("run " + s + " --out " + (dir / "o").string());
}

void check_one_line_error(const test::CliResult& r, const std::vector<std::string>& expect) {
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
  for (const auto& e : expect) CHECK(r.output.find(e) != std::string::npos);
}

}  // namespace

TEST_CASE("sliding windows from config.json with transformers' semantics", "[model-shapes]") {
  const ModelArch mistral = load("mistral-7b");  // sliding_window 4096, no use_sliding_window key: every layer
  CHECK(mistral.sliding_window == 4096);
  CHECK(mistral.sliding_layers() == 32);
  CHECK(mistral.kv_window() == 4096);
  const ModelArch qwen = load("qwen2.5-7b");  // use_sliding_window false: none
  CHECK(qwen.sliding_window == 0);
  CHECK(qwen.sliding_layers() == 0);
  CHECK(qwen.kv_window() == 0);
  CHECK(load("llama-3-8b").sliding_window == 0);

  const auto dir = test::temp_dir("shapes-swa");
  // Qwen2 with use_sliding_window: layers i >= max_window_layers slide (a mix: KV held as full attention).
  const ModelArch q14 = ModelArch::from_hf_config(qwen_sliding(dir, "q14.json", 14));
  CHECK(q14.sliding_window == 131072);
  CHECK(q14.sliding_layers() == 14);
  CHECK(q14.sliding_layers(0, 14) == 0);
  CHECK(q14.sliding_layers(14, 14) == 14);
  CHECK(q14.kv_window() == 0);
  // max_window_layers = 28 of 28 layers: none slides.
  CHECK(ModelArch::from_hf_config(qwen_sliding(dir, "q28.json", 28)).sliding_layers() == 0);
  // layer_types decides per layer.
  std::string types;
  for (int i = 0; i < 32; ++i) {
    types += std::string(i ? ", " : "") + (i % 2 ? "\"full_attention\"" : "\"sliding_attention\"");
  }
  const std::string alt_json = "\"sliding_window\": 1024, \"layer_types\": [" + types + "]";
  const ModelArch alt = ModelArch::from_hf_config(llama_with(dir, "alt.json", alt_json));
  CHECK(alt.sliding_window == 1024);
  CHECK(alt.sliding_layers() == 16);
  CHECK(alt.kv_window() == 0);
  // A null sliding_window means none.
  CHECK(ModelArch::from_hf_config(llama_with(dir, "null.json", "\"sliding_window\": null")).sliding_window == 0);
  // Bad values name the key.
  CHECK(load_error(llama_with(dir, "bad1.json", "\"sliding_window\": -5")).find("sliding_window") != std::string::npos);
  CHECK(load_error(llama_with(dir, "bad2.json", "\"sliding_window\": 64, \"layer_types\": [\"full_attention\"]"))
            .find("layer_types") != std::string::npos);
  CHECK(load_error(llama_with(dir, "bad3.json", "\"layer_types\": [" + std::string(R"("linear_attention", )") +
                                                    types.substr(types.find(',') + 2) + "]"))
            .find("layer_types[0] = \"linear_attention\"") != std::string::npos);
}

TEST_CASE("Mistral-7B decode at 30,000 context costs attention over 4,096 tokens", "[model-shapes]") {
  const ModelArch mistral = load("mistral-7b");
  const StepModel m = step_model(mistral);
  // Exactly the same step as at context 4,096: collected by the batch (add_decode) or bounded from the sum.
  CHECK(m.attention_time(one_decode(30000, 4096)).v == m.attention_time(one_decode(4096, 4096)).v);
  CHECK(m.attention_time(one_decode(30000, 0)).v == m.attention_time(one_decode(4096, 0)).v);
  CHECK(m.step_time(one_decode(30000, 4096)).v == m.step_time(one_decode(4096, 4096)).v);
  // Per layer: K and V of 4,096 tokens (8 heads x 128, bf16) + Q and O (32 x 128, bf16) at 2 TB/s, + 1 us launch.
  const double bytes = 4096.0 * 8 * 128 * 2 * 2 + 32.0 * 128 * 2 * 2;
  CHECK(bytes == 16793600.0);
  const StepCost c = m.breakdown(one_decode(30000, 4096));
  const StepOp* op = find_op(c, "attention_decode_swa");
  REQUIRE(op != nullptr);
  CHECK(find_op(c, "attention_decode") == nullptr);
  CHECK(op->bytes.v == 32.0 * bytes);
  CHECK(op->time.v == Approx(32.0 * (bytes / 2e12 + 1e-6)).epsilon(1e-12));
  CHECK(m.attention_time(one_decode(30000, 4096)).v == Approx(32.0 * (bytes / 2e12 + 1e-6)).epsilon(1e-12));
  // Without the window (the old cost), the same step reads all 30,000 tokens.
  ModelArch full = mistral;
  full.sliding_window = 0;
  full.layer_sliding.clear();
  const StepModel f = step_model(full);
  const double full_bytes = 30000.0 * 8 * 128 * 2 * 2 + 32.0 * 128 * 2 * 2;
  CHECK(f.attention_time(one_decode(30000, 4096)).v == Approx(32.0 * (full_bytes / 2e12 + 1e-6)).epsilon(1e-12));
  // Below the window nothing changes.
  CHECK(m.attention_time(one_decode(2000, 4096)).v == f.attention_time(one_decode(2000, 4096)).v);
  // A batch mixing sides of the window: exact when collected, bounded otherwise.
  BatchShape mixed;
  mixed.window = 4096;
  mixed.add_decode(30000);
  mixed.add_decode(1000);
  CHECK(m.sliding_decode_tokens(mixed) == 5096);
  mixed.window = 0;
  CHECK(m.sliding_decode_tokens(mixed) == 8192);
}

TEST_CASE("servesim step on Mistral-7B: decode attention at 30,000 context equals 4,096", "[model-shapes]") {
  const auto far = step_cli("mistral-7b", "--decode 1x29999 --json");
  const auto near = step_cli("mistral-7b", "--decode 1x4095 --json");
  INFO(far.output);
  REQUIRE(far.code == 0);
  REQUIRE(near.code == 0);
  const double t = json_op_ms(far.output, "attention_decode_swa");
  CHECK(t > 0.0);
  CHECK(t == json_op_ms(near.output, "attention_decode_swa"));
  CHECK(t < 0.3);  // was 1.368 ms over 30,000 tokens on H100
  // The text output names the op too.
  const auto text = step_cli("mistral-7b", "--decode 1x29999");
  CHECK(text.output.find("attention_decode_swa") != std::string::npos);
}

TEST_CASE("prefill attention on sliding-window layers: each query sees at most the window", "[model-shapes]") {
  AttentionShape a{32, 8, 128, 2.0};
  a.window = 4096;
  AttentionShape full = a;
  full.window = 0;
  const double per_pair = 4.0 * 32 * 128;
  // 8,192 tokens from scratch: queries 1..4096 see 1..4096 keys, the other 4,096 see 4,096 each.
  const std::vector<PrefillChunk> fresh{{8192, 0}};
  CHECK(prefill_attention_pairs(a, fresh) == 4096.0 * 4097 / 2 + 4096.0 * 4096);
  CHECK(prefill_attention_flops(a, fresh).v == per_pair * 25167872.0);
  // A chunk far past the window: 1,024 queries x 4,096 keys; it reads keys 30000 + 1 - 4096 .. 31023.
  const std::vector<PrefillChunk> late{{1024, 30000}};
  CHECK(prefill_attention_pairs(a, late) == 1024.0 * 4096);
  const double kv_bytes = (1024.0 + 4095) * 8 * 128 * 2 * 2;
  const double qo_bytes = 1024.0 * 32 * 128 * 2 * 2;
  CHECK(prefill_attention_bytes(a, late).v == kv_bytes + qo_bytes);
  // A chunk that crosses the window: queries at positions 3001..4096 grow, the other 904 see 4,096.
  const std::vector<PrefillChunk> crossing{{2000, 3000}};
  CHECK(prefill_attention_pairs(a, crossing) == (3001.0 + 4096) * 1096 / 2 + 4096.0 * 904);
  // Inside the window the full causal numbers, bit for bit.
  const std::vector<PrefillChunk> inside{{1024, 2000}, {512, 0}};
  CHECK(prefill_attention_flops(a, inside).v == prefill_attention_flops(full, inside).v);
  CHECK(prefill_attention_bytes(a, inside).v == prefill_attention_bytes(full, inside).v);
}

TEST_CASE("a mix of full and sliding layers costs each layer's attention over its own span", "[model-shapes]") {
  const auto dir = test::temp_dir("shapes-mix");
  const ModelArch q14 = ModelArch::from_hf_config(qwen_sliding(dir, "q14.json", 14));
  ModelArch q_full = q14;
  q_full.sliding_window = 0;
  q_full.layer_sliding.clear();
  // Qwen2.5's window (131072) as 4096 to make it bind.
  ModelArch q = q14;
  q.sliding_window = 4096;
  const StepModel mixed = step_model(q);
  const StepModel full = step_model(q_full);
  BatchShape b = one_decode(30000, 4096);
  b.prefills.push_back({2048, 8192});
  const StepCost c = mixed.breakdown(b);
  REQUIRE(find_op(c, "attention_decode") != nullptr);
  REQUIRE(find_op(c, "attention_decode_swa") != nullptr);
  REQUIRE(find_op(c, "attention_prefill") != nullptr);
  REQUIRE(find_op(c, "attention_prefill_swa") != nullptr);
  // 14 full layers over 30,000 tokens, 14 sliding layers over 4,096.
  const double per_layer_full = full.attention_time(one_decode(30000, 0)).v / 28.0;
  const double per_layer_window = full.attention_time(one_decode(4096, 0)).v / 28.0;
  CHECK(mixed.attention_time(one_decode(30000, 4096)).v ==
        Approx(14.0 * per_layer_full + 14.0 * per_layer_window).epsilon(1e-12));
  CHECK(find_op(c, "attention_decode")->time.v == Approx(14.0 * per_layer_full).epsilon(1e-12));
  // The KV cache stays conservative: held as full attention.
  CHECK(q.kv_window() == 0);
}

TEST_CASE("KV blocks outside the sliding window are freed as vLLM's SlidingWindowManager does", "[model-shapes]") {
  // 16-token blocks, window 4096, 8,192-token steps; the pool has 100,000 usable blocks (one more is the null block).
  KvCacheManager kv(100001, 16, 4096, 8192);
  KvCacheManager full(100001, 16);
  Sequence s, f;
  // Prefill of 30,000 tokens in chunks of 8,192 (then 5,424).
  std::int64_t most = 0;
  for (std::int64_t done = 0; done < 30000;) {
    const std::int64_t n = std::min<std::int64_t>(8192, 30000 - done);
    REQUIRE(kv.allocate(s, done + n));
    REQUIRE(full.allocate(f, done + n));
    most = std::max(most, s.blocks);
    done += n;
    s.computed = f.computed = done;
  }
  // The second chunk: blocks [0, (8192 - 4095) / 16 = 256) freed, 1,024 - 256 held.
  CHECK(most == 768);
  CHECK(most <= kv.peak_blocks(30000));
  CHECK(kv.peak_blocks(30000) == 769);  // ceil((4095 + 8192) / 16) + 1, vLLM's max_memory_usage_bytes
  CHECK(full.peak_blocks(30000) == 1875);
  CHECK(f.blocks == 1875);
  // Decode to 40,000 tokens: at most ceil(4096 / 16) + 1 = 257 blocks held.
  most = 0;
  std::int64_t least = 1 << 30;
  for (std::int64_t t = 30000; t < 40000; ++t) {
    REQUIRE(kv.allocate(s, t + 1));
    most = std::max(most, s.blocks);
    least = std::min(least, s.blocks);
    s.computed = t + 1;
  }
  CHECK(most == 257);
  CHECK(least == 256);
  CHECK(s.blocks + s.null_blocks == kv.blocks_for(40000));
  CHECK(kv.free_blocks() + s.blocks == kv.num_blocks());
  kv.release(s);
  CHECK(kv.free_blocks() == kv.num_blocks());
  CHECK(s.null_blocks == 0);
  // can_ever_fit: a 1M-token sequence fits a pool of 769 usable blocks with the window, not without.
  CHECK(KvCacheManager(770, 16, 4096, 8192).can_ever_fit(1000000));
  CHECK_FALSE(KvCacheManager(769, 16, 4096, 8192).can_ever_fit(1000000));
  CHECK_FALSE(KvCacheManager(770, 16).can_ever_fit(1000000));
}

TEST_CASE("Mixtral-8x7B and DeepSeek-V2-Lite load, incomplete MoE and MLA keys are refused by name",
          "[model-shapes]") {
  const std::string mixtral = test_model("mixtral-8x7b.json");
  const std::string deepseek = test_model("deepseek-v2-lite.json");
  CHECK(load_error(mixtral).empty());
  CHECK(load_error(deepseek).empty());
  const auto dir = test::temp_dir("shapes-mla");
  // MLA needs its head dimensions.
  CHECK(load_error(llama_with(dir, "mla.json", "\"kv_lora_rank\": 512, \"q_lora_rank\": null"))
            .find("mla.json: missing key 'qk_nope_head_dim'") != std::string::npos);
  // A dense config that spells "no experts" with 0 or null loads.
  CHECK(load_error(llama_with(dir, "dense.json", "\"num_local_experts\": 0, \"q_lora_rank\": null")).empty());
  const auto step = step_cli(deepseek, "--decode 1x100");
  INFO(step.output);
  CHECK(step.code == 0);
  for (const char* op : {"mla_kv_b", "attention_decode", "moe_router", "moe_gate_up", "shared_down"}) {
    CHECK(step.output.find(op) != std::string::npos);
  }
}

TEST_CASE("config.json keys neither modelled nor knowingly ignored are refused by name", "[model-shapes]") {
  const auto dir = test::temp_dir("shapes-keys");
  const std::string odd = llama_with(dir, "odd.json", "\"attn_logit_softcapping\": 50.0");
  CHECK(load_error(odd).find("odd.json: config.json key 'attn_logit_softcapping' not modelled") != std::string::npos);
  CHECK(load_error(odd, {"attn_logit_softcapping"}).empty());
  check_one_line_error(run_with(odd), {"odd.json", "attn_logit_softcapping", "ignore_config_keys"});
  // Accepted knowingly from the scenario.
  const auto ok = run_with(odd, "ignore_config_keys = [\"attn_logit_softcapping\"]\n");
  INFO(ok.output);
  CHECK(ok.code == 0);
  // Values of modelled keys that change the cost: other activations, MLP biases, other architectures.
  CHECK(load_error(llama_with(dir, "gelu.json", "\"hidden_act\": \"gelu_pytorch_tanh\""))
            .find("hidden_act = \"gelu_pytorch_tanh\"") != std::string::npos);
  CHECK(load_error(llama_with(dir, "gelu.json", "\"hidden_act\": \"gelu_pytorch_tanh\""), {"hidden_act"}).empty());
  CHECK(load_error(llama_with(dir, "bias.json", "\"mlp_bias\": true")).find("mlp_bias = true") != std::string::npos);
  std::string gemma = test::read_file(test::scenario_path("models/llama-3-8b.json"));
  gemma.replace(gemma.find("\"llama\""), 7, "\"gemma2\"");
  const std::string g = test::write_file(dir / "gemma.json", gemma);
  CHECK(load_error(g).find("model_type = \"gemma2\"") != std::string::npos);
  CHECK(load_error(g, {"model_type"}).empty());
  // Knowingly ignored keys load.
  CHECK(load_error(llama_with(dir, "ok.json",
                              "\"rope_scaling\": {\"factor\": 8.0, \"rope_type\": \"llama3\"}, \"use_cache\": true, "
                              "\"transformers_version\": \"4.40.0\", \"pretraining_tp\": 1, \"mlp_bias\": false"))
            .empty());
}

TEST_CASE("every shipped and test model config is classified", "[model-shapes]") {
  for (const char* name : {"llama-3-8b", "llama-3-70b", "llama-2-7b", "llama-2-70b", "qwen2.5-7b", "mistral-7b",
                           "mixtral-8x7b", "deepseek-v2-lite", "deepseek-v3", "qwen3-30b-a3b", "qwen1.5-moe-a2.7b"}) {
    INFO(name);
    CHECK(load_error(test::scenario_path(std::string("models/") + name + ".json")).empty());
  }
}

TEST_CASE("config.json integer keys past their limits are refused naming the file and key", "[model-shapes]") {
  const auto dir = test::temp_dir("config-limits");
  // Llama-3-8B's config.json with the integer at `key` replaced by `value`.
  const auto with = [&](const std::string& key, const std::string& value) {
    std::string text = test::read_file(test::scenario_path("models/llama-3-8b.json"));
    const std::string tag = "\"" + key + "\": ";
    const auto at = text.find(tag);
    REQUIRE(at != std::string::npos);
    const auto end = text.find_first_not_of("0123456789", at + tag.size());
    text.replace(at + tag.size(), end - at - tag.size(), value);
    return test::write_file(dir / (key + "-" + value + ".json"), text);
  };
  struct Limit {
    std::string key;
    std::int64_t max;
  };
  const Limit limits[] = {{"num_hidden_layers", 10'000},          {"hidden_size", std::int64_t{1} << 20},
                          {"intermediate_size", std::int64_t{1} << 20}, {"num_attention_heads", std::int64_t{1} << 16},
                          {"num_key_value_heads", std::int64_t{1} << 16}, {"vocab_size", std::int64_t{1} << 24},
                          {"max_position_embeddings", std::int64_t{1} << 30}};
  for (const auto& l : limits) {
    INFO(l.key);
    const std::string past = std::to_string(l.max + 1);
    const std::string error = load_error(with(l.key, past));
    CHECK(error.find(l.key + "-" + past + ".json: key '" + l.key + "' = " + past + " is past the limit of " +
                     std::to_string(l.max)) != std::string::npos);
    CHECK(error.find('\n') == std::string::npos);
    // At the limit the size is accepted (the config may still be refused for another reason, not this one).
    CHECK(load_error(with(l.key, std::to_string(l.max))).find("past the limit") == std::string::npos);
  }
  // Values whose products would overflow int64 (layers x KV heads x head_dim) never reach the size computations.
  CHECK(load_error(with("num_hidden_layers", "9223372036854775807")).find("past the limit of 10000") !=
        std::string::npos);
  // A key without its own limit (head_dim) has the widths' limit, 2^20.
  CHECK(load_error(llama_with(dir, "head_dim.json", "\"head_dim\": 1048577"))
            .find("head_dim.json: key 'head_dim' = 1048577 is past the limit of 1048576") != std::string::npos);
  CHECK(load_error(llama_with(dir, "head_dim_ok.json", "\"head_dim\": 128")).empty());
}
