#include "sim/engine/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/arch/model_arch.h"
#include "models/cost/step_model.h"

namespace servesim {

namespace {

// vLLM's KV cache groups of one worker's layers (kv_cache_utils.py _get_kv_cache_groups_uniform_page_size): the
// group size is the fewer of the two layer counts, or the larger when it is under 1.25 x the fewer (less padding:
// gpt-oss-20b with an EAGLE layer, 12 sliding + 13 full, gets two groups of 13); each kind's layers fill
// ceil(count / size) groups, the last one padded.
struct StageGroups {
  std::int64_t size = 0, full = 0, sliding = 0;
};
StageGroups stage_groups(std::int64_t full, std::int64_t sliding) {
  const std::int64_t fewer = std::min(full, sliding), more = std::max(full, sliding);
  StageGroups g;
  g.size = 4 * more < 5 * fewer ? more : fewer;
  g.full = (full + g.size - 1) / g.size;
  g.sliding = (sliding + g.size - 1) / g.size;
  return g;
}

}  // namespace

KvGroups KvGroups::of(const ModelArch& arch, std::int64_t pipeline, bool hybrid_manager) {
  if (arch.sliding_window == 0) return {};
  if (arch.kv_window() > 0) return {arch.kv_window(), 0};
  if (!hybrid_manager || arch.sliding_layers() == 0) return {};
  std::int64_t groups = 0;
  std::int64_t first = 0;
  for (const std::int64_t n : StepModel::pp_stage_layers(arch.num_layers, pipeline)) {
    const std::int64_t sliding = arch.sliding_layers(first, n);
    const std::int64_t full = n - sliding;
    first += n;
    // A stage with one kind of layer only, more than one full-attention group (what KvCacheManager does not
    // model), or stages with different group counts: held as full attention.
    if (full == 0 || sliding == 0) return {};
    const StageGroups g = stage_groups(full, sliding);
    if (g.full != 1 || (groups > 0 && g.sliding != groups)) return {};
    groups = g.sliding;
  }
  return {arch.sliding_window, groups};
}

std::int64_t KvGroups::page_layers(const ModelArch& arch, std::int64_t pipeline, std::int64_t stage) const {
  const std::vector<std::int64_t> layers = StepModel::pp_stage_layers(arch.num_layers, pipeline);
  std::int64_t first = 0;
  for (std::int64_t i = 0; i < stage; ++i) first += layers[static_cast<std::size_t>(i)];
  const std::int64_t n = layers[static_cast<std::size_t>(stage)];
  if (!hybrid()) return n;
  const std::int64_t sliding = arch.sliding_layers(first, n);
  return stage_groups(n - sliding, sliding).size;
}

std::int64_t KvCacheSizing::num_blocks() const {
  if (num_gpu_blocks_override > 0) return num_gpu_blocks_override;
  if (stages.empty()) return 0;
  std::int64_t fewest = -1;
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const double per_block = stages[s].block_bytes(block_size);
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

KvCacheManager::KvCacheManager(std::int64_t num_gpu_blocks, std::int64_t block_size, KvGroups layout,
                               std::int64_t max_step_tokens, bool prefix_caching)
    : num_blocks_(num_gpu_blocks - KvCacheSizing::kNullBlocks),
      block_size_(block_size),
      free_(num_blocks_),
      layout_(layout),
      window_(layout.window),
      max_step_tokens_(max_step_tokens),
      caching_(prefix_caching && (layout.window == 0 || layout.hybrid())),
      anon_tail_(num_blocks_) {
  if (num_blocks_ <= 0 || block_size <= 0) throw std::logic_error("KV cache needs blocks (besides the null block)");
  if (layout.window < 0 || layout.sliding_groups < 0 || max_step_tokens < 0 ||
      (layout.hybrid() && layout.window == 0)) {
    throw std::logic_error("KV cache: negative window, groups or step, or sliding groups without a window");
  }
}

std::int64_t KvCacheManager::window_blocks(std::int64_t tokens) const {
  const std::int64_t step = max_step_tokens_ > 0 ? max_step_tokens_ : tokens;
  return std::min(blocks_for(tokens), blocks_for(std::min(tokens, window_ - 1 + step)) + 1);
}

std::int64_t KvCacheManager::peak_blocks(std::int64_t tokens) const {
  if (window_ == 0) return blocks_for(tokens);
  if (layout_.hybrid()) return blocks_for(tokens) + layout_.sliding_groups * window_blocks(tokens);
  return window_blocks(tokens);
}

void KvCacheManager::slide(Sequence& s, std::int64_t computed) {
  // vLLM's SlidingWindowManager.remove_skipped_blocks, in every sliding group: the blocks before
  // (computed - sliding_window + 1) // block_size are read by no query any more.
  // A sequence that holds none of them yet (a decode replica's copy of a prefilled one) starts its sliding groups'
  // tables there too.
  const std::int64_t skipped = std::max<std::int64_t>(0, (computed - window_ + 1) / block_size_);
  if (skipped <= s.swa_null) return;
  const std::int64_t freed = std::min(skipped - s.swa_null, s.swa_blocks);
  s.swa_null = skipped;
  s.swa_blocks -= freed;
  free_ += freed * layout_.sliding_groups;
  anon_tail_ += freed * layout_.sliding_groups;  // to the free queue's tail, in no cache entry
}

void KvCacheManager::disable_prefix_caching() {
  if (!by_hash_.empty()) throw std::logic_error("disable_prefix_caching: blocks are cached already");
  caching_ = false;
}

void KvCacheManager::unlink(std::int32_t i) {
  Entry& e = entries_[static_cast<std::size_t>(i)];
  // The free blocks without an entry that were just before it now come before its successor.
  if (e.next != kNoEntry) {
    entries_[static_cast<std::size_t>(e.next)].anon_before += e.anon_before;
    entries_[static_cast<std::size_t>(e.next)].prev = e.prev;
  } else {
    anon_tail_ += e.anon_before;
    tail_ = e.prev;
  }
  if (e.prev != kNoEntry) {
    entries_[static_cast<std::size_t>(e.prev)].next = e.next;
  } else {
    head_ = e.next;
  }
  e.anon_before = 0;
  e.prev = e.next = kNoEntry;
  --free_cached_;
}

void KvCacheManager::push_free(std::int32_t i) {
  Entry& e = entries_[static_cast<std::size_t>(i)];
  e.anon_before = anon_tail_;
  anon_tail_ = 0;
  e.prev = tail_;
  e.next = kNoEntry;
  if (tail_ != kNoEntry) {
    entries_[static_cast<std::size_t>(tail_)].next = i;
  } else {
    head_ = i;
  }
  tail_ = i;
  ++free_cached_;
}

void KvCacheManager::take_free(std::int64_t n, Sequence* s) {
  free_ -= n;
  if (s != nullptr) s->kv_entries.insert(s->kv_entries.end(), static_cast<std::size_t>(n), kNoEntry);
  while (n > 0) {
    if (head_ == kNoEntry) {
      anon_tail_ -= n;
      return;
    }
    Entry& e = entries_[static_cast<std::size_t>(head_)];
    const std::int64_t take = std::min(n, e.anon_before);
    e.anon_before -= take;
    n -= take;
    if (n == 0) return;
    // The head block itself is reused: evicted from the cache (vLLM's _maybe_evict_cached_block).
    const std::int32_t evicted = head_;
    by_hash_.erase(e.hash);
    unlink(evicted);
    spare_.push_back(evicted);
    --n;
  }
}

void KvCacheManager::cache_full_blocks(Sequence& s, std::int64_t tokens) {
  const std::int64_t full = tokens / block_size_;
  while (s.hashed.blocks < full) {
    const auto j = static_cast<std::size_t>(s.hashed.blocks);
    const std::uint64_t h = next_block_hash(s.req, block_size_, s.hashed);
    if (s.kv_entries[j] != kNoEntry || by_hash_.count(h) > 0) continue;
    std::int32_t i = 0;
    if (!spare_.empty()) {
      i = spare_.back();
      spare_.pop_back();
    } else {
      i = static_cast<std::int32_t>(entries_.size());
      entries_.emplace_back();
    }
    Entry& e = entries_[static_cast<std::size_t>(i)];
    e = Entry{};
    e.hash = h;
    e.refs = 1;
    by_hash_.emplace(h, i);
    s.kv_entries[j] = i;
  }
}

bool KvCacheManager::allocate(Sequence& s, std::int64_t tokens) {
  if (layout_.hybrid()) {
    // vLLM's allocate_slots: remove_skipped_blocks in every group, then all groups' new blocks or none.
    slide(s, s.computed);
    const bool keep = caches(s);
    const std::int64_t need = std::max<std::int64_t>(0, blocks_for(tokens) - s.blocks);
    const std::int64_t need_swa = std::max<std::int64_t>(0, blocks_for(tokens) - s.swa_blocks - s.swa_null);
    if (need + need_swa * layout_.sliding_groups > free_) return false;
    take_free(need, keep ? &s : nullptr);
    s.blocks += need;
    take_free(need_swa * layout_.sliding_groups, nullptr);
    s.swa_blocks += need_swa;
    if (keep) cache_full_blocks(s, tokens);
    return true;
  }
  if (window_ > 0) {
    // vLLM: last_useful_block = (num_computed_tokens - sliding_window + 1) // block_size; the blocks before it are
    // read by no query any more and go back to the pool.
    const std::int64_t skipped = std::max<std::int64_t>(0, (s.computed - window_ + 1) / block_size_);
    const std::int64_t freed = std::min(std::max<std::int64_t>(0, skipped - s.null_blocks), s.blocks);
    s.null_blocks += freed;
    s.blocks -= freed;
    free_ += freed;
    anon_tail_ += freed;  // no entries with a sliding window: the queue is its free blocks alone
  }
  const bool keep = caches(s);
  const std::int64_t need = blocks_for(tokens) - s.blocks - s.null_blocks;
  if (need > 0) {
    if (need > free_) return false;
    take_free(need, keep ? &s : nullptr);
    s.blocks += need;
  }
  if (keep) cache_full_blocks(s, tokens);
  return true;
}

std::int64_t KvCacheManager::cached_prefix(const Request& r, std::int64_t max_tokens) const {
  if (!caching_ || r.content == nullptr || by_hash_.empty()) return 0;
  const std::int64_t most = max_tokens / block_size_;
  BlockHashCursor c;
  std::int64_t n = 0;
  while (n < most && by_hash_.count(next_block_hash(r, block_size_, c)) > 0) ++n;
  return n * block_size_;
}

bool KvCacheManager::allocate_cached(Sequence& s, std::int64_t hit, std::int64_t tokens) {
  if (hit == 0) return allocate(s, tokens);
  if (!caches(s) || s.blocks != 0 || hit % block_size_ != 0 || tokens <= hit) {
    throw std::logic_error("allocate_cached: not a cache hit of a sequence without blocks");
  }
  const std::int64_t hit_blocks = hit / block_size_;
  hits_.clear();
  BlockHashCursor c;
  std::int64_t free_hits = 0;
  for (std::int64_t b = 0; b < hit_blocks; ++b) {
    const auto it = by_hash_.find(next_block_hash(s.req, block_size_, c));
    if (it == by_hash_.end()) throw std::logic_error("allocate_cached: the hit is not cached");
    hits_.push_back(it->second);
    if (entries_[static_cast<std::size_t>(it->second)].refs == 0) ++free_hits;
  }
  const std::int64_t fresh = blocks_for(tokens) - hit_blocks;
  // Hybrid: the sliding groups hold the blocks from the hit's window on (taken like new ones, see the header).
  const std::int64_t swa_skipped = layout_.hybrid() ? std::max<std::int64_t>(0, (hit - window_ + 1) / block_size_) : 0;
  const std::int64_t swa = layout_.hybrid() ? blocks_for(tokens) - swa_skipped : 0;
  if (fresh + free_hits + swa * layout_.sliding_groups > free_) return false;
  // vLLM's touch: the hit blocks first (a free one leaves the queue), then the new blocks from the queue's head.
  for (const std::int32_t i : hits_) {
    Entry& e = entries_[static_cast<std::size_t>(i)];
    if (e.refs == 0) {
      unlink(i);
      --free_;
    } else {
      ++shared_refs_;
    }
    ++e.refs;
    s.kv_entries.push_back(i);
  }
  s.blocks = hit_blocks;
  s.hashed = c;
  take_free(fresh, &s);
  s.blocks += fresh;
  if (swa > 0) {
    take_free(swa * layout_.sliding_groups, nullptr);
    s.swa_blocks = swa;
    s.swa_null = swa_skipped;
  }
  cache_full_blocks(s, tokens);
  return true;
}

void KvCacheManager::release(Sequence& s) {
  if (!s.kv_entries.empty()) {
    // vLLM frees a request's blocks in reverse order: its last block reaches the queue's head first.
    for (auto it = s.kv_entries.rbegin(); it != s.kv_entries.rend(); ++it) {
      if (*it == kNoEntry) {
        ++anon_tail_;
        ++free_;
        continue;
      }
      Entry& e = entries_[static_cast<std::size_t>(*it)];
      if (--e.refs > 0) {
        --shared_refs_;
      } else {
        push_free(*it);
        ++free_;
      }
    }
    s.kv_entries.clear();
  } else {
    free_ += s.blocks;
    anon_tail_ += s.blocks;
  }
  // vLLM frees the groups in order: the sliding groups' blocks reach the queue's tail after the full group's.
  free_ += s.swa_blocks * layout_.sliding_groups;
  anon_tail_ += s.swa_blocks * layout_.sliding_groups;
  s.hashed = BlockHashCursor{};
  s.blocks = 0;
  s.null_blocks = 0;
  s.swa_blocks = 0;
  s.swa_null = 0;
}

}  // namespace servesim
