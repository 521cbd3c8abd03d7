// The paged KV cache of one replica: a pool of fixed-size blocks (block_size tokens each). A sequence holds
// ceil(tokens / block_size) blocks, less, when every layer of the model uses sliding-window attention, the blocks
// entirely outside its window: freed as vLLM v1's SlidingWindowManager.remove_skipped_blocks does (before each
// allocation, blocks [0, (computed - window + 1) / block_size) become the null block), so that a decoding
// sequence holds at most ceil(window / block_size) + 1 blocks. The scheduler asks this component for room; it
// never does block arithmetic itself. Sizing follows vLLM v1: per GPU,
// blocks = (gpu_memory_utilization x HBM - weights - activation reserve) / block bytes, the minimum over pipeline
// stages; one block of the pool is vLLM's null block, never handed out.
//
// Models mixing full-attention and sliding-window layers (gpt-oss, Gemma 2/3, Cohere 2) use vLLM v1's hybrid KV
// cache manager (docs/design/hybrid_kv_cache_manager.md; vllm/v1/core/kv_cache_utils.py
// _get_kv_cache_config_uniform_page_size, kv_cache_coordinator.py HybridKVCacheCoordinator) unless
// `disable_hybrid_kv_cache_manager` is set: the layers form KV cache groups of g layers each, g = the fewer of the
// full and the sliding layers, or the larger count when it is under 1.25 x the fewer (each kind's last group
// padded), and one block of the pool holds block_size tokens of g layers. A sequence holds, per group, the blocks its layers need: every block in the full-attention group, the
// window's blocks in each sliding group (freed outside the window as above). The pool then has layers / g times the
// blocks of a full-attention pool of the same memory (2 for gpt-oss), and vLLM reports its size in tokens as
// num_blocks / groups x block_size. Modelled with one full-attention group (full layers <= g on every pipeline
// stage, the same group count on each); other mixes are held as full attention (KvGroups::of), which is servesim's
// limit, not vLLM's.
//
// Automatic prefix caching (vLLM v1's KVCacheManager and BlockPool, vllm/v1/core/kv_cache_manager.py and
// block_pool.py; `enable_prefix_caching`, on by default in vLLM v1 and here), for requests whose content is known
// (Request::content; a request without it never caches a block, and costs nothing extra):
//  - a full block (all block_size tokens computed or being computed this step) is cached under its hash
//    (sim/workload/content.h: hash of the parent block's hash and the block's content);
//  - when a sequence with nothing computed is scheduled (first, and again after a recompute preemption), its
//    longest run of cached blocks from the start is a hit, at most prompt + generated - 1 tokens (vLLM computes
//    the last token always: max_cache_hit_length = num_tokens - 1), whole blocks only: those tokens are not
//    computed again;
//  - every free block is in one free queue (vLLM's FreeKVCacheBlockQueue): allocation takes blocks from its head,
//    evicting the cached ones it takes (LRU); a finished or preempted sequence's blocks go to its tail in reverse
//    order (its last block first, so it is evicted first), still cached; a hit on a free cached block takes it out
//    of the queue; a block held by several sequences is counted once (its reference count);
//  - a block whose hash is already cached by another block (two sequences computed the same content at once)
//    stays uncached (vLLM keeps both copies under the hash; the hits are the same while either is cached).
// With the hybrid manager the full-attention group's blocks are cached as above; a hit is taken to find the
// sliding groups' blocks of its last window cached too (vLLM checks them right to left from the full-attention
// hit; they were freed with the full-attention blocks at the end of the request that computed them), and those
// blocks are taken from the free pool like new ones (the sliding groups' blocks are held in no cache entry).
// Not modelled: prefix caching with sliding-window attention on every layer (such a cache never caches), and
// cache salts or LoRA / multimodal extra keys.
#pragma once
#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "models/common/units.h"
#include "sim/engine/sequence.h"

namespace servesim {

struct ModelArch;

// How the KV cache's layers share blocks. window: the sliding window (tokens) of the sliding-window layers, 0 =
// none. sliding_groups: 0 = one group (every layer full attention, or every layer sliding when window > 0);
// n > 0 = vLLM's hybrid manager with one full-attention group and n sliding-window groups.
struct KvGroups {
  std::int64_t window = 0;
  std::int64_t sliding_groups = 0;
  KvGroups(std::int64_t sliding_window = 0, std::int64_t groups_sliding = 0)  // NOLINT(google-explicit-constructor)
      : window(sliding_window), sliding_groups(groups_sliding) {}
  [[nodiscard]] bool hybrid() const { return sliding_groups > 0; }
  [[nodiscard]] std::int64_t groups() const { return 1 + sliding_groups; }
  // The layout vLLM v1 gives `arch` split over `pipeline` stages (StepModel::pp_stage_layers): every layer
  // sliding -> {window, 0}; a mix, with `hybrid_manager` (vLLM's !disable_hybrid_kv_cache_manager), one
  // full-attention group on every stage and the same number of sliding groups on each -> {window, that}; else
  // {0, 0} (sliding layers held as full attention, as vLLM's unify_hybrid_kv_cache_specs does with the manager
  // off).
  [[nodiscard]] static KvGroups of(const ModelArch& arch, std::int64_t pipeline, bool hybrid_manager);
  // Layers one block spans on a GPU of stage `stage` under this layout: the stage's group size when hybrid, else
  // every layer of the stage.
  [[nodiscard]] std::int64_t page_layers(const ModelArch& arch, std::int64_t pipeline, std::int64_t stage) const;
};

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
    // Hybrid KV cache groups (KvGroups): one block spans page_layers of the stage's `layers` layers (same KV bytes
    // per layer); 0 = every layer.
    std::int64_t page_layers = 0;
    std::int64_t layers = 0;
    [[nodiscard]] double block_bytes(std::int64_t block_size) const {
      const double all = per_token.v * double(block_size);
      return page_layers > 0 && layers > 0 ? all * double(page_layers) / double(layers) : all;
    }
  };
  Bytes usable{0.0};        // gpu_memory_utilization x HBM, per GPU
  Bytes activations{0.0};   // per GPU reserve: profiled activations, non-torch memory (sim/scenario/engine_setup.cpp)
  std::vector<Stage> stages;  // one per pipeline stage
  std::int64_t block_size = 16;
  std::int64_t num_gpu_blocks_override = 0;  // vLLM's num_gpu_blocks_override: > 0 sets num_blocks() directly
  std::int64_t groups = 1;  // KV cache groups (KvGroups::groups): vLLM's size in tokens is num_blocks / groups x block_size

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
  static constexpr std::int32_t kNoEntry = -1;  // Sequence::kv_entries: a block in no cache entry

  // `num_gpu_blocks`: the pool, as vLLM counts it (num_gpu_blocks); one is the null block, so num_blocks() and
  // free_blocks() count num_gpu_blocks - 1 (vllm/v1/core/block_pool.py BlockPool, get_usage).
  // `layout` (KvGroups; an integer is a sliding window on every layer): the window in tokens (> 0 when every layer
  // slides over it, ModelArch::kv_window, or hybrid groups), 0 = full attention. `max_step_tokens`: the most
  // tokens one sequence computes in a step (max_num_batched_tokens; 0 = unbounded), which bounds a sliding-window
  // sequence's blocks in can_ever_fit. `prefix_caching`: vLLM's enable_prefix_caching (ignored, off, with a
  // sliding window on every layer).
  KvCacheManager(std::int64_t num_gpu_blocks, std::int64_t block_size, KvGroups layout = {},
                 std::int64_t max_step_tokens = 0, bool prefix_caching = false);

  [[nodiscard]] std::int64_t blocks_for(std::int64_t tokens) const {
    return (tokens + block_size_ - 1) / block_size_;
  }
  // Grows `s` to hold `tokens` tokens (first freeing, with a sliding window, its blocks outside the window of its
  // s.computed tokens, as vLLM does even when the allocation then fails), and caches its full blocks among them.
  // Returns false (and allocates nothing) when the pool cannot.
  [[nodiscard]] bool allocate(Sequence& s, std::int64_t tokens);
  // Frees s's blocks (its cached ones stay cached, at the free queue's tail, last block first).
  void release(Sequence& s);
  // Could a sequence of `tokens` tokens ever fit, even with the cache empty?
  [[nodiscard]] bool can_ever_fit(std::int64_t tokens) const {
    return peak_blocks(tokens) <= (seq_limit_ > 0 ? std::min(seq_limit_, num_blocks_) : num_blocks_);
  }
  // The most blocks a sequence of `tokens` tokens holds at once: all of them with full attention; with a sliding
  // window W at most ceil((W - 1 + max_step_tokens) / block_size) + 1 (vLLM's SlidingWindowSpec.max_memory_usage);
  // hybrid: the full-attention group's plus each sliding group's.
  [[nodiscard]] std::int64_t peak_blocks(std::int64_t tokens) const;
  [[nodiscard]] std::int64_t sliding_window() const { return window_; }
  [[nodiscard]] const KvGroups& layout() const { return layout_; }
  // Data-parallel attention: the engine's pool is every rank's, but a sequence lives on one rank; `blocks` (> 0) is
  // one rank's usable pool, which bounds can_ever_fit.
  void limit_sequence_blocks(std::int64_t blocks) { seq_limit_ = blocks; }
  // Blocks of the pool `s` holds (every group's; a cached block shared with others counted here too).
  [[nodiscard]] std::int64_t held(const Sequence& s) const { return s.blocks + layout_.sliding_groups * s.swa_blocks; }

  [[nodiscard]] std::int64_t num_blocks() const { return num_blocks_; }  // usable: the pool less the null block
  // Free blocks, cached or not (vLLM's get_num_free_blocks: a free cached block can be evicted at any time).
  [[nodiscard]] std::int64_t free_blocks() const { return free_; }
  [[nodiscard]] std::int64_t block_size() const { return block_size_; }
  [[nodiscard]] double usage() const { return 1.0 - double(free_) / double(num_blocks_); }

  // --- Prefix caching.
  [[nodiscard]] bool prefix_caching() const { return caching_; }
  // Turns prefix caching off (a decode replica of disaggregated serving receives its KV and never looks it up).
  // Only before any block is cached: throws std::logic_error otherwise.
  void disable_prefix_caching();
  // Whether this cache keeps s's blocks (caching on and its request's content known).
  [[nodiscard]] bool caches(const Sequence& s) const { return caching_ && s.req.content != nullptr; }
  // The first tokens of `r` whose blocks are all cached here, whole blocks up to `max_tokens` tokens (vLLM's
  // find_longest_cache_hit): 0 when caching is off or r's content is unknown. Changes nothing (no LRU update).
  [[nodiscard]] std::int64_t cached_prefix(const Request& r, std::int64_t max_tokens) const;
  // The hit of sequence `s` when it is scheduled with nothing computed: cached_prefix(s.req, s.num_tokens() - 1).
  [[nodiscard]] std::int64_t lookup(const Sequence& s) const {
    return caches(s) ? cached_prefix(s.req, s.num_tokens() - 1) : 0;
  }
  // `s` (no blocks, nothing computed) takes the blocks of its first `hit` tokens (lookup's answer, a whole number
  // of blocks) and grows to `tokens` tokens (> hit). False, with nothing changed, when the free blocks cannot
  // cover its new blocks plus the hit blocks now free (vLLM's allocate_slots counts a free cached block it takes
  // as allocated). s.computed is the caller's to set.
  [[nodiscard]] bool allocate_cached(Sequence& s, std::int64_t hit, std::int64_t tokens);
  // Blocks cached (in the hash table), in use or free.
  [[nodiscard]] std::int64_t cached_blocks() const { return static_cast<std::int64_t>(by_hash_.size()); }
  // Whether a block with hash `h` is cached.
  [[nodiscard]] bool cached(std::uint64_t h) const { return by_hash_.count(h) > 0; }
  // Cached blocks that are free (in the free queue, evictable).
  [[nodiscard]] std::int64_t free_cached_blocks() const { return free_cached_; }
  // References to cached blocks beyond each block's first: the sum of the sequences' blocks minus this is the
  // blocks in use.
  [[nodiscard]] std::int64_t shared_refs() const { return shared_refs_; }

 private:
  // A cached block. In the free queue (refs == 0) it is linked to its neighbours, and the free blocks without an
  // entry just before it are counted in anon_before (a queue of such blocks alone costs one counter: anon_tail_).
  struct Entry {
    std::uint64_t hash = 0;
    std::int64_t anon_before = 0;
    std::int32_t refs = 0;
    std::int32_t prev = kNoEntry;
    std::int32_t next = kNoEntry;
  };
  // Takes `n` blocks from the free queue's head, evicting the entries taken; appends them to s's entries (as
  // blocks in no entry) when `s` is given.
  void take_free(std::int64_t n, Sequence* s);
  void unlink(std::int32_t i);        // removes free entry i from the queue
  void push_free(std::int32_t i);     // appends entry i (refs now 0) to the queue's tail
  void cache_full_blocks(Sequence& s, std::int64_t tokens);  // caches s's full blocks of its first `tokens`
  // Hybrid: frees s's sliding-group blocks outside the window of its first `computed` tokens.
  void slide(Sequence& s, std::int64_t computed);
  // The sliding groups' blocks a sequence of `tokens` tokens holds at most at once (one group's count).
  [[nodiscard]] std::int64_t window_blocks(std::int64_t tokens) const;

  std::int64_t num_blocks_;
  std::int64_t block_size_;
  std::int64_t free_;
  KvGroups layout_;
  std::int64_t window_ = 0;           // sliding window of every layer or of the hybrid sliding groups (0 = none)
  std::int64_t max_step_tokens_ = 0;  // 0 = unbounded
  std::int64_t seq_limit_ = 0;        // limit_sequence_blocks (0 = the pool)
  bool caching_ = false;
  std::vector<Entry> entries_;
  std::vector<std::int32_t> spare_;  // unused slots of entries_
  std::unordered_map<std::uint64_t, std::int32_t> by_hash_;
  std::int32_t head_ = kNoEntry;   // the free queue's entries, head (evicted first) to tail
  std::int32_t tail_ = kNoEntry;
  std::int64_t anon_tail_ = 0;     // free blocks without an entry after the queue's last entry
  std::int64_t free_cached_ = 0;   // entries in the free queue
  std::int64_t shared_refs_ = 0;
  std::vector<std::int32_t> hits_;  // allocate_cached's scratch
};

}  // namespace servesim
