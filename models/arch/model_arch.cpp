#include "models/arch/model_arch.h"

#include <algorithm>
#include <filesystem>
#include <span>

#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "models/common/json_file.h"

namespace servesim {
namespace {

std::int64_t get_int(const nlohmann::json& j, const std::string& file, const char* key) {
  if (!j.contains(key)) throw InputError(file + ": missing key '" + key + "'");
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<std::int64_t>() <= 0) {
    throw InputError(file + ": key '" + key + "' must be a positive integer");
  }
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
    "quantization_config",  // fp8 schemes (see fp8_scheme)
    "sliding_window", "use_sliding_window", "max_window_layers", "layer_types",  // sliding-window attention
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
};

// Mixture-of-experts and multi-head latent attention (DeepSeek-V2/V3) keys: refused until modelled (costed as a
// dense model, Mixtral-8x7B would "fit" one H100 and DeepSeek-V2-Lite's KV would be 7.1x too large). A null, 0 or
// false value is a dense config's way of saying "none".
constexpr std::string_view kMoeKeys[] = {
    "num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size",
    "n_shared_experts", "shared_expert_intermediate_size", "first_k_dense_replace", "moe_layer_freq",
    "decoder_sparse_step", "experts_per_token",
};
constexpr std::string_view kMlaKeys[] = {"kv_lora_rank", "q_lora_rank"};

bool set_value(const nlohmann::json& j, std::string_view key) {
  const std::string k(key);
  if (!j.contains(k)) return false;
  const auto& v = j.at(k);
  return !(v.is_null() || (v.is_number() && v.get<double>() == 0.0) || (v.is_boolean() && !v.get<bool>()));
}

std::string first_set(const nlohmann::json& j, std::span<const std::string_view> keys) {
  for (const auto k : keys) {
    if (set_value(j, k)) return std::string(k) + " = " + j.at(std::string(k)).dump();
  }
  return "";
}

// The refusals that no [model] ignore_config_keys lifts, then the keys in neither list.
void check_keys(const nlohmann::json& j, const std::string& file, const std::vector<std::string>& ignore) {
  const std::string moe = first_set(j, kMoeKeys);
  const std::string mla = first_set(j, kMlaKeys);
  if (!moe.empty()) {
    throw InputError(file + ": " + moe +
                     ": mixture-of-experts models are not modelled yet (costed as dense, the weights, FLOPs and "
                     "memory would be wrong)" +
                     (mla.empty() ? "" : "; nor is multi-head latent attention (" + mla + ")") +
                     "; use a dense model");
  }
  if (!mla.empty()) {
    throw InputError(file + ": " + mla +
                     ": multi-head latent attention (MLA) is not modelled yet (costed as standard attention, the KV "
                     "cache would be several times too large); use a model with standard attention");
  }
  std::vector<std::string> unknown;
  for (const auto& [key, value] : j.items()) {
    const auto known = [&](std::string_view k) { return k == key; };
    if (std::ranges::any_of(kModelledKeys, known) ||
        std::ranges::any_of(kIgnoredKeys, [&](const IgnoredKey& k) { return k.key == key; }) ||
        std::ranges::any_of(kMoeKeys, known) || std::ranges::any_of(kMlaKeys, known) ||
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

}  // namespace

std::int64_t ModelArch::sliding_layers(std::int64_t first, std::int64_t count) const {
  if (layer_sliding.empty()) return 0;
  const std::int64_t end = count < 0 ? num_layers : std::min(num_layers, first + count);
  std::int64_t n = 0;
  for (std::int64_t i = std::max<std::int64_t>(0, first); i < end; ++i) n += layer_sliding[std::size_t(i)] ? 1 : 0;
  return n;
}

const char* to_string(Quantization q) { return q == Quantization::fp8 ? "fp8" : "none"; }

Quantization parse_quantization(std::string_view name, const std::string& where) {
  if (name == "none") return Quantization::none;
  if (name == "fp8") return Quantization::fp8;
  throw InputError(where + ": quantization '" + std::string(name) + "' is not modelled (valid: none, fp8)");
}

double ModelArch::linear_params_per_layer() const {
  const double h = static_cast<double>(hidden_size);
  return h * static_cast<double>(q_dim() + 2 * kv_dim()) + static_cast<double>(q_dim()) * h +
         3.0 * h * static_cast<double>(intermediate_size);
}

double ModelArch::layer_params() const {
  const double h = static_cast<double>(hidden_size);
  const double attn = h * static_cast<double>(q_dim() + 2 * kv_dim()) + static_cast<double>(q_dim()) * h +
                      (qkv_bias ? static_cast<double>(q_dim() + 2 * kv_dim()) : 0.0);
  const double mlp = 3.0 * h * static_cast<double>(intermediate_size);
  const double norms = 2.0 * h;
  return attn + mlp + norms;
}

double ModelArch::params() const {
  const double h = static_cast<double>(hidden_size);
  const double embed = static_cast<double>(vocab_size) * h;
  return static_cast<double>(num_layers) * layer_params() + embed + (tie_word_embeddings ? 0.0 : embed) + h;
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
  // Dense decoder layouts whose every cost-relevant difference is in the keys above (qkv biases, head_dim).
  static constexpr std::string_view kTypes[] = {"llama", "mistral", "qwen2"};
  if (std::ranges::find(kTypes, type) == std::end(kTypes) && !ignored(ignore_config_keys, "model_type")) {
    throw InputError(path + ": model_type = \"" + type +
                     "\": not a modelled architecture (llama, mistral, qwen2); if it is a dense Llama-style decoder, "
                     "accept it knowingly with [model] ignore_config_keys = [\"model_type\"]");
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
  m.qkv_bias = opt_bool(j, path, "attention_bias", type == "qwen2");
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
    m.quant_method_modelled = fp8_scheme(q, m.quant_method);
    if (m.quant_method_modelled) m.quantization = Quantization::fp8;
  }
  return m;
}

}  // namespace servesim
