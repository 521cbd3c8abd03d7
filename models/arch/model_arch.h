// Model architecture of a dense decoder-only transformer (Llama 2/3, Mistral, Qwen2), read from a Hugging Face
// config.json, and the sizes that follow from it: parameters, weight bytes, KV-cache bytes per token.
#pragma once
#include <cstdint>
#include <string>

#include "models/common/units.h"

namespace servesim {

struct ModelArch {
  std::string name;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t vocab_size = 0;
  std::int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;       // Qwen2 has biases on the q, k, v projections
  double weight_bytes_per_param = 2.0;  // bf16 / fp16
  double kv_bytes_per_element = 2.0;    // bf16 / fp16 KV cache

  // Reads config.json; a missing or malformed field throws InputError "file: key: message".
  [[nodiscard]] static ModelArch from_hf_config(const std::string& path);

  [[nodiscard]] std::int64_t q_dim() const { return num_heads * head_dim; }
  [[nodiscard]] std::int64_t kv_dim() const { return num_kv_heads * head_dim; }
  // Parameters of one decoder layer (attention + MLP + two norms).
  [[nodiscard]] double layer_params() const;
  // All parameters: layers, embedding, final norm, LM head (counted once when tied).
  [[nodiscard]] double params() const;
  [[nodiscard]] Bytes weight_bytes() const { return Bytes{params() * weight_bytes_per_param}; }
  // K and V of one token over all layers, whole model (divide by TP for one GPU's share).
  [[nodiscard]] Bytes kv_bytes_per_token() const {
    return Bytes{2.0 * static_cast<double>(num_layers * num_kv_heads * head_dim) * kv_bytes_per_element};
  }
};

}  // namespace servesim
