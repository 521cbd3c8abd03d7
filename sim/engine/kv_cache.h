// The paged KV cache of one replica: a pool of fixed-size blocks (block_size tokens each). A sequence holds
// ceil(tokens / block_size) blocks, less, when every layer of the model uses sliding-window attention, the blocks
// entirely outside its window: freed as vLLM v1's SlidingWindowManager.remove_skipped_blocks does (before each
// allocation, blocks [0, (computed - window + 1) / block_size) become the null block), so that a decoding
// sequence holds at most ceil(window / block_size) + 1 blocks. The scheduler asks this component for room; it
// never does block arithmetic itself. Sizing follows vLLM v1: per GPU,
// blocks = (gpu_memory_utilization x HBM - weights - activation reserve) / block bytes, the minimum over pipeline
// stages; one block of the pool is vLLM's null block, never handed out.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "models/common/units.h"
#include "sim/engine/sequence.h"

namespace servesim {

// vLLM's num_gpu_blocks: every pipeline stage's worker sizes its own cache (vllm/v1/worker/gpu_worker.py
// determine_available_memory: requested memory - weights - profiled peak activations - non-torch memory), and the
// engine takes the smallest block count over the workers (vllm/v1/core/kv_cache_utils.py get_kv_cache_configs).
// The count includes BlockPool's null block (vllm/v1/core/block_pool.py), so the scheduler can use
// num_blocks() - kNullBlocks (KvCacheManager::num_blocks()); vLLM's log line "GPU KV cache size: N tokens" is
// num_blocks() x block_size.
struct KvCacheSizing {
  struct Stage {
    Bytes weights{0.0};    // weights per GPU of this stage
    Bytes per_token{0.0};  // KV bytes per token per GPU of this stage (its layers)
  };
  Bytes usable{0.0};        // gpu_memory_utilization x HBM, per GPU
  Bytes activations{0.0};   // per GPU reserve: profiled activations, non-torch memory (sim/scenario/engine_setup.cpp)
  std::vector<Stage> stages;  // one per pipeline stage
  std::int64_t block_size = 16;
  std::int64_t num_gpu_blocks_override = 0;  // vLLM's num_gpu_blocks_override: > 0 sets num_blocks() directly

  static constexpr std::int64_t kNullBlocks = 1;  // BlockPool.null_block

  // Memory left for the KV cache on one GPU of `stage` (bytes; negative when weights and reserve do not fit).
  [[nodiscard]] Bytes free_for_kv(std::size_t stage) const { return usable - stages[stage].weights - activations; }
  // vLLM's num_gpu_blocks (including the null block); 0 when some stage has no room.
  [[nodiscard]] std::int64_t num_blocks() const;
  // The stage whose GPU holds the most weights.
  [[nodiscard]] Bytes max_weights() const;
};

class KvCacheManager {
 public:
  // `num_gpu_blocks`: the pool, as vLLM counts it (num_gpu_blocks); one is the null block, so num_blocks() and
  // free_blocks() count num_gpu_blocks - 1 (vllm/v1/core/block_pool.py BlockPool, get_usage).
  // `sliding_window` (tokens): > 0 when every layer slides over that window (ModelArch::kv_window), 0 = full
  // attention. `max_step_tokens`: the most tokens one sequence computes in a step (max_num_batched_tokens; 0 =
  // unbounded), which bounds a sliding-window sequence's blocks in can_ever_fit.
  KvCacheManager(std::int64_t num_gpu_blocks, std::int64_t block_size, std::int64_t sliding_window = 0,
                 std::int64_t max_step_tokens = 0);

  [[nodiscard]] std::int64_t blocks_for(std::int64_t tokens) const {
    return (tokens + block_size_ - 1) / block_size_;
  }
  // Grows `s` to hold `tokens` tokens (first freeing, with a sliding window, its blocks outside the window of its
  // s.computed tokens, as vLLM does even when the allocation then fails). Returns false (and allocates nothing)
  // when the pool cannot.
  [[nodiscard]] bool allocate(Sequence& s, std::int64_t tokens);
  void release(Sequence& s);
  // Could a sequence of `tokens` tokens ever fit, even with the cache empty?
  [[nodiscard]] bool can_ever_fit(std::int64_t tokens) const { return peak_blocks(tokens) <= num_blocks_; }
  // The most blocks a sequence of `tokens` tokens holds at once: all of them with full attention; with a sliding
  // window W at most ceil((W - 1 + max_step_tokens) / block_size) + 1 (vLLM's SlidingWindowSpec.max_memory_usage).
  [[nodiscard]] std::int64_t peak_blocks(std::int64_t tokens) const;
  [[nodiscard]] std::int64_t sliding_window() const { return window_; }

  [[nodiscard]] std::int64_t num_blocks() const { return num_blocks_; }  // usable: the pool less the null block
  [[nodiscard]] std::int64_t free_blocks() const { return free_; }
  [[nodiscard]] std::int64_t block_size() const { return block_size_; }
  [[nodiscard]] double usage() const { return 1.0 - double(free_) / double(num_blocks_); }

 private:
  std::int64_t num_blocks_;
  std::int64_t block_size_;
  std::int64_t free_;
  std::int64_t window_ = 0;           // sliding window of every layer (0 = full attention)
  std::int64_t max_step_tokens_ = 0;  // 0 = unbounded
};

}  // namespace servesim
