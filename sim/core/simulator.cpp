// The run loop. Everything that happens in a simulation happens here, one event at a time.
#include "sim/core/simulator.h"

#include <stdexcept>
#include <string>

#include "models/common/error.h"

namespace servesim {

void Simulator::check_time(Ns at) const {
  if (at < now_) throw std::logic_error("event scheduled in the past");
  // Input is checked against kMaxSimSeconds where it enters; this catches a run whose events add up past it.
  if (at.v > kMaxSimNs) {
    throw InputError("simulated time would pass the limit of 1e+07 s (an event at " + short_number(ns_to_s(at)) +
                     " s): shorten the workload or set [sim] horizon");
  }
}

void Simulator::schedule(Ns at, Priority priority, EventTarget* target, std::uint64_t arg) {
  check_time(at);
  queue_.push(Event{at, static_cast<std::int32_t>(priority), next_seq_++, target, arg});
}

std::uint64_t Simulator::run(Ns horizon) {
  std::uint64_t n = 0;
  horizon_ = horizon;
  inline_ = 0;
  while (!queue_.empty()) {
    const Event e = queue_.top();
    if (e.time > horizon) break;
    queue_.pop();
    now_ = e.time;
    e.target->on_event(*this, e.arg);
    ++n;
  }
  n += inline_;
  inline_ = 0;
  horizon_ = kNever;
  processed_ += n;
  return n;
}

}  // namespace servesim
