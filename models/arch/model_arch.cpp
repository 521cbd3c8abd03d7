#include "models/arch/model_arch.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "models/common/error.h"

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

}  // namespace

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

ModelArch ModelArch::from_hf_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open model config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(path + ": not valid JSON (byte " + std::to_string(e.byte) + ")");
  }
  if (!j.is_object()) throw InputError(path + ": expected a JSON object");
  ModelArch m;
  m.name = std::filesystem::path(path).stem().string();
  if (m.name == "config") m.name = std::filesystem::path(path).parent_path().filename().string();
  m.hidden_size = get_int(j, path, "hidden_size");
  m.intermediate_size = get_int(j, path, "intermediate_size");
  m.num_layers = get_int(j, path, "num_hidden_layers");
  m.num_heads = get_int(j, path, "num_attention_heads");
  m.num_kv_heads = present(j, "num_key_value_heads") ? get_int(j, path, "num_key_value_heads") : m.num_heads;
  m.head_dim = present(j, "head_dim") ? get_int(j, path, "head_dim") : m.hidden_size / m.num_heads;
  m.vocab_size = get_int(j, path, "vocab_size");
  m.max_position_embeddings =
      present(j, "max_position_embeddings") ? get_int(j, path, "max_position_embeddings") : 4096;
  m.tie_word_embeddings = opt_bool(j, path, "tie_word_embeddings", false);
  const std::string type = opt_string(j, path, "model_type", "llama");
  m.qkv_bias = opt_bool(j, path, "attention_bias", type == "qwen2");
  if (m.num_heads % m.num_kv_heads != 0) {
    throw InputError(path + ": num_attention_heads (" + std::to_string(m.num_heads) +
                     ") is not a multiple of num_key_value_heads (" + std::to_string(m.num_kv_heads) + ")");
  }
  const std::string dtype = opt_string(j, path, "torch_dtype", "bfloat16");
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
