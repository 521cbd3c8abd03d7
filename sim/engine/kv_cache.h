// The paged KV cache of one replica: a pool of fixed-size blocks (block_size tokens each). A sequence holds
// ceil(tokens / block_size) blocks. The scheduler asks this component for room; it never does block arithmetic
// itself. Sizing follows vLLM: blocks = (gpu_memory_utilization x HBM - weights - activation reserve) / block.
#pragma once
#include <cstdint>

#include "models/common/units.h"
#include "sim/engine/sequence.h"

namespace servesim {

struct KvCacheSizing {
  Bytes usable{0.0};        // gpu_memory_utilization x HBM, per GPU
  Bytes weights{0.0};       // per GPU
  Bytes activations{0.0};   // per GPU reserve for activations, CUDA graphs, workspace
  Bytes per_token{0.0};     // KV bytes per token per GPU
  std::int64_t block_size = 16;

  [[nodiscard]] Bytes free_for_kv() const { return usable - weights - activations; }
  [[nodiscard]] std::int64_t num_blocks() const;
};

class KvCacheManager {
 public:
  KvCacheManager(std::int64_t num_blocks, std::int64_t block_size);

  [[nodiscard]] std::int64_t blocks_for(std::int64_t tokens) const {
    return (tokens + block_size_ - 1) / block_size_;
  }
  // Grows `s` to hold `tokens` tokens. Returns false (and changes nothing) when the pool cannot.
  [[nodiscard]] bool allocate(Sequence& s, std::int64_t tokens);
  void release(Sequence& s);
  // Could a sequence of `tokens` tokens ever fit, even with the cache empty?
  [[nodiscard]] bool can_ever_fit(std::int64_t tokens) const { return blocks_for(tokens) <= num_blocks_; }

  [[nodiscard]] std::int64_t num_blocks() const { return num_blocks_; }
  [[nodiscard]] std::int64_t free_blocks() const { return free_; }
  [[nodiscard]] std::int64_t block_size() const { return block_size_; }
  [[nodiscard]] double usage() const { return 1.0 - double(free_) / double(num_blocks_); }

 private:
  std::int64_t num_blocks_;
  std::int64_t block_size_;
  std::int64_t free_;
};

}  // namespace servesim
