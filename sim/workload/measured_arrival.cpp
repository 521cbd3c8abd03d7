// Replay of a measured serving run (sim/io/measured.h formats): arrival times and lengths of every request,
// shifted so that the first arrival is at t = 0.
#include "models/common/error.h"
#include "sim/io/measured.h"
#include "sim/workload/workload.h"

namespace servesim {
namespace {

class MeasuredArrival final : public ArrivalProcess {
 public:
  MeasuredArrival(const Config& c, const PathResolver& paths) {
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
  }
  std::optional<Arrival> next(RandomEngine&) override {
    if (i_ >= reqs_.size()) return std::nullopt;
    const auto& r = reqs_[i_++];
    return Arrival{r.arrival_s - t0_, r.prompt_tokens, r.output_tokens};
  }
  std::int64_t available() const override { return static_cast<std::int64_t>(reqs_.size()); }

 private:
  std::vector<MeasuredRequest> reqs_;
  double t0_ = 0;
  std::size_t i_ = 0;
};

}  // namespace

std::unique_ptr<ArrivalProcess> make_measured_arrival(const Config& c, const PathResolver& paths) {
  return std::make_unique<MeasuredArrival>(c, paths);
}

}  // namespace servesim
