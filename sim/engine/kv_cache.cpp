#include "sim/engine/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace servesim {

std::int64_t KvCacheSizing::num_blocks() const {
  if (num_gpu_blocks_override > 0) return num_gpu_blocks_override;
  if (stages.empty()) return 0;
  std::int64_t fewest = -1;
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const double per_block = stages[s].per_token.v * double(block_size);
    const double free = free_for_kv(s).v;
    if (free <= 0 || per_block <= 0) return 0;
    const auto n = static_cast<std::int64_t>(std::floor(free / per_block));
    fewest = fewest < 0 ? n : std::min(fewest, n);
  }
  return fewest;
}

Bytes KvCacheSizing::max_weights() const {
  Bytes most{0.0};
  for (const auto& s : stages) most = Bytes{std::max(most.v, s.weights.v)};
  return most;
}

KvCacheManager::KvCacheManager(std::int64_t num_gpu_blocks, std::int64_t block_size, std::int64_t sliding_window,
                               std::int64_t max_step_tokens)
    : num_blocks_(num_gpu_blocks - KvCacheSizing::kNullBlocks),
      block_size_(block_size),
      free_(num_blocks_),
      window_(sliding_window),
      max_step_tokens_(max_step_tokens) {
  if (num_blocks_ <= 0 || block_size <= 0) throw std::logic_error("KV cache needs blocks (besides the null block)");
  if (sliding_window < 0 || max_step_tokens < 0) throw std::logic_error("KV cache: negative window or step");
}

std::int64_t KvCacheManager::peak_blocks(std::int64_t tokens) const {
  if (window_ == 0) return blocks_for(tokens);
  const std::int64_t step = max_step_tokens_ > 0 ? max_step_tokens_ : tokens;
  return std::min(blocks_for(tokens), blocks_for(std::min(tokens, window_ - 1 + step)) + 1);
}

bool KvCacheManager::allocate(Sequence& s, std::int64_t tokens) {
  if (window_ > 0) {
    // vLLM: last_useful_block = (num_computed_tokens - sliding_window + 1) // block_size; the blocks before it are
    // read by no query any more and go back to the pool.
    const std::int64_t skipped = std::max<std::int64_t>(0, (s.computed - window_ + 1) / block_size_);
    const std::int64_t freed = std::min(std::max<std::int64_t>(0, skipped - s.null_blocks), s.blocks);
    s.null_blocks += freed;
    s.blocks -= freed;
    free_ += freed;
  }
  const std::int64_t need = blocks_for(tokens) - s.blocks - s.null_blocks;
  if (need <= 0) return true;
  if (need > free_) return false;
  free_ -= need;
  s.blocks += need;
  return true;
}

void KvCacheManager::release(Sequence& s) {
  free_ += s.blocks;
  s.blocks = 0;
  s.null_blocks = 0;
}

}  // namespace servesim
