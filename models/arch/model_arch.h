// Model architecture of a decoder-only transformer, read from a Hugging Face config.json, and the sizes that follow
// from it: parameters, weight bytes, KV-cache bytes per token.
//   Dense: Llama 2/3, Mistral, Qwen2 (attention full causal on every layer, or sliding-window on some or all layers:
//   Mistral, Qwen2 with use_sliding_window).
//   Mixture-of-experts (MoeArch): Mixtral, Qwen2-MoE, Qwen3-MoE, DeepSeek-V2/V3, gpt-oss - routed experts, top-k
//   routing, shared experts, dense layers before or between the MoE layers; gpt-oss's expert and attention biases,
//   attention sinks and MXFP4 expert weights.
//   Multi-head latent attention (MlaArch): DeepSeek-V2/V3 - the KV cache holds one compressed latent per token and
//   layer (kv_lora_rank + qk_rope_head_dim elements), shared by every head.
// Any config.json key that servesim neither models nor knowingly ignores is refused (model_arch.cpp lists both).
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
// mxfp4: the routed experts' weights only, in OCP MXFP4 (4-bit e2m1 values, one e8m0 scale per block of 32:
// kMxfp4BytesPerWeight), as gpt-oss ships them (quantization_config.quant_method "mxfp4") and vLLM's Mxfp4Config
// runs them: its FusedMoE layers only, every other linear layer unquantized (UnquantizedLinearMethod), whatever
// modules_to_not_convert lists. Costed weight-only: the experts' weight reads at 4.25 bits, their math at the
// activations' precision (on Hopper and Ampere vLLM's Marlin / Triton MXFP4 kernels dequantize to bf16; the FP4
// tensor-core path of Blackwell is not modelled). MoE models only.
enum class Quantization { none, fp8, mxfp4 };
// Bytes per MXFP4 weight: 4 bits + one 8-bit scale per 32 weights = 4.25 bits (OCP Microscaling Formats (MX)
// Specification v1.0, MXFP4: block size 32, E8M0 scale).
inline constexpr double kMxfp4BytesPerWeight = (4.0 + 8.0 / 32.0) / 8.0;
[[nodiscard]] const char* to_string(Quantization q);
// "none" | "fp8" | "mxfp4"; anything else throws InputError "<where>: ... (valid: none, fp8, mxfp4)".
[[nodiscard]] Quantization parse_quantization(std::string_view name, const std::string& where);

// Mixture-of-experts layout (num_experts == 0: a dense model). Sources, as transformers / vLLM read them:
//   routed experts: num_local_experts (Mixtral), num_experts (Qwen2/3-MoE), n_routed_experts (DeepSeek);
//   experts per token: num_experts_per_tok;
//   expert FFN width: moe_intermediate_size (Qwen, DeepSeek), intermediate_size (Mixtral's experts);
//   shared experts, always run: DeepSeek n_shared_experts x moe_intermediate_size; Qwen2-MoE
//   shared_expert_intermediate_size with a sigmoid gate (a [hidden -> 1] linear);
//   which layers are MoE: DeepSeek layer i >= first_k_dense_replace and i % moe_layer_freq == 0; Qwen
//   (i + 1) % decoder_sparse_step == 0 and i not in mlp_only_layers; Mixtral every layer. The other layers run
//   a dense SwiGLU MLP of intermediate_size.
struct MoeArch {
  std::int64_t num_experts = 0;               // routed experts E
  std::int64_t experts_per_token = 0;         // k (top-k)
  std::int64_t expert_intermediate_size = 0;  // one expert's FFN width
  std::int64_t shared_intermediate_size = 0;  // all shared experts' FFN width together (0 = none)
  bool shared_expert_gate = false;            // Qwen2-MoE: sigmoid(x . w) scales the shared expert's output
  // gpt-oss: biases on every expert's gate_up (2 x width) and down (hidden) projections and on the router (E), in
  // the checkpoint dtype.
  bool expert_bias = false;
  // DeepSeek's n_group: the experts in equal contiguous groups (EPLB's hierarchical placement keeps a group on one
  // node). 1 for models without groups.
  std::int64_t num_expert_groups = 1;
  // DeepSeek's topk_group: each token's experts within this many of the groups (vLLM's grouped_topk; group-limited
  // routing, ExpertRouting::limited_to_groups), 1 .. num_expert_groups; config.json without it: num_expert_groups
  // (no limit), as the default pair 1 / 1 is.
  std::int64_t topk_group = 1;
  std::vector<bool> layer_moe;                // per layer: MoE (true) or dense MLP; empty for a dense model
  [[nodiscard]] bool enabled() const { return num_experts > 0; }
  // MoE layers among layers [first, first + count) (all layers by default).
  [[nodiscard]] std::int64_t moe_layers(std::int64_t first = 0, std::int64_t count = -1) const;
  // Parameters of one expert's SwiGLU FFN (gate, up, down): 3 x hidden x expert_intermediate_size.
  [[nodiscard]] double expert_params(std::int64_t hidden) const {
    return 3.0 * double(hidden) * double(expert_intermediate_size);
  }
  // One expert's biases (expert_bias): 2 x expert_intermediate_size + hidden; else 0.
  [[nodiscard]] double expert_bias_params(std::int64_t hidden) const {
    return expert_bias ? 2.0 * double(expert_intermediate_size) + double(hidden) : 0.0;
  }
};

// Multi-head latent attention (DeepSeek-V2/V3; kv_lora_rank == 0: standard attention). Per layer, as vLLM's
// DeepseekV2MLAAttention holds it: q = q_b_proj(norm(q_a_proj(x))) with q_lora_rank (or q_proj(x) without it),
// [kv latent | k_rope] = kv_a_proj_with_mqa(x), K_nope and V = kv_b_proj(norm(latent)), o_proj. The KV cache
// stores only [latent | k_rope]: (kv_lora_rank + qk_rope_head_dim) elements per token and layer, the same for
// every head and every tensor-parallel rank.
struct MlaArch {
  std::int64_t kv_lora_rank = 0;
  std::int64_t q_lora_rank = 0;  // 0: q_proj directly (DeepSeek-V2-Lite)
  std::int64_t qk_nope_head_dim = 0;
  std::int64_t qk_rope_head_dim = 0;
  std::int64_t v_head_dim = 0;
  [[nodiscard]] bool enabled() const { return kv_lora_rank > 0; }
  [[nodiscard]] std::int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // Elements cached per token and layer.
  [[nodiscard]] std::int64_t latent_dim() const { return kv_lora_rank + qk_rope_head_dim; }
};

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
  bool o_bias = false;         // and Llama-style attention_bias = true (gpt-oss) on o as well
  // gpt-oss's attention sinks: one learned logit per head and layer added to every softmax (num_heads parameters a
  // layer). The attention kernel's extra work (one more logit per row) is not costed.
  bool attention_sinks = false;
  double weight_bytes_per_param = 2.0;  // bf16 / fp16
  double kv_bytes_per_element = 2.0;    // bf16 / fp16 KV cache (1 with an fp8 KV cache)
  Quantization quantization = Quantization::none;
  // config.json's quantization_config.quant_method ("" without one), and whether servesim models that scheme
  // (fp8, fbgemm_fp8, modelopt FP8, compressed-tensors with 8-bit float weights: all as fp8).
  std::string quant_method;
  bool quant_method_modelled = true;
  // An fp8 checkpoint with block-wise weight scales (quantization_config.weight_block_size, DeepSeek-V3's [128, 128]):
  // vLLM runs its MoE experts through DeepGEMM's modular kernel (moe_activation_peak); costed as per-tensor fp8.
  bool fp8_block_scaled = false;

  // Sliding-window attention: the window in tokens (a query attends to itself and the window - 1 tokens before
  // it, as vLLM's FlashAttention backend runs HF's `sliding_window`); 0 = none. layer_sliding[i]: layer i uses it
  // (HF layer_types "sliding_attention"); empty when no layer does.
  std::int64_t sliding_window = 0;
  std::vector<bool> layer_sliding;

  MoeArch moe;
  MlaArch mla;
  bool qk_norm = false;  // Qwen3: RMSNorm over each head's q and k (head_dim weights each)

  // Reads config.json; a missing or malformed field throws InputError "file: key: message". Refused, naming the
  // key: mixture-of-experts and MLA configs, and any key in neither of model_arch.cpp's lists (modelled, knowingly
  // ignored) unless it is in `ignore_config_keys` ([model] ignore_config_keys: accepted knowingly, costed as if
  // absent). Integer keys have upper limits far above any published model, so that size products cannot overflow
  // (model_arch.cpp, kIntLimits: 1e4 layers, 2^16 heads and experts, 2^20 widths, 2^24 vocab, 2^30 positions);
  // past one: InputError "file: key 'KEY' = V is past the limit of MAX ...".
  [[nodiscard]] static ModelArch from_hf_config(const std::string& path,
                                                const std::vector<std::string>& ignore_config_keys = {});

  // Sliding-window layers among layers [first, first + count) (all layers by default).
  [[nodiscard]] std::int64_t sliding_layers(std::int64_t first = 0, std::int64_t count = -1) const;
  // The window the KV cache may slide by: sliding_window when every layer uses it, else 0. A mix of full and
  // sliding layers gets vLLM's hybrid KV cache groups (sim/engine/kv_cache.h KvGroups::of) and each layer's
  // attention is costed over its own window.
  [[nodiscard]] std::int64_t kv_window() const {
    return sliding_window > 0 && sliding_layers() == num_layers ? sliding_window : 0;
  }

  // Standard attention's q and k/v widths (whole model). MLA models: q_dim is heads x qk_head_dim; kv_dim is unused.
  [[nodiscard]] std::int64_t q_dim() const { return num_heads * (mla.enabled() ? mla.qk_head_dim() : head_dim); }
  [[nodiscard]] std::int64_t kv_dim() const { return num_kv_heads * head_dim; }
  // Per layer, whole model (not one GPU's share). Linear weights (quantized with fp8) and the rest (biases, norms,
  // routers: kept in the checkpoint dtype, as vLLM builds routers with quant_config=None).
  //   attention, standard: q, k, v, o;  MLA: q_a + q_b (or q), kv_a_proj_with_mqa, kv_b, o.
  [[nodiscard]] double attention_linear_params() const;
  // q/k/v(/o) biases; MLA's q_a / kv_a norms; Qwen3's q/k norms; gpt-oss's sinks
  [[nodiscard]] double attention_other_params() const;
  // MLP of layer `layer`: dense 3 x hidden x intermediate_size; MoE: every routed expert + the shared experts.
  [[nodiscard]] double mlp_linear_params(std::int64_t layer) const;
  // router [hidden -> E] (+ shared-expert gate; + router and expert biases with expert_bias)
  [[nodiscard]] double mlp_other_params(std::int64_t layer) const;
  // Whether layer `layer` is a mixture-of-experts layer.
  [[nodiscard]] bool is_moe_layer(std::int64_t layer) const {
    return moe.enabled() && moe.layer_moe[static_cast<std::size_t>(layer)];
  }
  // Parameters of decoder layer `layer` (attention + MLP + two norms).
  [[nodiscard]] double layer_params(std::int64_t layer = 0) const;
  // All parameters: layers, embedding, final norm, LM head (counted once when tied).
  [[nodiscard]] double params() const;
  // Parameters one token runs through: params() with experts_per_token routed experts instead of all of them.
  [[nodiscard]] double active_params() const;
  // Bytes per parameter of the linear layers' weights.
  [[nodiscard]] double linear_bytes_per_param() const {
    return quantization == Quantization::fp8 ? 1.0 : weight_bytes_per_param;
  }
  // Bytes per parameter of the routed experts' weights: kMxfp4BytesPerWeight with mxfp4, else as the other linear
  // layers.
  [[nodiscard]] double expert_bytes_per_param() const {
    return quantization == Quantization::mxfp4 ? kMxfp4BytesPerWeight : linear_bytes_per_param();
  }
  // Parameters of layer `layer`'s routed experts' weights (every expert; 0 for a dense layer).
  [[nodiscard]] double routed_expert_params(std::int64_t layer) const {
    return is_moe_layer(layer) ? double(moe.num_experts) * moe.expert_params(hidden_size) : 0.0;
  }
  // Parameters of layer `layer`'s linear weights (attention and MLP matrices, without biases, norms, routers).
  [[nodiscard]] double linear_params_per_layer(std::int64_t layer = 0) const {
    return attention_linear_params() + mlp_linear_params(layer);
  }
  // Every weight: routed experts' at expert_bytes_per_param, other linear ones at linear_bytes_per_param, the rest
  // at weight_bytes_per_param.
  [[nodiscard]] Bytes weight_bytes() const;
  // KV-cache bytes of one token over all layers, whole model. Standard attention: K and V,
  // 2 x layers x num_kv_heads x head_dim x kv_bytes_per_element (divide by TP for one GPU's share).
  // MLA: layers x (kv_lora_rank + qk_rope_head_dim) x kv_bytes_per_element, on every GPU (not split by TP).
  [[nodiscard]] Bytes kv_bytes_per_token() const {
    if (mla.enabled()) return Bytes{static_cast<double>(num_layers * mla.latent_dim()) * kv_bytes_per_element};
    return Bytes{2.0 * static_cast<double>(num_layers * num_kv_heads * head_dim) * kv_bytes_per_element};
  }
};

}  // namespace servesim
