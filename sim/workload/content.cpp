#include "sim/workload/content.h"

#include <algorithm>

#include "sim/core/random.h"

namespace servesim {

std::uint64_t fold_hash(std::uint64_t h, std::uint64_t tag, std::uint64_t id, std::int64_t offset,
                        std::int64_t length) {
  h = splitmix64(h ^ tag);
  h = splitmix64(h ^ id);
  h = splitmix64(h ^ static_cast<std::uint64_t>(offset));
  return splitmix64(h ^ static_cast<std::uint64_t>(length));
}

std::uint64_t next_block_hash(const Request& r, std::int64_t block_size, BlockHashCursor& c) {
  const Content& spans = *r.content;
  std::uint64_t h = c.hash;
  std::int64_t left = block_size;
  while (left > 0) {
    if (c.span < spans.size()) {
      const ContentSpan& s = spans[c.span];
      const std::int64_t take = std::min(left, s.tokens - c.offset);
      if (take > 0) {
        h = fold_hash(h, kSpanPieceTag, s.id, c.offset, take);
        c.offset += take;
        left -= take;
      }
      if (c.offset >= s.tokens) {
        ++c.span;
        c.offset = 0;
      }
    } else {
      h = fold_hash(h, kOwnPieceTag, r.id, c.offset, left);
      c.offset += left;
      left = 0;
    }
  }
  c.hash = h;
  ++c.blocks;
  return h;
}

std::int64_t content_tokens(const Content& content) {
  std::int64_t n = 0;
  for (const ContentSpan& s : content) n += s.tokens;
  return n;
}

}  // namespace servesim
