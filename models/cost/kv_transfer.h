// KV-cache transfer sizing for disaggregated serving: how many bytes a request's KV cache is, which sender rank
// sends which part to which receiver rank when prefill and decode run at different tensor-parallel degrees, and how
// much of a layer-by-layer streamed transfer is left after the prefill ends.
//
// Bytes: a request of T tokens moves T x arch.kv_bytes_per_token() = T x 2 x layers x KV heads x head_dim x
// bytes per element (standard attention; K and V), or T x layers x (kv_lora_rank + qk_rope_head_dim) x bytes per
// element (MLA: one latent per token and layer, shared by every head).
//
// Tensor-parallel split (vLLM's layout): with TP degree t and H KV heads, rank i holds heads [i H / t, (i+1) H / t)
// when H >= t (H divisible by t), and head floor(i H / t) when H < t (each head replicated on t / H ranks; t divisible
// by H). A receiver rank needs exactly the heads it holds; for each, it reads from the lowest-numbered sender rank
// that holds it, and all heads from one sender form one (sender, receiver, bytes) pair. So TP s = r pairs rank i
// with rank i; s > r is a fan-in (each receiver gathers from s / r senders); s < r a fan-out (r / s receivers read
// from each sender). With replication at the receiver (H < r) the pairs' bytes sum to more than the request's KV
// (each replica is sent). MLA: every rank holds the whole latent, so every receiver rank j reads all of
// it, from sender j mod s.
//
// Sliding-window layers: where the KV cache frees a sliding-window layer's blocks outside its window (vLLM's hybrid
// KV cache manager for a mix of full and sliding layers, or sliding attention on every layer: KvGroups::window, and
// vLLM's NIXL connector with the hybrid manager, which moves each KV cache group's blocks still held), each sliding
// layer moves only the tokens of the blocks it still holds,
//     held = T - floor(max(0, T - W + 1) / block_size) x block_size     (W the window; vLLM's
//                                                                        SlidingWindowManager.remove_skipped_blocks)
// and every full-attention layer all T.
//
// Pipeline parallelism: with PP degree p the layers are split over the stages as the step model splits them
// (StepModel::pp_stage_layers, vLLM's get_pp_indices: the L % p extra layers go to the stages before the last,
// from the second-to-last backwards), and a stage's TP
// ranks hold only its layers' KV. A receiver stage gathers each of its layers from the sender stage that holds it:
// for every pair of overlapping (sender stage, receiver stage), the TP pairs above carry the overlap's layers only.
// GPU of (stage s, rank i) in a replica: its GPU list's entry s x tp + i (placement lists stage after stage).
//
// Layer-streamed transfer: the prefill computes L layers one after the other (layer l done at (l + 1) P / L for a
// prefill of P), and each layer's KV is sent as soon as it is computed, the sends one after the other on the link,
// each taking x. The part exposed after the prefill ends is
//     exposed = x + (L - 1) max(0, x - P / L)
// only the last layer's send when the link keeps up (x <= P / L), and the backlog too when it does not.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "models/arch/model_arch.h"
#include "models/common/units.h"

namespace servesim {

struct KvShard {
  int sender_rank = 0;
  int receiver_rank = 0;
  Bytes bytes{0};
  std::int64_t heads = 0;  // KV heads carried (standard attention); 0 for MLA (the whole latent)
  int sender_stage = 0;    // pipeline stages (0 without pipeline parallelism)
  int receiver_stage = 0;
  std::int64_t layers = 0;  // layers carried (every layer of the model without pipeline parallelism)
  friend bool operator==(const KvShard&, const KvShard&) = default;
};

// One side's parallel layout: tensor-parallel and pipeline-parallel degrees, and data-parallel attention's ranks
// (dp groups of tp GPUs per stage; a sequence's KV lives on one rank, kv_transfer_pairs' tp ranks).
struct KvLayout {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  // Position in the replica's GPU list (stage after stage, within a stage rank after rank of tp GPUs) of tensor
  // rank `tp_rank` of data-parallel rank `dp_rank` in stage `stage`.
  [[nodiscard]] std::size_t gpu(int stage, int dp_rank, int tp_rank) const {
    return static_cast<std::size_t>((stage * dp + dp_rank) * tp + tp_rank);
  }
};

// T x arch.kv_bytes_per_token(). Throws InputError for tokens < 0 or above kMaxTokensPerRequest.
[[nodiscard]] Bytes kv_transfer_bytes(const ModelArch& arch, std::int64_t tokens);

// The (sender rank, receiver rank, bytes) pairs of a request of `tokens` tokens from a sender of TP `sender_tp`
// to a receiver of TP `receiver_tp`, sorted by receiver rank, then sender rank. Throws InputError (naming the
// degree) for a degree < 1, and, for standard attention, a degree that neither divides nor is a multiple of the
// KV heads (vLLM refuses such layouts).
[[nodiscard]] std::vector<KvShard> kv_transfer_pairs(const ModelArch& arch, std::int64_t tokens, int sender_tp,
                                                     int receiver_tp);

// The pairs between two pipeline-parallel layouts (above): for each receiver stage, then each overlapping sender
// stage in order, that overlap's TP pairs (as kv_transfer_pairs orders them) with the overlap's layers only.
// Without pipeline parallelism on either side the same pairs as kv_transfer_pairs, bit for bit. Throws InputError
// as kv_transfer_pairs does, and for a PP degree < 1 or above the model's layers (naming the side).
// `sliding_window` > 0: the window W whose blocks outside it the cache frees (above; needs block_size >= 1), 0:
// every layer moves every token.
[[nodiscard]] std::vector<KvShard> kv_transfer_pairs(const ModelArch& arch, std::int64_t tokens, KvLayout sender,
                                                     KvLayout receiver, std::int64_t sliding_window = 0,
                                                     std::int64_t block_size = 16);
// The tokens a sliding-window layer still holds of a sequence of `tokens` tokens (formula above).
[[nodiscard]] std::int64_t sliding_held_tokens(std::int64_t tokens, std::int64_t window, std::int64_t block_size);

// Seconds of a layer-streamed transfer left after the prefill ends (formula above): `prefill` its duration, `layers`
// the layers streamed, `per_layer` one layer's send time alone. Throws InputError for layers < 1 or a negative or
// non-finite time.
[[nodiscard]] Seconds layer_streamed_exposed(Seconds prefill, std::int64_t layers, Seconds per_layer);

}  // namespace servesim
