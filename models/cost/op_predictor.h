// Op-time predictor: how long one GPU takes for one operator of a step. Implementations registered by name
// (see op_predictor_registry.cpp): "roofline" (analytic, datasheet peaks x efficiency) and "calibrated"
// (interpolation over a measured profile, fitted model outside it).
//
// Contract: pure functions of the shape; the same shape always gives the same time; times include the
// kernel launch overhead; never negative.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "models/cost/batch.h"
#include "models/common/units.h"

namespace servesim {

enum class Bound { memory, compute, communication, overhead };
[[nodiscard]] const char* to_string(Bound b);

struct OpCost {
  Seconds time{0.0};
  Bound bound = Bound::memory;
};

// Y[m,n] = X[m,k] . W[n,k]^T; `op` names the layer (qkv, o, gate_up, down, lm_head) so that a calibrated
// predictor can use that layer's own measurements.
// Precision: bf16 (bytes_per_element 2 everywhere); fp8 weights (weight_bytes_per_element 1) with bf16 math where
// the GPU lacks fp8 tensor cores (weight-only, W8A16); fp8 math (W8A8: X quantized to 1-byte fp8, Y in bf16).
struct GemmShape {
  std::string_view op;
  std::int64_t m = 0;
  std::int64_t n = 0;
  std::int64_t k = 0;
  double bytes_per_element = 2.0;         // X and Y
  double weight_bytes_per_element = 0.0;  // W; 0 = bytes_per_element
  bool fp8 = false;                       // fp8 tensor-core math
  [[nodiscard]] Flops flops() const { return Flops{2.0 * double(m) * double(n) * double(k)}; }
  [[nodiscard]] double x_bytes_per_element() const { return fp8 ? 1.0 : bytes_per_element; }
  [[nodiscard]] double w_bytes_per_element() const {
    return weight_bytes_per_element > 0 ? weight_bytes_per_element : bytes_per_element;
  }
  [[nodiscard]] Bytes bytes() const {
    return Bytes{double(m) * double(k) * x_bytes_per_element() + double(n) * double(k) * w_bytes_per_element() +
                 double(m) * double(n) * bytes_per_element};
  }
};

// A grouped GEMM (mixture-of-experts experts run as one kernel, as vLLM's fused_moe and CUTLASS grouped GEMMs do):
// `groups` experts each with its own weight W_g[n,k], `rows` token rows in total routed to them. The kernel tiles
// every group by the rows of the busiest one (`rows_per_group`): the slowest group bounds the kernel, so
//   FLOPs = 2 x groups x rows_per_group x n x k       (rows_per_group >= rows / groups)
//   bytes = groups x n x k x weight bytes + rows x (k x input bytes + n x output bytes)
// groups and rows_per_group are expectations (fractional): groups = experts that receive at least one token.
struct GroupedGemmShape {
  std::string_view op;
  double groups = 0.0;
  double rows = 0.0;
  double rows_per_group = 0.0;
  std::int64_t n = 0;
  std::int64_t k = 0;
  double bytes_per_element = 2.0;         // X and Y
  double weight_bytes_per_element = 0.0;  // W; 0 = bytes_per_element
  bool fp8 = false;                       // fp8 tensor-core math (X quantized to 1 byte)
  [[nodiscard]] Flops flops() const { return Flops{2.0 * groups * rows_per_group * double(n) * double(k)}; }
  [[nodiscard]] Bytes bytes() const {
    const double w = weight_bytes_per_element > 0 ? weight_bytes_per_element : bytes_per_element;
    const double x = fp8 ? 1.0 : bytes_per_element;
    return Bytes{groups * double(n) * double(k) * w + rows * (double(k) * x + double(n) * bytes_per_element)};
  }
};

// Attention heads on one GPU (after tensor parallelism).
struct AttentionShape {
  std::int64_t heads_q = 0;
  std::int64_t heads_kv = 0;
  std::int64_t head_dim = 0;
  double bytes_per_element = 2.0;      // K and V (the KV-cache dtype)
  double act_bytes_per_element = 2.0;  // Q and O (the model's activations)
  bool fp8 = false;  // fp8 attention math (FlashAttention-3 with an fp8 KV cache): Q quantized, fp8 tensor-core rate
  // Sliding-window layers: a query attends to at most `window` keys, itself included (vLLM's FlashAttention
  // window (window - 1, 0) for HF's sliding_window); 0 = full causal attention.
  std::int64_t window = 0;
  // Multi-head latent attention: V's width when it differs from head_dim (0 = head_dim), and whether K and V are
  // one cached latent (MLA's absorbed decode: each cached token is head_dim elements per KV head, V its first
  // v_head_dim of them) rather than two tensors.
  std::int64_t v_head_dim = 0;
  bool latent_kv = false;
  [[nodiscard]] double q_bytes_per_element() const { return fp8 ? 1.0 : act_bytes_per_element; }
  [[nodiscard]] std::int64_t v_dim() const { return v_head_dim > 0 ? v_head_dim : head_dim; }
  // Elements of K and V one cached token holds per KV head.
  [[nodiscard]] std::int64_t kv_elements_per_head() const { return latent_kv ? head_dim : head_dim + v_dim(); }
};

// FLOPs and bytes of attention, shared by every predictor (and by the step breakdown).
// Prefill, causal, per chunk: QK^T and PV over chunk x (context + (chunk+1)/2) query-key pairs; with a window W,
// query i of the chunk (position context + i) attends to min(context + i + 1, W) keys, and the chunk reads the
// keys from position max(0, context + 1 - W) on.
[[nodiscard]] double prefill_attention_pairs(const AttentionShape& a, std::span<const PrefillChunk> chunks);
[[nodiscard]] Flops prefill_attention_flops(const AttentionShape& a, std::span<const PrefillChunk> chunks);
[[nodiscard]] Bytes prefill_attention_bytes(const AttentionShape& a, std::span<const PrefillChunk> chunks);
// Decode: every sequence reads K and V of all its cached tokens (`kv_tokens`, summed over the batch; on a
// sliding-window layer the caller passes the sum of min(tokens, window)).
[[nodiscard]] Flops decode_attention_flops(const AttentionShape& a, std::int64_t kv_tokens);
[[nodiscard]] Bytes decode_attention_bytes(const AttentionShape& a, std::int64_t batch, std::int64_t kv_tokens);

class OpPredictor {
 public:
  virtual ~OpPredictor() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  [[nodiscard]] virtual OpCost gemm(const GemmShape& g) const = 0;
  [[nodiscard]] virtual OpCost attention_prefill(const AttentionShape& a,
                                                 std::span<const PrefillChunk> chunks) const = 0;
  [[nodiscard]] virtual OpCost attention_decode(const AttentionShape& a, std::int64_t batch,
                                                std::int64_t kv_tokens) const = 0;
  // Norms, activations, residual adds, RoPE, sampling: streaming kernels.
  [[nodiscard]] virtual OpCost elementwise(Bytes bytes, Flops flops) const = 0;
  [[nodiscard]] virtual OpCost grouped_gemm(const GroupedGemmShape& g) const = 0;
};

}  // namespace servesim
