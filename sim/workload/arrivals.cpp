// Arrival processes. Register a new one with one line in arrival_registry().
#include <algorithm>

#include <boost/random/exponential_distribution.hpp>
#include <boost/random/gamma_distribution.hpp>

#include "models/common/error.h"
#include "sim/io/trace.h"
#include "sim/workload/mooncake_trace.h"
#include "sim/workload/workload.h"

namespace servesim {
namespace {

// Poisson process: exponential gaps with mean 1/rate (rate in requests per second).
class PoissonArrival final : public ArrivalProcess {
 public:
  explicit PoissonArrival(const Config& c) : rate_(c.positive("rate")) {}
  std::optional<Arrival> next(RandomEngine& rng) override {
    boost::random::exponential_distribution<double> gap(rate_);
    t_ += gap(rng);
    return Arrival{t_, std::nullopt, std::nullopt};
  }

 private:
  double rate_;
  double t_ = 0.0;
};

// Gamma renewal process: gaps ~ Gamma(shape = 1/cv^2, scale = cv^2/rate); cv > 1 is burstier than Poisson.
class GammaArrival final : public ArrivalProcess {
 public:
  explicit GammaArrival(const Config& c) : rate_(c.positive("rate")), cv_(c.positive("cv")) {}
  std::optional<Arrival> next(RandomEngine& rng) override {
    const double shape = 1.0 / (cv_ * cv_);
    boost::random::gamma_distribution<double> gap(shape, 1.0 / (rate_ * shape));
    t_ += gap(rng);
    return Arrival{t_, std::nullopt, std::nullopt};
  }

 private:
  double rate_;
  double cv_;
  double t_ = 0.0;
};

// Trace replay: arrival times (scaled by time_scale: 0.5 replays twice as fast; or rescaled to a mean `rate`),
// lengths and, for a Mooncake trace, content from a file.
class TraceArrival final : public ArrivalProcess {
 public:
  TraceArrival(const Config& c, const PathResolver& paths) : cfg_(c) {
    const std::string path = paths.resolve(c, "path");
    const std::string format = c.str_or("format", "azure");
    if (format != "azure" && format != "csv" && format != "mooncake") {
      c.fail("format", "unknown trace format '" + format + "' (valid: azure, csv, mooncake)");
    }
    if (c.has("rate") && c.has("time_scale")) {
      c.fail("rate", "replays the trace at a mean rate; time_scale scales it by a factor: give one of them");
    }
    scale_ = c.positive_or("time_scale", 1.0);
    if (scale_ > kMaxSimSeconds) c.fail("time_scale", "must be at most 1e+07");
    if (c.has("rate")) rate_ = c.positive("rate");
    std::int64_t block = kMooncakeBlockTokens;
    if (c.has("hash_block_size")) {
      if (format != "mooncake") c.fail("hash_block_size", "is for format = \"mooncake\" only");
      block = c.positive_int_at_most("hash_block_size", kMaxTokensPerRequest, "the limit of tokens per request");
    }
    try {
      if (format == "mooncake") {
        rows_ = read_mooncake_trace(path, block);
      } else {
        for (const TraceRow& r : read_trace(path, format)) {
          rows_.push_back(MooncakeRow{r.arrival_s, r.prompt_tokens, r.output_tokens, nullptr});
        }
      }
    } catch (const InputFileError& e) {
      // A file that cannot be opened (missing, a directory, ...) is the scenario's fault: name the key that points
      // at it, and keep the reason.
      if (e.file() == path) c.fail("path", e.what());
      throw;
    }
    // The replayed span must stay within the simulated-time limit (rows are checked against it on their own).
    const double span = rows_.back().arrival_s * scale_;
    if (span > kMaxSimSeconds) {
      c.fail(c.has("time_scale") ? "time_scale" : "path",
             path + ": the last arrival at " + short_number(rows_.back().arrival_s) + " s x time_scale " +
                 short_number(scale_) + " = " + short_number(span) + " s is past the simulated-time limit of 1e+07 s");
    }
  }
  void start(std::uint64_t, std::int64_t n) override {
    if (rate_ > 0) {
      const auto last = static_cast<std::size_t>(std::min<std::int64_t>(n, available()) - 1);
      scale_ = scale_for_rate(cfg_, rate_, n, rows_.front().arrival_s, rows_[last].arrival_s);
    }
  }
  std::optional<Arrival> next(RandomEngine&) override {
    if (i_ >= rows_.size()) return std::nullopt;
    const auto& r = rows_[i_++];
    return Arrival{r.arrival_s * scale_, r.prompt_tokens, r.output_tokens, r.content};
  }
  std::int64_t available() const override { return static_cast<std::int64_t>(rows_.size()); }

 private:
  Config cfg_;
  std::vector<MooncakeRow> rows_;
  double scale_ = 1.0;
  double rate_ = 0.0;  // > 0: replay at this mean rate (requests/s)
  std::size_t i_ = 0;
};

}  // namespace

const ArrivalRegistry& arrival_registry() {
  static const ArrivalRegistry r = [] {
    ArrivalRegistry reg("arrival process");
    reg.add("poisson", [](const Config& c, const PathResolver&) { return std::make_unique<PoissonArrival>(c); });
    reg.add("gamma", [](const Config& c, const PathResolver&) { return std::make_unique<GammaArrival>(c); });
    reg.add("trace", [](const Config& c, const PathResolver& p) { return std::make_unique<TraceArrival>(c, p); });
    reg.add("measured", make_measured_arrival);
    reg.add("conversations", make_conversation_arrival);
    return reg;
  }();
  return r;
}

}  // namespace servesim
