// A request as the workload produces it: when it arrives, how many tokens it has and will generate, and, when the
// workload knows it, what its tokens are (for prefix caching, sim/engine/kv_cache.h).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "models/common/units.h"

namespace servesim {

// `tokens` tokens of one piece of content named `id`: two spans with the same id hold the same tokens. A request's
// spans describe its first tokens in order (its prompt, and possibly its output: a multi-turn conversation's answer
// is the next turn's prompt); tokens past them are the request's own, equal to no other request's. A simulated
// request has no token ids: the spans stand for them (Mooncake traces: one id per 512-token block of the prompt;
// the conversation generator: one id per system prompt, user message and answer).
struct ContentSpan {
  std::uint64_t id = 0;
  std::int64_t tokens = 0;  // > 0
  friend bool operator==(const ContentSpan&, const ContentSpan&) = default;
};
using Content = std::vector<ContentSpan>;

struct Request {
  std::uint64_t id = 0;
  Ns arrival{0};
  std::int64_t prompt_tokens = 0;
  std::int64_t output_tokens = 0;
  // Its content, shared by the copies of the request; null (the default, and every workload without content ids):
  // nothing is known of its tokens, so none of its KV blocks is ever cached.
  std::shared_ptr<const Content> content = nullptr;
};

}  // namespace servesim
