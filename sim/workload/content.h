// The KV-block hashes of a request's content (request.h ContentSpan): what vLLM's automatic prefix caching keys
// its cached blocks by (vllm/v1/core/kv_cache_utils.py hash_block_tokens: hash(parent block hash, the block's token
// ids)), with content spans standing for token ids. Equal content at equal positions gives the same hash chain.
//
// Block i of a request holds its tokens [i B, (i + 1) B) (B = block_size). Its hash is
//   h_i = fold(h_{i-1}, the words of its pieces),   h_{-1} = 0 (vLLM's NONE_HASH, the root's parent),
// where a piece is the part of one span inside the block, or of the request's own tokens past its spans, each
// written as four 64-bit words in order: (tag, id, offset, length), with
//   tag 1, id = the span's id,     offset = the piece's first token counted from the span's first token;
//   tag 2, id = the request's id,  offset = counted from the first token past the spans;
// and fold(h, w_1 .. w_n) sets h <- splitmix64(h XOR w_k) for k = 1 .. n (splitmix64: sim/core/random.h, the
// output function of Steele, Lea and Flood's SplittableRandom, OOPSLA 2014). Only unsigned 64-bit arithmetic: the
// same hashes on every platform and compiler. Two different block contents share a hash with probability about
// 2^-64 per pair (a false hit; not detected, as vLLM's builtin-hash mode does not).
#pragma once
#include <cstddef>
#include <cstdint>

#include "sim/workload/request.h"

namespace servesim {

inline constexpr std::uint64_t kSpanPieceTag = 1;  // a piece of a content span
inline constexpr std::uint64_t kOwnPieceTag = 2;   // a piece of the request's own tokens (past its spans)

// Where a request's block hashing stands: the next block to hash and the chain so far.
struct BlockHashCursor {
  std::uint64_t hash = 0;   // h of the last block hashed (0 before the first)
  std::int64_t blocks = 0;  // blocks hashed so far: the next block is block `blocks`
  std::size_t span = 0;     // the span holding the next block's first token (== spans: the request's own tokens)
  std::int64_t offset = 0;  // that token's offset within the span (or within the own tokens)
};

// h <- splitmix64(h XOR w) for each of the words.
[[nodiscard]] std::uint64_t fold_hash(std::uint64_t h, std::uint64_t tag, std::uint64_t id, std::int64_t offset,
                                      std::int64_t length);

// The hash of block c.blocks of `r` (whose content must not be null), chained from c.hash; advances c to the next
// block. `block_size` in tokens (> 0).
[[nodiscard]] std::uint64_t next_block_hash(const Request& r, std::int64_t block_size, BlockHashCursor& c);

// Total tokens of `content`'s spans.
[[nodiscard]] std::int64_t content_tokens(const Content& content);

}  // namespace servesim
