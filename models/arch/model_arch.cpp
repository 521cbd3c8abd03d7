#include "models/arch/model_arch.h"

#include <algorithm>
#include <filesystem>
#include <span>

#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "models/common/json_file.h"

namespace servesim {
namespace {

// Upper limits of config.json's integer keys. Each is far above every published model (the largest in brackets,
// from their config.json files) and low enough that the products servesim forms in int64 (layers x KV heads x
// head_dim per token, heads x head_dim, vocab x hidden, shared experts x their width) stay below 2^63 with room to
// spare: at most 1e4 x 2^16 x 2^20 = 6.9e14. A config past a limit is damaged, not a model: InputError naming the
// file and key.
//   layers                 1e4   [Llama-3.1-405B: 126]
//   widths (hidden, FFN, head_dim, MLA ranks and head dims)
//                          2^20 = 1,048,576  [Nemotron-4-340B: hidden 18432, intermediate 73728]
//   heads, experts         2^16 = 65,536     [Llama-3.1-405B: 128 heads; Kimi-K2: 384 experts]
//   vocab_size             2^24 = 16,777,216 [Gemma 3: 262,208]
//   positions, window      2^30 = 1,073,741,824 [Llama 4 Scout: 10,485,760]
// Any other integer key: the widths' limit.
struct IntLimit {
  std::string_view key;
  std::int64_t max;
};
constexpr std::int64_t kMaxLayers = 10'000;
constexpr std::int64_t kMaxWidth = std::int64_t{1} << 20;
constexpr std::int64_t kMaxCount = std::int64_t{1} << 16;
constexpr IntLimit kIntLimits[] = {
    {"num_hidden_layers", kMaxLayers},
    {"first_k_dense_replace", kMaxLayers},
    {"moe_layer_freq", kMaxLayers},
    {"decoder_sparse_step", kMaxLayers},
    {"num_attention_heads", kMaxCount},
    {"num_key_value_heads", kMaxCount},
    {"num_local_experts", kMaxCount},
    {"num_experts", kMaxCount},
    {"n_routed_experts", kMaxCount},
    {"num_experts_per_tok", kMaxCount},
    {"n_shared_experts", kMaxCount},
    {"vocab_size", std::int64_t{1} << 24},
    {"max_position_embeddings", std::int64_t{1} << 30},
    {"sliding_window", std::int64_t{1} << 30},
};

std::int64_t int_limit(std::string_view key) {
  for (const auto& l : kIntLimits) {
    if (l.key == key) return l.max;
  }
  return kMaxWidth;
}

// "FILE: key 'KEY' = V is past the limit of MAX (...)" when v > the key's limit.
void check_int_limit(std::int64_t v, const std::string& file, const char* key) {
  const std::int64_t max = int_limit(key);
  if (v > max) {
    throw InputError(file + ": key '" + key + "' = " + std::to_string(v) + " is past the limit of " +
                     std::to_string(max) + " (far above any published model; model_arch.cpp lists the limits)");
  }
}

std::int64_t get_int(const nlohmann::json& j, const std::string& file, const char* key) {
  if (!j.contains(key)) throw InputError(file + ": missing key '" + key + "'");
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<std::int64_t>() <= 0) {
    throw InputError(file + ": key '" + key + "' must be a positive integer");
  }
  check_int_limit(v.get<std::int64_t>(), file, key);
  return v.get<std::int64_t>();
}

// Optional fields: absent or null means the default; any other type is an error naming the key.
bool opt_bool(const nlohmann::json& j, const std::string& file, const char* key, bool fallback) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  if (!j.at(key).is_boolean()) throw InputError(file + ": key '" + key + "' must be true or false");
  return j.at(key).get<bool>();
}

std::string opt_string(const nlohmann::json& j, const std::string& file, const char* key, const std::string& fallback) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  if (!j.at(key).is_string()) throw InputError(file + ": key '" + key + "' must be a string");
  return j.at(key).get<std::string>();
}

bool present(const nlohmann::json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

// Whether a quantization_config describes fp8 weights: vLLM's "fp8" and "fbgemm_fp8", NVIDIA ModelOpt with
// quant_algo "FP8", or compressed-tensors with a config group of 8-bit float weights.
bool fp8_scheme(const nlohmann::json& q, const std::string& method) {
  if (method == "fp8" || method == "fbgemm_fp8") return true;
  if (method == "modelopt") return q.contains("quant_algo") && q.at("quant_algo") == "FP8";
  if (method == "compressed-tensors" && q.contains("config_groups") && q.at("config_groups").is_object()) {
    for (const auto& [name, group] : q.at("config_groups").items()) {
      if (!group.is_object() || !group.contains("weights") || !group.at("weights").is_object()) continue;
      const auto& w = group.at("weights");
      if (w.contains("num_bits") && w.at("num_bits") == 8 && w.contains("type") && w.at("type") == "float") return true;
    }
  }
  return false;
}

// config.json keys, by how servesim treats them. A key in none of these lists is refused (unless the scenario lists
// it in [model] ignore_config_keys): an unknown key may change cost or memory, and is never silently ignored.
//
// Read and modelled (from_hf_config below; some values are refused, see there).
constexpr std::string_view kModelledKeys[] = {
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "head_dim", "vocab_size", "max_position_embeddings", "tie_word_embeddings", "model_type",
    "attention_bias",       // q/k/v biases (Qwen2 defaults to true)
    "mlp_bias",             // false only: MLP biases are not modelled
    "hidden_act",           // "silu" / "swish" only: the SwiGLU MLP's SiLU-and-mul
    "torch_dtype", "dtype",  // weight bytes ("dtype": transformers >= 4.56's name for torch_dtype)
    "quantization_config",  // fp8 schemes (see fp8_scheme), mxfp4 (MoE experts)
    "sliding_window", "use_sliding_window", "max_window_layers", "layer_types",  // sliding-window attention
    // mixture-of-experts (read_moe below)
    "num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size",
    "experts_per_token",  // gpt-oss's second name of num_experts_per_tok (the two must agree)
    "n_shared_experts", "shared_expert_intermediate_size", "first_k_dense_replace", "moe_layer_freq",
    "decoder_sparse_step", "mlp_only_layers",
    "n_group",  // DeepSeek's expert groups: EPLB's hierarchical placement (models/cost/moe_routing.h)
    "topk_group",  // group-limited routing: the groups a token's experts are in (models/cost/moe_routing.h)
    // multi-head latent attention (read_mla below)
    "kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
};

// Knowingly ignored: they change neither the cost nor the memory of inference, each for the reason given.
struct IgnoredKey {
  std::string_view key;
  std::string_view why;
};
constexpr IgnoredKey kIgnoredKeys[] = {
    {"architectures", "the model class name; model_type and the shape keys fix the layout"},
    {"_name_or_path", "where the checkpoint came from"},
    {"transformers_version", "the library version that wrote the file"},
    {"bos_token_id", "tokenizer metadata"},
    {"eos_token_id", "tokenizer metadata"},
    {"pad_token_id", "tokenizer metadata"},
    {"initializer_range", "training-time weight initialisation"},
    {"rms_norm_eps", "a constant inside RMSNorm: the same kernel"},
    {"rope_theta", "RoPE's base frequency: the same rotary kernel"},
    {"rope_scaling",
     "RoPE frequency scaling (linear, dynamic, yarn, llama3, longrope): the same rotary kernel. It is what lets a "
     "checkpoint run past its pre-training context; the context limit servesim checks is max_position_embeddings"},
    {"rope_parameters", "transformers v5's rope_theta + rope_scaling: as those"},
    {"use_cache", "whether HF generate() keeps a KV cache; vLLM always pages one"},
    {"attention_dropout", "training only: dropout is off at inference"},
    {"pretraining_tp", "Llama 2's training-time slicing of the linear layers: the same weights and math"},
    {"auto_map", "the remote-code class names; model_type and the shape keys fix the layout"},
    // Routing details: which experts a token picks and how their outputs are weighted. The experts' GEMMs, their
    // weights and the all-to-all volume follow from num_experts_per_tok; the router's own math is an elementwise
    // pass over [tokens, experts], negligible next to the router GEMM servesim costs.
    {"topk_method", "how the router picks its top-k: elementwise over [tokens, experts]"},
    {"scoring_func", "softmax or sigmoid router scores: elementwise over [tokens, experts]"},
    {"norm_topk_prob", "renormalising the top-k weights: elementwise"},
    {"routed_scaling_factor", "a constant factor on the routed experts' output"},
    {"aux_loss_alpha", "training-only load-balancing loss"},
    {"seq_aux", "training-only load-balancing loss"},
    {"router_aux_loss_coef", "training-only load-balancing loss"},
    {"router_jitter_noise", "training-only router noise"},
    {"output_router_logits", "training / analysis output of the router"},
    {"ep_size", "the checkpoint's training-time expert parallelism; serving uses [parallel] expert_parallel_size"},
    {"swiglu_limit",
     "gpt-oss clamps the SwiGLU inputs to this limit: a min / max inside the same activation kernel"},
    {"initial_context_length",
     "gpt-oss's pre-training context, YaRN's original length (as rope_scaling's original_max_position_embeddings); "
     "the context limit servesim checks is max_position_embeddings"},
    {"num_nextn_predict_layers",
     "DeepSeek-V3's multi-token-prediction module: vLLM loads it only as a speculative-decoding draft, which "
     "servesim does not model"},
};

// The keys in neither list.
void check_keys(const nlohmann::json& j, const std::string& file, const std::vector<std::string>& ignore) {
  std::vector<std::string> unknown;
  for (const auto& item : j.items()) {
    // (a named reference, not a structured binding: clang before 16 cannot capture those in a lambda)
    const std::string& key = item.key();
    const auto known = [&](std::string_view k) { return k == key; };
    if (std::ranges::any_of(kModelledKeys, known) ||
        std::ranges::any_of(kIgnoredKeys, [&](const IgnoredKey& k) { return k.key == key; }) ||
        std::ranges::find(ignore, key) != ignore.end()) {
      continue;
    }
    unknown.push_back(key);
  }
  if (unknown.empty()) return;
  std::string names, list;
  for (const auto& k : unknown) {
    names += (names.empty() ? "'" : ", '") + k + "'";
    list += (list.empty() ? "\"" : ", \"") + k + "\"";
  }
  throw InputError(file + ": config.json key" + (unknown.size() > 1 ? "s " : " ") + names +
                   " not modelled by servesim (it may change cost or memory); if it does not, accept it knowingly "
                   "with [model] ignore_config_keys = [" + list + "]");
}

bool ignored(const std::vector<std::string>& ignore, std::string_view key) {
  return std::ranges::find(ignore, key) != ignore.end();
}

// Which layers slide, with transformers' semantics: `sliding_window` null or absent = none; Qwen2-family configs
// (use_sliding_window defaults to false there, and false sets the window to None) use it only with
// use_sliding_window = true; an explicit `layer_types` ("sliding_attention" | "full_attention", one per layer)
// decides per layer; without it Qwen2 slides on layers i >= max_window_layers (default 28, transformers'
// Qwen2Config) and other model types (Mistral) on every layer.
void read_sliding_window(const nlohmann::json& j, const std::string& file, const std::string& type, ModelArch& m) {
  const bool qwen = type.rfind("qwen", 0) == 0;
  const bool enabled = opt_bool(j, file, "use_sliding_window", !qwen);
  const std::int64_t window = present(j, "sliding_window") ? get_int(j, file, "sliding_window") : 0;
  std::vector<bool> sliding(static_cast<std::size_t>(m.num_layers), false);
  if (present(j, "layer_types")) {
    const auto& lt = j.at("layer_types");
    if (!lt.is_array() || static_cast<std::int64_t>(lt.size()) != m.num_layers) {
      throw InputError(file + ": key 'layer_types' must be a list of num_hidden_layers (" +
                       std::to_string(m.num_layers) + ") layer types");
    }
    for (std::size_t i = 0; i < lt.size(); ++i) {
      const std::string t = lt[i].is_string() ? lt[i].get<std::string>() : lt[i].dump();
      if (t != "sliding_attention" && t != "full_attention") {
        throw InputError(file + ": layer_types[" + std::to_string(i) + "] = \"" + t +
                         "\": only full_attention and sliding_attention layers are modelled");
      }
      sliding[i] = t == "sliding_attention";
    }
  } else {
    std::int64_t first = qwen ? 28 : 0;
    if (present(j, "max_window_layers")) {
      const auto& v = j.at("max_window_layers");
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
        throw InputError(file + ": key 'max_window_layers' must be a non-negative integer");
      }
      first = v.get<std::int64_t>();
    }
    for (std::int64_t i = first; i < m.num_layers; ++i) sliding[std::size_t(i)] = true;
  }
  // A sliding_attention layer without a window (or with use_sliding_window = false) attends fully, as in HF.
  if (window == 0 || !enabled || std::ranges::find(sliding, true) == sliding.end()) return;
  m.sliding_window = window;
  m.layer_sliding = std::move(sliding);
}

// An optional integer >= `least`: absent or null gives `fallback`.
std::int64_t opt_int(const nlohmann::json& j, const std::string& file, const char* key, std::int64_t fallback,
                     std::int64_t least) {
  if (!present(j, key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<std::int64_t>() < least) {
    throw InputError(file + ": key '" + key + "' must be an integer >= " + std::to_string(least));
  }
  check_int_limit(v.get<std::int64_t>(), file, key);
  return v.get<std::int64_t>();
}

// Mixture-of-experts layout (MoeArch documents each key). A routed-expert count of null or 0 is a dense config.
void read_moe(const nlohmann::json& j, const std::string& file, const std::string& type, ModelArch& m) {
  const char* experts_key = nullptr;
  for (const char* k : {"num_local_experts", "num_experts", "n_routed_experts"}) {
    if (present(j, k) && !(j.at(k).is_number_integer() && j.at(k).get<std::int64_t>() == 0)) {
      if (experts_key != nullptr) {
        throw InputError(file + ": keys '" + experts_key + "' and '" + k + "' both give the number of experts");
      }
      experts_key = k;
    }
  }
  if (experts_key == nullptr) {
    for (const char* k : {"num_experts_per_tok", "moe_intermediate_size", "n_shared_experts",
                          "shared_expert_intermediate_size"}) {
      if (present(j, k) && !(j.at(k).is_number_integer() && j.at(k).get<std::int64_t>() == 0)) {
        throw InputError(file + ": key '" + k + "' is set but no number of routed experts is (num_local_experts, " +
                         "num_experts or n_routed_experts)");
      }
    }
    return;
  }
  MoeArch& e = m.moe;
  e.num_experts = get_int(j, file, experts_key);
  e.experts_per_token = get_int(j, file, present(j, "num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token");
  if (present(j, "experts_per_token") && get_int(j, file, "experts_per_token") != e.experts_per_token) {
    throw InputError(file + ": experts_per_token (" + std::to_string(get_int(j, file, "experts_per_token")) +
                     ") differs from num_experts_per_tok (" + std::to_string(e.experts_per_token) + ")");
  }
  e.expert_bias = type == "gpt_oss";
  if (e.experts_per_token > e.num_experts) {
    throw InputError(file + ": num_experts_per_tok (" + std::to_string(e.experts_per_token) + ") exceeds " +
                     experts_key + " (" + std::to_string(e.num_experts) + ")");
  }
  e.expert_intermediate_size =
      present(j, "moe_intermediate_size") ? get_int(j, file, "moe_intermediate_size") : m.intermediate_size;
  e.num_expert_groups = opt_int(j, file, "n_group", 1, 1);
  if (e.num_expert_groups < 1 || e.num_experts % e.num_expert_groups != 0) {
    throw InputError(file + ": n_group (" + std::to_string(e.num_expert_groups) + ") must be >= 1 and divide the " +
                     std::to_string(e.num_experts) + " routed experts");
  }
  // vLLM's grouped_topk (DeepSeek-V2 / V3): a token's experts within topk_group of the n_group groups.
  e.topk_group = opt_int(j, file, "topk_group", e.num_expert_groups, 1);
  if (e.topk_group > e.num_expert_groups) {
    throw InputError(file + ": topk_group (" + std::to_string(e.topk_group) + ") exceeds n_group (" +
                     std::to_string(e.num_expert_groups) + ")");
  }
  if (e.topk_group * (e.num_experts / e.num_expert_groups) < e.experts_per_token) {
    throw InputError(file + ": topk_group (" + std::to_string(e.topk_group) + ") groups of " +
                     std::to_string(e.num_experts / e.num_expert_groups) + " experts hold fewer than " +
                     "num_experts_per_tok (" + std::to_string(e.experts_per_token) + ")");
  }
  const std::int64_t shared = opt_int(j, file, "n_shared_experts", 0, 0);
  e.shared_intermediate_size = shared * e.expert_intermediate_size;
  if (present(j, "shared_expert_intermediate_size")) {
    if (shared > 0) {
      throw InputError(file + ": keys 'n_shared_experts' and 'shared_expert_intermediate_size' both size the "
                       "shared experts");
    }
    e.shared_intermediate_size = opt_int(j, file, "shared_expert_intermediate_size", 0, 0);
    e.shared_expert_gate = e.shared_intermediate_size > 0;  // Qwen2-MoE's shared_expert_gate
  }
  const auto layers = static_cast<std::size_t>(m.num_layers);
  e.layer_moe.assign(layers, true);
  const bool deepseek = type.rfind("deepseek", 0) == 0;
  if (deepseek || present(j, "first_k_dense_replace") || present(j, "moe_layer_freq")) {
    const std::int64_t first_dense = opt_int(j, file, "first_k_dense_replace", 0, 0);
    const std::int64_t freq = opt_int(j, file, "moe_layer_freq", 1, 1);
    for (std::size_t i = 0; i < layers; ++i) {
      e.layer_moe[i] = std::int64_t(i) >= first_dense && std::int64_t(i) % freq == 0;
    }
  }
  if (present(j, "decoder_sparse_step") || present(j, "mlp_only_layers")) {
    const std::int64_t step = opt_int(j, file, "decoder_sparse_step", 1, 1);
    for (std::size_t i = 0; i < layers; ++i) e.layer_moe[i] = e.layer_moe[i] && (std::int64_t(i) + 1) % step == 0;
    if (present(j, "mlp_only_layers")) {
      const auto& dense = j.at("mlp_only_layers");
      if (!dense.is_array()) throw InputError(file + ": key 'mlp_only_layers' must be a list of layer indices");
      for (const auto& v : dense) {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= m.num_layers) {
          throw InputError(file + ": mlp_only_layers: " + v.dump() + " is not a layer index (0 .. " +
                           std::to_string(m.num_layers - 1) + ")");
        }
        e.layer_moe[static_cast<std::size_t>(v.get<std::int64_t>())] = false;
      }
    }
  }
  if (e.moe_layers() == 0) m.moe = MoeArch{};  // every layer dense: a dense model
}

// Multi-head latent attention (MlaArch). kv_lora_rank null or 0: standard attention.
void read_mla(const nlohmann::json& j, const std::string& file, ModelArch& m) {
  if (!present(j, "kv_lora_rank") || (j.at("kv_lora_rank").is_number_integer() && j.at("kv_lora_rank") == 0)) {
    if (present(j, "q_lora_rank") && !(j.at("q_lora_rank").is_number_integer() && j.at("q_lora_rank") == 0)) {
      throw InputError(file + ": key 'q_lora_rank' is set without kv_lora_rank (multi-head latent attention)");
    }
    return;
  }
  MlaArch& a = m.mla;
  a.kv_lora_rank = get_int(j, file, "kv_lora_rank");
  a.q_lora_rank = opt_int(j, file, "q_lora_rank", 0, 0);
  a.qk_nope_head_dim = get_int(j, file, "qk_nope_head_dim");
  a.qk_rope_head_dim = get_int(j, file, "qk_rope_head_dim");
  a.v_head_dim = get_int(j, file, "v_head_dim");
  // Every head has its own q, K_nope and V; the latent and k_rope are shared. num_key_value_heads and head_dim
  // have no meaning for MLA: K and V are reconstructed per head, so the model counts as heads = kv heads.
  m.num_kv_heads = m.num_heads;
  m.head_dim = a.qk_head_dim();
}

}  // namespace

std::int64_t ModelArch::sliding_layers(std::int64_t first, std::int64_t count) const {
  if (layer_sliding.empty()) return 0;
  const std::int64_t end = count < 0 ? num_layers : std::min(num_layers, first + count);
  std::int64_t n = 0;
  for (std::int64_t i = std::max<std::int64_t>(0, first); i < end; ++i) n += layer_sliding[std::size_t(i)] ? 1 : 0;
  return n;
}

const char* to_string(Quantization q) {
  return q == Quantization::fp8 ? "fp8" : q == Quantization::mxfp4 ? "mxfp4" : "none";
}

Quantization parse_quantization(std::string_view name, const std::string& where) {
  if (name == "none") return Quantization::none;
  if (name == "fp8") return Quantization::fp8;
  if (name == "mxfp4") return Quantization::mxfp4;
  throw InputError(where + ": quantization '" + std::string(name) + "' is not modelled (valid: none, fp8, mxfp4)");
}

std::int64_t MoeArch::moe_layers(std::int64_t first, std::int64_t count) const {
  if (layer_moe.empty()) return 0;
  const auto n = static_cast<std::int64_t>(layer_moe.size());
  const std::int64_t end = count < 0 ? n : std::min(n, first + count);
  std::int64_t k = 0;
  for (std::int64_t i = std::max<std::int64_t>(0, first); i < end; ++i) k += layer_moe[std::size_t(i)] ? 1 : 0;
  return k;
}

double ModelArch::attention_linear_params() const {
  const double h = static_cast<double>(hidden_size);
  if (mla.enabled()) {
    const double heads = static_cast<double>(num_heads);
    const double qk = static_cast<double>(mla.qk_head_dim());
    const double q = mla.q_lora_rank > 0 ? h * double(mla.q_lora_rank) + double(mla.q_lora_rank) * heads * qk
                                         : h * heads * qk;
    const double kv_a = h * static_cast<double>(mla.latent_dim());
    const double kv_b = double(mla.kv_lora_rank) * heads * double(mla.qk_nope_head_dim + mla.v_head_dim);
    const double o = heads * double(mla.v_head_dim) * h;
    return q + kv_a + kv_b + o;
  }
  return h * static_cast<double>(q_dim() + 2 * kv_dim()) + static_cast<double>(q_dim()) * h;
}

double ModelArch::attention_other_params() const {
  if (mla.enabled()) return static_cast<double>(mla.q_lora_rank + mla.kv_lora_rank);  // q_a and kv_a RMSNorms
  return (qkv_bias ? static_cast<double>(q_dim() + 2 * kv_dim()) : 0.0) + (o_bias ? double(hidden_size) : 0.0) +
         (qk_norm ? 2.0 * double(head_dim) : 0.0) + (attention_sinks ? double(num_heads) : 0.0);
}

double ModelArch::mlp_linear_params(std::int64_t layer) const {
  const double h = static_cast<double>(hidden_size);
  if (!is_moe_layer(layer)) return 3.0 * h * static_cast<double>(intermediate_size);
  return static_cast<double>(moe.num_experts) * moe.expert_params(hidden_size) +
         3.0 * h * static_cast<double>(moe.shared_intermediate_size);
}

double ModelArch::mlp_other_params(std::int64_t layer) const {
  if (!is_moe_layer(layer)) return 0.0;
  const double h = static_cast<double>(hidden_size);
  const double experts = static_cast<double>(moe.num_experts);
  return h * experts + (moe.shared_expert_gate ? h : 0.0) +
         (moe.expert_bias ? experts + experts * moe.expert_bias_params(hidden_size) : 0.0);
}

double ModelArch::layer_params(std::int64_t layer) const {
  return attention_linear_params() + attention_other_params() + mlp_linear_params(layer) + mlp_other_params(layer) +
         2.0 * static_cast<double>(hidden_size);
}

double ModelArch::params() const {
  const double h = static_cast<double>(hidden_size);
  const double embed = static_cast<double>(vocab_size) * h;
  double layers = 0.0;
  if (moe.enabled()) {
    for (std::int64_t i = 0; i < num_layers; ++i) layers += layer_params(i);
  } else {
    layers = static_cast<double>(num_layers) * layer_params();
  }
  return layers + embed + (tie_word_embeddings ? 0.0 : embed) + h;
}

double ModelArch::active_params() const {
  const double inactive = static_cast<double>(moe.num_experts - moe.experts_per_token) *
                          (moe.expert_params(hidden_size) + moe.expert_bias_params(hidden_size));
  return params() - static_cast<double>(moe.moe_layers()) * inactive;
}

Bytes ModelArch::weight_bytes() const {
  double linear = 0.0, experts = 0.0;
  if (moe.enabled()) {
    for (std::int64_t i = 0; i < num_layers; ++i) {
      linear += linear_params_per_layer(i);
      experts += routed_expert_params(i);
    }
  } else {
    linear = static_cast<double>(num_layers) * linear_params_per_layer();
  }
  return Bytes{experts * expert_bytes_per_param() + (linear - experts) * linear_bytes_per_param() +
               (params() - linear) * weight_bytes_per_param};
}

ModelArch ModelArch::from_hf_config(const std::string& path, const std::vector<std::string>& ignore_config_keys) {
  const nlohmann::json j = parse_json_file(path, "model config");
  if (!j.is_object()) throw InputError(path + ": expected a JSON object");
  check_keys(j, path, ignore_config_keys);
  ModelArch m;
  m.name = std::filesystem::path(path).stem().string();
  if (m.name == "config") m.name = std::filesystem::path(path).parent_path().filename().string();
  m.hidden_size = get_int(j, path, "hidden_size");
  m.intermediate_size = get_int(j, path, "intermediate_size");
  m.num_layers = get_int(j, path, "num_hidden_layers");
  m.num_heads = get_int(j, path, "num_attention_heads");
  m.num_kv_heads = present(j, "num_key_value_heads") ? get_int(j, path, "num_key_value_heads") : m.num_heads;
  if (!present(j, "head_dim") && m.hidden_size < m.num_heads) {
    // head_dim = hidden_size / num_attention_heads would be 0: the config is wrong, not the hardware.
    throw InputError(path + ": hidden_size (" + std::to_string(m.hidden_size) + ") is smaller than num_attention_heads (" +
                     std::to_string(m.num_heads) + "), so head_dim = hidden_size / num_attention_heads is 0 (give "
                     "head_dim or fix the sizes)");
  }
  m.head_dim = present(j, "head_dim") ? get_int(j, path, "head_dim") : m.hidden_size / m.num_heads;
  m.vocab_size = get_int(j, path, "vocab_size");
  m.max_position_embeddings =
      present(j, "max_position_embeddings") ? get_int(j, path, "max_position_embeddings") : 4096;
  m.tie_word_embeddings = opt_bool(j, path, "tie_word_embeddings", false);
  const std::string type = opt_string(j, path, "model_type", "llama");
  // Decoder layouts whose every cost-relevant difference is in the keys read here (qkv biases, head_dim, Qwen3's
  // q/k norms, the MoE and MLA keys).
  static constexpr std::string_view kTypes[] = {"llama",     "mistral",     "mixtral",     "qwen2",
                                                "qwen2_moe", "qwen3",       "qwen3_moe",   "deepseek_v2",
                                                "deepseek_v3", "gpt_oss"};
  if (std::ranges::find(kTypes, type) == std::end(kTypes) && !ignored(ignore_config_keys, "model_type")) {
    throw InputError(path + ": model_type = \"" + type +
                     "\": not a modelled architecture (llama, mistral, mixtral, qwen2, qwen2_moe, qwen3, qwen3_moe, "
                     "deepseek_v2, deepseek_v3, gpt_oss); if it is a Llama-style decoder, accept it knowingly with "
                     "[model] ignore_config_keys = [\"model_type\"]");
  }
  const std::string act = opt_string(j, path, "hidden_act", "silu");
  if (act != "silu" && act != "swish" && !ignored(ignore_config_keys, "hidden_act")) {
    throw InputError(path + ": hidden_act = \"" + act +
                     "\": only silu (the SwiGLU MLP) is modelled; to cost it as SwiGLU, accept it knowingly with "
                     "[model] ignore_config_keys = [\"hidden_act\"]");
  }
  if (opt_bool(j, path, "mlp_bias", false) && !ignored(ignore_config_keys, "mlp_bias")) {
    throw InputError(path + ": mlp_bias = true: MLP biases are not modelled; to cost the model without them, accept "
                     "it knowingly with [model] ignore_config_keys = [\"mlp_bias\"]");
  }
  m.qkv_bias = opt_bool(j, path, "attention_bias", type == "qwen2" || type == "qwen2_moe");
  // transformers' Llama-style attention (Llama, Mistral, gpt-oss) puts attention_bias on o_proj too; Qwen2's o_proj
  // never has one.
  m.o_bias = m.qkv_bias && type.rfind("qwen", 0) != 0;
  m.attention_sinks = type == "gpt_oss";
  m.qk_norm = type == "qwen3" || type == "qwen3_moe";
  read_mla(j, path, m);
  if (m.mla.enabled() && m.qkv_bias) {
    throw InputError(path + ": attention_bias = true with multi-head latent attention is not modelled");
  }
  read_moe(j, path, type, m);
  if (m.num_heads % m.num_kv_heads != 0) {
    throw InputError(path + ": num_attention_heads (" + std::to_string(m.num_heads) +
                     ") is not a multiple of num_key_value_heads (" + std::to_string(m.num_kv_heads) + ")");
  }
  read_sliding_window(j, path, type, m);
  const std::string dtype = opt_string(j, path, "torch_dtype", opt_string(j, path, "dtype", "bfloat16"));
  if (dtype == "float32") m.weight_bytes_per_param = 4.0;
  if (present(j, "quantization_config")) {
    const auto& q = j.at("quantization_config");
    if (!q.is_object()) throw InputError(path + ": key 'quantization_config' must be an object");
    m.quant_method = opt_string(q, path, "quant_method", "");
    if (m.quant_method == "mxfp4" && m.moe.enabled()) {
      m.quantization = Quantization::mxfp4;
    } else {
      m.quant_method_modelled = fp8_scheme(q, m.quant_method);
      if (m.quant_method_modelled) m.quantization = Quantization::fp8;
      m.fp8_block_scaled = m.quant_method_modelled && present(q, "weight_block_size");
    }
  }
  return m;
}

}  // namespace servesim
