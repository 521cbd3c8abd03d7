// Model architecture of a dense decoder-only transformer (Llama 2/3, Mistral, Qwen2), read from a Hugging Face
// config.json, and the sizes that follow from it: parameters, weight bytes, KV-cache bytes per token.
// Attention is full causal on every layer, or sliding-window on some or all layers (Mistral, Qwen2 with
// use_sliding_window). Mixture-of-experts and multi-head latent attention configs are refused (not modelled yet),
// and so is any config.json key that servesim neither models nor knowingly ignores (model_arch.cpp lists both).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/common/units.h"

namespace servesim {

// Weight quantization of the linear layers (q/k/v/o, gate/up/down). fp8: e4m3 weights with per-tensor scales,
// as vLLM's `quantization="fp8"` or an fp8 checkpoint (block-wise scaled ones too, costed as per-tensor); the
// embedding, LM head and norms stay in the checkpoint dtype.
enum class Quantization { none, fp8 };
[[nodiscard]] const char* to_string(Quantization q);
// "none" | "fp8"; anything else throws InputError "<where>: ... (valid: none, fp8)".
[[nodiscard]] Quantization parse_quantization(std::string_view name, const std::string& where);

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
  double kv_bytes_per_element = 2.0;    // bf16 / fp16 KV cache (1 with an fp8 KV cache)
  Quantization quantization = Quantization::none;
  // config.json's quantization_config.quant_method ("" without one), and whether servesim models that scheme
  // (fp8, fbgemm_fp8, modelopt FP8, compressed-tensors with 8-bit float weights: all as fp8).
  std::string quant_method;
  bool quant_method_modelled = true;

  // Sliding-window attention: the window in tokens (a query attends to itself and the window - 1 tokens before
  // it, as vLLM's FlashAttention backend runs HF's `sliding_window`); 0 = none. layer_sliding[i]: layer i uses it
  // (HF layer_types "sliding_attention"); empty when no layer does.
  std::int64_t sliding_window = 0;
  std::vector<bool> layer_sliding;

  // Reads config.json; a missing or malformed field throws InputError "file: key: message". Refused, naming the
  // key: mixture-of-experts and MLA configs, and any key in neither of model_arch.cpp's lists (modelled, knowingly
  // ignored) unless it is in `ignore_config_keys` ([model] ignore_config_keys: accepted knowingly, costed as if
  // absent).
  [[nodiscard]] static ModelArch from_hf_config(const std::string& path,
                                                const std::vector<std::string>& ignore_config_keys = {});

  // Sliding-window layers among layers [first, first + count) (all layers by default).
  [[nodiscard]] std::int64_t sliding_layers(std::int64_t first = 0, std::int64_t count = -1) const;
  // The window the KV cache may slide by: sliding_window when every layer uses it, else 0. With a mix of full and
  // sliding layers vLLM's hybrid allocator keeps separate block groups; servesim holds the KV as full attention
  // (conservative: more memory than vLLM) and costs each layer's attention over its own window.
  [[nodiscard]] std::int64_t kv_window() const {
    return sliding_window > 0 && sliding_layers() == num_layers ? sliding_window : 0;
  }

  [[nodiscard]] std::int64_t q_dim() const { return num_heads * head_dim; }
  [[nodiscard]] std::int64_t kv_dim() const { return num_kv_heads * head_dim; }
  // Parameters of one decoder layer (attention + MLP + two norms).
  [[nodiscard]] double layer_params() const;
  // All parameters: layers, embedding, final norm, LM head (counted once when tied).
  [[nodiscard]] double params() const;
  // Bytes per parameter of the linear layers' weights.
  [[nodiscard]] double linear_bytes_per_param() const {
    return quantization == Quantization::fp8 ? 1.0 : weight_bytes_per_param;
  }
  // Parameters of one layer's linear weights (q/k/v/o and MLP matrices, without biases).
  [[nodiscard]] double linear_params_per_layer() const;
  [[nodiscard]] Bytes weight_bytes() const {
    const double linear = static_cast<double>(num_layers) * linear_params_per_layer();
    return Bytes{linear * linear_bytes_per_param() + (params() - linear) * weight_bytes_per_param};
  }
  // K and V of one token over all layers, whole model (divide by TP for one GPU's share).
  [[nodiscard]] Bytes kv_bytes_per_token() const {
    return Bytes{2.0 * static_cast<double>(num_layers * num_kv_heads * head_dim) * kv_bytes_per_element};
  }
};

}  // namespace servesim
