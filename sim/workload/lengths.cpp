// Token-length distributions. Register a new one with one line in length_registry().
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include <boost/random/lognormal_distribution.hpp>
#include <boost/random/uniform_int_distribution.hpp>

#include "models/common/error.h"
#include "sim/io/trace.h"
#include "sim/workload/workload.h"

namespace servesim {
namespace {

const std::string kLimit = "the limit of tokens per request";

class FixedLength final : public LengthDistribution {
 public:
  explicit FixedLength(const Config& c) : value_(c.positive_int_at_most("value", kMaxTokensPerRequest, kLimit)) {}
  std::int64_t sample(RandomEngine&, const Arrival&) override { return value_; }
  std::optional<std::int64_t> min_tokens() const override { return value_; }

 private:
  std::int64_t value_;
};

class UniformLength final : public LengthDistribution {
 public:
  explicit UniformLength(const Config& c)
      : min_(c.positive_int_at_most("min", kMaxTokensPerRequest, kLimit)),
        max_(c.positive_int_at_most("max", kMaxTokensPerRequest, kLimit)) {
    if (max_ < min_) c.fail("max", "must be >= min");
  }
  std::optional<std::int64_t> min_tokens() const override { return min_; }
  std::int64_t sample(RandomEngine& rng, const Arrival&) override {
    return boost::random::uniform_int_distribution<std::int64_t>(min_, max_)(rng);
  }

 private:
  std::int64_t min_, max_;
};

// Lognormal with the given mean and standard deviation of the lengths themselves, rounded and clipped to
// [min, max].
class LognormalLength final : public LengthDistribution {
 public:
  explicit LognormalLength(const Config& c)
      : mean_(c.positive("mean")),
        std_(c.positive("std")),
        min_(c.positive_int_at_most_or("min", 1, kMaxTokensPerRequest, kLimit)),
        max_(c.positive_int_at_most_or("max", kMaxTokensPerRequest, kMaxTokensPerRequest, kLimit)) {
    // A mean past the limit would put nearly every draw past max (1e30 made every prompt 1 token by overflow).
    if (mean_ > double(kMaxTokensPerRequest)) {
      c.fail("mean", "must be at most " + std::to_string(kMaxTokensPerRequest) + " (the limit of tokens per request; got " +
                         short_number(mean_) + ")");
    }
    if (std_ > 1e3 * double(kMaxTokensPerRequest)) c.fail("std", "must be at most 1e+10");
    if (max_ < min_) c.fail("max", "must be >= min");
  }
  std::int64_t sample(RandomEngine& rng, const Arrival&) override {
    const double s2 = std::log(1.0 + (std_ * std_) / (mean_ * mean_));
    const double mu = std::log(mean_) - s2 / 2.0;
    boost::random::lognormal_distribution<double> d(mu, std::sqrt(s2));
    // Clipped before rounding, so a far tail draw cannot overflow the integer (same result for every draw that
    // rounds into [min, max]).
    return static_cast<std::int64_t>(std::llround(std::clamp(d(rng), double(min_), double(max_))));
  }
  std::optional<std::int64_t> min_tokens() const override { return min_; }

 private:
  double mean_, std_;
  std::int64_t min_, max_;
};

// Lengths from a trace: the arrival's own (trace replay), or rows sampled uniformly from `path` (any arrival
// process with the trace's length mix).
class TraceLength final : public LengthDistribution {
 public:
  TraceLength(const Config& c, const PathResolver& paths, LengthKind kind) : kind_(kind) {
    if (c.has("path")) {
      const std::string path = paths.resolve(c, "path");
      const std::string format = c.str_or("format", "azure");
      if (format != "azure" && format != "csv") c.fail("format", "unknown trace format '" + format + "' (valid: azure, csv)");
      std::vector<TraceRow> rows;
      try {
        rows = read_trace(path, format);
      } catch (const InputFileError& e) {
        if (e.file() == path) c.fail("path", e.what());
        throw;
      }
      for (const auto& r : rows) values_.push_back(kind == LengthKind::prompt ? r.prompt_tokens : r.output_tokens);
    }
    where_ = c.key_path("impl");
  }
  std::int64_t sample(RandomEngine& rng, const Arrival& a) override {
    const auto& own = kind_ == LengthKind::prompt ? a.prompt_tokens : a.output_tokens;
    if (values_.empty()) {
      if (!own) throw InputError(where_ + ": impl 'trace' needs a path unless the arrivals replay a trace");
      return *own;
    }
    // The row of each call is drawn one call ahead, from the same stream in the same order (the stream is this
    // distribution's alone), and its value prefetched: a large trace's rows are mostly out of cache by the next
    // arrival, and the load then overlaps the simulation in between.
    boost::random::uniform_int_distribution<std::size_t> pick(0, values_.size() - 1);
    if (!next_) next_ = pick(rng);
    const std::size_t row = *next_;
    next_ = pick(rng);
    __builtin_prefetch(&values_[*next_]);
    return values_[row];
  }

 private:
  LengthKind kind_;
  std::vector<std::int64_t> values_;
  std::optional<std::size_t> next_;  // the next call's row, drawn
  std::string where_;
};

}  // namespace

const LengthRegistry& length_registry() {
  static const LengthRegistry r = [] {
    LengthRegistry reg("length distribution");
    reg.add("fixed", [](const Config& c, const PathResolver&, LengthKind) { return std::make_unique<FixedLength>(c); });
    reg.add("uniform", [](const Config& c, const PathResolver&, LengthKind) { return std::make_unique<UniformLength>(c); });
    reg.add("lognormal", [](const Config& c, const PathResolver&, LengthKind) { return std::make_unique<LognormalLength>(c); });
    reg.add("trace", [](const Config& c, const PathResolver& p, LengthKind k) { return std::make_unique<TraceLength>(c, p, k); });
    return reg;
  }();
  return r;
}

}  // namespace servesim
