#include "sim/workload/workload.h"

#include <algorithm>

#include "models/common/error.h"

namespace servesim {

std::string PathResolver::resolve(const std::string& p) const {
  const std::filesystem::path path(p);
  if (path.is_absolute()) return p;
  return (base / path).lexically_normal().string();
}

std::string PathResolver::resolve(const Config& c, const std::string& key) const { return c.path_value(key, base); }

WorkloadSource::WorkloadSource(const Config& w, const PathResolver& paths, std::uint64_t seed)
    : arrival_rng_(make_stream(seed, "arrivals")),
      prompt_rng_(make_stream(seed, "prompt_tokens")),
      output_rng_(make_stream(seed, "output_tokens")) {
  const Config a = w.table("arrival");
  arrival_where_ = a.where() + ": " + w.key_path("arrival");
  arrival_ = arrival_registry().create(a.str("impl"), a.key_path("impl"), a, paths);
  const bool trace = arrival_->available() > 0;
  const bool own_lengths = arrival_->gives_lengths();
  auto lengths = [&](const char* key, LengthKind kind) {
    if (own_lengths && !trace && w.has(key)) {
      w.fail(key, "arrival process '" + a.str("impl") + "' gives every request's lengths: leave this table out");
    }
    if (!w.has(key)) {
      if (!own_lengths) w.fail(key, "missing (a synthetic arrival process needs a length distribution)");
      const Config empty = w.table_or_empty(key);
      return length_registry().create("trace", w.key_path(key), empty, paths, kind);
    }
    const Config t = w.table(key);
    const std::string impl = t.str("impl");
    if (impl == "trace" && !own_lengths && !t.has("path")) {
      t.fail("impl", "'trace' lengths need a path unless the arrivals replay a trace");
    }
    return length_registry().create(impl, t.key_path("impl"), t, paths, kind);
  };
  prompt_ = lengths("prompt_tokens", LengthKind::prompt);
  output_ = lengths("output_tokens", LengthKind::output);
  if (w.has("num_requests")) {
    num_requests_ = w.positive_int_at_most("num_requests", kMaxRequestsPerRun, "the limit of requests per run");
    if (trace && num_requests_ > arrival_->available()) {
      w.fail("num_requests", "the trace has only " + std::to_string(arrival_->available()) + " rows (asked " +
                                 std::to_string(num_requests_) + ")");
    }
  } else if (trace) {
    num_requests_ = arrival_->available();
  } else {
    w.fail("num_requests", "missing (required unless the arrivals replay a trace)");
  }
  max_prompt_ = w.positive_int_at_most_or("max_prompt_tokens", 0, kMaxTokensPerRequest, "the limit of tokens per request");
  prompt_where_ = w.has("prompt_tokens") ? w.where("prompt_tokens") + ": " + w.key_path("prompt_tokens") : w.where();
  arrival_->start(seed, num_requests_);
}

double scale_for_rate(const Config& c, double rate, std::int64_t n, double first_s, double last_s) {
  if (n < 2 || !(last_s > first_s)) {
    c.fail("rate", "needs at least two replayed arrivals at different times (the " + std::to_string(n) +
                       " replayed span " + short_number(std::max(0.0, last_s - first_s)) + " s)");
  }
  const double scale = double(n - 1) / (rate * (last_s - first_s));
  if (!(last_s * scale <= kMaxSimSeconds)) {
    c.fail("rate", "the last replayed arrival at " + short_number(last_s) + " s x " + short_number(scale) +
                       " (the rescaling to rate " + short_number(rate) + ") = " + short_number(last_s * scale) +
                       " s is past the simulated-time limit of 1e+07 s");
  }
  return scale;
}

std::optional<std::int64_t> WorkloadSource::min_prompt_tokens() const {
  auto m = prompt_->min_tokens();
  if (m && max_prompt_ > 0) m = std::min(*m, max_prompt_);
  return m;
}

std::optional<Request> WorkloadSource::next() {
  if (emitted_ >= num_requests_) return std::nullopt;
  const auto a = arrival_->next(arrival_rng_);
  if (!a) return std::nullopt;
  Request r;
  r.id = static_cast<std::uint64_t>(emitted_++);
  if (!(a->time_s <= kMaxSimSeconds)) {
    throw InputError(arrival_where_ + ": request " + std::to_string(emitted_ - 1) + " arrives at " +
                     short_number(a->time_s) + " s, past the simulated-time limit of 1e+07 s (raise the rate, lower "
                     "num_requests or set [sim] horizon)");
  }
  last_time_s_ = a->time_s;
  r.arrival = to_ns(Seconds{a->time_s});
  r.prompt_tokens = std::max<std::int64_t>(1, prompt_->sample(prompt_rng_, *a));
  r.output_tokens = std::max<std::int64_t>(1, output_->sample(output_rng_, *a));
  if (max_prompt_ > 0 && r.prompt_tokens > max_prompt_) r.prompt_tokens = max_prompt_;
  r.content = a->content;
  if (r.content && r.prompt_tokens != a->prompt_tokens.value_or(-1)) {
    // A prompt not the arrival's own (drawn elsewhere, or cut at max_prompt_tokens): its content is known only as
    // far as both agree, the prompt's first tokens; its output is its own.
    auto cut = std::make_shared<Content>();
    std::int64_t left = r.prompt_tokens;
    for (const ContentSpan& span : *r.content) {
      if (left == 0) break;
      cut->push_back(ContentSpan{span.id, std::min(left, span.tokens)});
      left -= cut->back().tokens;
    }
    r.content = std::move(cut);
  }
  return r;
}

}  // namespace servesim
