// Synthetic shared-prefix workload: conversations that open with one of a few shared system prompts and go on for
// several turns, each turn's prompt the whole conversation so far. Its parameters ([workload.arrival]):
//   impl = "conversations"
//   rate                  conversations started per second (> 0): a Poisson process of first turns.
//   num_system_prompts    distinct system prompts (>= 0, default 1; 0: conversations share nothing).
//   system_prompt_tokens  tokens of every system prompt (> 0; required when num_system_prompts > 0).
//   system_prompt_zipf    popularity exponent s >= 0 (default 0: uniform): a conversation opens with system prompt
//                         k = 1 .. N with probability proportional to 1 / k^s (Zipf's law, the usual model of
//                         content popularity, e.g. Breslau et al., "Web caching and Zipf-like distributions",
//                         INFOCOM 1999).
//   turns                 mean turns per conversation (>= 1, default 1: single requests after a system prompt):
//                         geometric on 1, 2, ...: P(T = t) = p (1 - p)^(t - 1) with p = 1 / turns.
//   think_time            mean time from one turn's arrival to the next turn's (a duration, > 0; required when
//                         turns > 1): exponential.
//   [workload.arrival.user_tokens]    the length distribution of each turn's new user message (fixed, uniform,
//                                     lognormal, or trace with a path: sim/workload/lengths.cpp).
//   [workload.arrival.output_tokens]  the length distribution of each turn's answer (the request's output tokens).
// Turn k's prompt is the system prompt, then turn 1's user message and answer, ..., turn k-1's user message and
// answer, then turn k's user message; its output is answer k. Its content (Request::content) names the system
// prompt by its index (0 .. N-1) and every user message and answer by an id of its own (N, N+1, ... in drawing
// order), and covers the answer too, so that the next turn's prompt finds the answer's blocks cached (vLLM caches
// the blocks of generated tokens as they fill). [workload] prompt_tokens and output_tokens must be left out.
// Open loop: a turn arrives think_time after the turn before it arrived, whether or not its answer is done (the
// workload is drawn before the simulation answers); choose think_time well above the end-to-end latency for the
// next turn to find the previous answer cached. Random streams (sim/core/random.h): the starts on the arrival
// stream; "conversations/system_prompt", "conversations/turns", "conversations/user_tokens",
// "conversations/output_tokens" and "conversations/think_time".
#include <cmath>
#include <queue>

#include <boost/random/discrete_distribution.hpp>
#include <boost/random/exponential_distribution.hpp>
#include <boost/random/geometric_distribution.hpp>

#include "models/common/error.h"
#include "sim/workload/workload.h"

namespace servesim {
namespace {

constexpr std::int64_t kMaxSystemPrompts = 1000000;
const std::string kTokenLimit = "the limit of tokens per request";

class ConversationArrival final : public ArrivalProcess {
 public:
  ConversationArrival(const Config& c, const PathResolver& paths)
      : rate_(c.positive("rate")),
        prompts_(c.non_negative_int_or("num_system_prompts", 1)),
        turns_(c.num_or("turns", 1.0)) {
    if (prompts_ > kMaxSystemPrompts) c.fail("num_system_prompts", "must be at most 1000000");
    if (prompts_ > 0) {
      prompt_tokens_ = c.positive_int_at_most("system_prompt_tokens", kMaxTokensPerRequest, kTokenLimit);
      const double zipf = c.non_negative_or("system_prompt_zipf", 0.0);
      if (zipf > 100) c.fail("system_prompt_zipf", "must be at most 100");
      std::vector<double> weights;
      for (std::int64_t k = 1; k <= prompts_; ++k) weights.push_back(std::pow(double(k), -zipf));
      pick_prompt_ = boost::random::discrete_distribution<std::size_t, double>(weights.begin(), weights.end());
    }
    if (!(turns_ >= 1.0) || turns_ > 1e6) c.fail("turns", "must be in [1, 1e6] (the mean turns per conversation)");
    if (turns_ > 1.0) {
      think_s_ = c.duration("think_time").v;
      if (!(think_s_ > 0)) c.fail("think_time", "must be > 0");
    }
    next_id_ = static_cast<std::uint64_t>(prompts_);
    user_ = lengths(c, "user_tokens", paths, LengthKind::prompt);
    answer_ = lengths(c, "output_tokens", paths, LengthKind::output);
  }

  void start(std::uint64_t seed, std::int64_t) override {
    prompt_rng_ = make_stream(seed, "conversations/system_prompt");
    turns_rng_ = make_stream(seed, "conversations/turns");
    user_rng_ = make_stream(seed, "conversations/user_tokens");
    answer_rng_ = make_stream(seed, "conversations/output_tokens");
    think_rng_ = make_stream(seed, "conversations/think_time");
  }

  bool gives_lengths() const override { return true; }

  std::optional<Arrival> next(RandomEngine& rng) override {
    if (!started_) {
      next_start_ = boost::random::exponential_distribution<double>(rate_)(rng);
      started_ = true;
    }
    if (!pending_.empty() && pending_.top().at_s <= next_start_) {
      Turn t = pending_.top();
      pending_.pop();
      return turn(std::move(t));
    }
    Turn t;
    t.at_s = next_start_;
    t.order = conversations_++;
    t.turns_left = 1;
    if (turns_ > 1.0) {
      t.turns_left += boost::random::geometric_distribution<std::int64_t, double>(1.0 / turns_)(turns_rng_);
    }
    auto content = std::make_shared<Content>();
    if (prompts_ > 0) {
      content->push_back(ContentSpan{static_cast<std::uint64_t>(pick_prompt_(prompt_rng_)), prompt_tokens_});
      t.tokens = prompt_tokens_;
    }
    t.history = std::move(content);
    next_start_ += boost::random::exponential_distribution<double>(rate_)(rng);
    return turn(std::move(t));
  }

 private:
  // A conversation's next turn: when it arrives and the conversation so far.
  struct Turn {
    double at_s = 0.0;
    std::uint64_t order = 0;  // the conversation's index: breaks ties of at_s
    std::int64_t turns_left = 0;
    std::shared_ptr<const Content> history;  // the previous turn's content (prompt and answer)
    std::int64_t tokens = 0;                  // its tokens
    bool operator>(const Turn& o) const { return at_s != o.at_s ? at_s > o.at_s : order > o.order; }
  };

  static std::unique_ptr<LengthDistribution> lengths(const Config& c, const char* key, const PathResolver& paths,
                                                     LengthKind kind) {
    const Config t = c.table(key);
    const std::string impl = t.str("impl");
    if (impl == "trace" && !t.has("path")) t.fail("impl", "'trace' lengths need a path here");
    return length_registry().create(impl, t.key_path("impl"), t, paths, kind);
  }

  Arrival turn(Turn t) {
    const Arrival none;
    const std::int64_t user = std::max<std::int64_t>(1, user_->sample(user_rng_, none));
    const std::int64_t answer = std::max<std::int64_t>(1, answer_->sample(answer_rng_, none));
    auto content = std::make_shared<Content>(*t.history);
    content->push_back(ContentSpan{next_id_++, user});
    content->push_back(ContentSpan{next_id_++, answer});
    Arrival a{t.at_s, t.tokens + user, answer, content};
    if (--t.turns_left > 0) {
      t.history = std::move(content);
      t.tokens += user + answer;
      t.at_s += boost::random::exponential_distribution<double>(1.0 / think_s_)(think_rng_);
      pending_.push(std::move(t));
    }
    return a;
  }

  double rate_;
  std::int64_t prompts_;
  double turns_;
  std::int64_t prompt_tokens_ = 0;
  double think_s_ = 0.0;
  boost::random::discrete_distribution<std::size_t, double> pick_prompt_;
  std::unique_ptr<LengthDistribution> user_;
  std::unique_ptr<LengthDistribution> answer_;
  RandomEngine prompt_rng_, turns_rng_, user_rng_, answer_rng_, think_rng_;
  std::priority_queue<Turn, std::vector<Turn>, std::greater<Turn>> pending_;
  double next_start_ = 0.0;
  bool started_ = false;
  std::uint64_t conversations_ = 0;
  std::uint64_t next_id_ = 0;
};

}  // namespace

std::unique_ptr<ArrivalProcess> make_conversation_arrival(const Config& c, const PathResolver& paths) {
  return std::make_unique<ConversationArrival>(c, paths);
}

}  // namespace servesim
