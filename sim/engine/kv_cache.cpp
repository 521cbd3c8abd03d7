#include "sim/engine/kv_cache.h"

#include <cmath>
#include <stdexcept>

namespace servesim {

std::int64_t KvCacheSizing::num_blocks() const {
  const double per_block = per_token.v * double(block_size);
  const double free = free_for_kv().v;
  if (free <= 0 || per_block <= 0) return 0;
  return static_cast<std::int64_t>(std::floor(free / per_block));
}

KvCacheManager::KvCacheManager(std::int64_t num_blocks, std::int64_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size), free_(num_blocks) {
  if (num_blocks <= 0 || block_size <= 0) throw std::logic_error("KV cache needs blocks");
}

bool KvCacheManager::allocate(Sequence& s, std::int64_t tokens) {
  const std::int64_t need = blocks_for(tokens) - s.blocks;
  if (need <= 0) return true;
  if (need > free_) return false;
  free_ -= need;
  s.blocks += need;
  return true;
}

void KvCacheManager::release(Sequence& s) {
  free_ += s.blocks;
  s.blocks = 0;
}

}  // namespace servesim
