// The shape of one engine step, as the cost model sees it: prefill chunks (each with the tokens already in the
// KV cache before it) and decode sequences (one new token each, attending to their cached tokens).
#pragma once
#include <cstdint>
#include <vector>

namespace servesim {

struct PrefillChunk {
  std::int64_t tokens = 0;   // new tokens computed in this step
  std::int64_t context = 0;  // tokens already cached before the chunk
};

struct BatchShape {
  std::vector<PrefillChunk> prefills;
  std::int64_t num_decodes = 0;
  std::int64_t decode_context_tokens = 0;  // sum over decode sequences of cached tokens read (incl. the new one)
  std::int64_t num_sampled = 0;            // sequences that sample a token this step (run the LM head)
  // Sliding-window models: `window` is the model's sliding window (tokens), set once by whoever builds the batch
  // (the replica, servesim step; 0 = not collected) and kept by clear(); decode_window_context_tokens is the sum
  // over decode sequences of min(tokens read, window), what a sliding layer's decode attention reads. Without it
  // the step model bounds that sum by min(decode_context_tokens, num_decodes x window).
  std::int64_t window = 0;
  std::int64_t decode_window_context_tokens = 0;

  // One decode sequence reading `tokens` cached tokens (the new one included).
  void add_decode(std::int64_t tokens) {
    ++num_decodes;
    decode_context_tokens += tokens;
    if (window > 0) decode_window_context_tokens += tokens < window ? tokens : window;
  }

  [[nodiscard]] std::int64_t prefill_tokens() const {
    std::int64_t n = 0;
    for (const auto& c : prefills) n += c.tokens;
    return n;
  }
  [[nodiscard]] std::int64_t total_tokens() const { return prefill_tokens() + num_decodes; }
  [[nodiscard]] std::int64_t num_seqs() const { return static_cast<std::int64_t>(prefills.size()) + num_decodes; }
  [[nodiscard]] bool empty() const { return prefills.empty() && num_decodes == 0; }
  void clear() {
    prefills.clear();
    num_decodes = 0;
    decode_context_tokens = 0;
    decode_window_context_tokens = 0;
    num_sampled = 0;
  }
};

}  // namespace servesim
