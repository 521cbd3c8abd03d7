// Replay of a measured serving run (sim/io/measured.h formats): arrival times and lengths of every request,
// shifted so that the first arrival is at t = 0; with `rate`, rescaled to that mean rate (sim/workload/workload.h).
#include <algorithm>

#include "models/common/error.h"
#include "sim/io/measured.h"
#include "sim/workload/workload.h"

namespace servesim {
namespace {

class MeasuredArrival final : public ArrivalProcess {
 public:
  MeasuredArrival(const Config& c, const PathResolver& paths) : cfg_(c) {
    const std::string path = paths.resolve(c, "path");
    // A missing file is the scenario's fault: name the key; anything else (a directory, a FIFO, ...) the reader
    // refuses with its reason.
    std::error_code ec;
    if (std::filesystem::symlink_status(path, ec).type() == std::filesystem::file_type::not_found) {
      c.fail("path", "measured run not found: " + path);
    }
    reqs_ = read_measured_run(path);
    if (reqs_.empty()) c.fail("path", "the measured run has no requests");
    t0_ = reqs_.front().arrival_s;
    // Arrivals are replayed from the first: the span must stay within the simulated-time limit.
    const double span = reqs_.back().arrival_s - t0_;
    if (!(span <= kMaxSimSeconds)) {
      c.fail("path", path + ": the last request arrives " + short_number(span) +
                         " s after the first, past the simulated-time limit of 1e+07 s");
    }
    if (c.has("rate")) rate_ = c.positive("rate");
  }
  void start(std::uint64_t, std::int64_t n) override {
    if (rate_ > 0) {
      const auto last = static_cast<std::size_t>(std::min<std::int64_t>(n, available()) - 1);
      scale_ = scale_for_rate(cfg_, rate_, n, 0.0, reqs_[last].arrival_s - t0_);
    }
  }
  std::optional<Arrival> next(RandomEngine&) override {
    if (i_ >= reqs_.size()) return std::nullopt;
    const auto& r = reqs_[i_++];
    return Arrival{(r.arrival_s - t0_) * scale_, r.prompt_tokens, r.output_tokens};
  }
  std::int64_t available() const override { return static_cast<std::int64_t>(reqs_.size()); }

 private:
  Config cfg_;
  std::vector<MeasuredRequest> reqs_;
  double t0_ = 0;
  double rate_ = 0.0;  // > 0: replay at this mean rate (requests/s)
  double scale_ = 1.0;
  std::size_t i_ = 0;
};

}  // namespace

std::unique_ptr<ArrivalProcess> make_measured_arrival(const Config& c, const PathResolver& paths) {
  return std::make_unique<MeasuredArrival>(c, paths);
}

}  // namespace servesim
