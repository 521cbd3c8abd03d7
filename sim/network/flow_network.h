// An event-driven flow-level network: transfers (flows) share the directed links of a topology at their max-min
// fair rates (models/net/flow_rates.h), re-solved whenever a flow starts or ends, and each flow's owner hears when
// its last byte arrives.
//
// Rates are piecewise constant between events. When flows start or end, only the flows whose rates can change
// are re-solved: progressive filling runs over the changed flows' connected component (the flows sharing links
// with them, transitively; max-min fair rates of one component never depend on flows outside it), and within it
// tracks only the flows and links the change reaches, the rest known from the previous solution
// (sim/network/max_min_refill.h): the work grows with the flows whose rates change, not with the component. A
// flow's remaining bytes are brought up to date lazily, when its rate changes or it ends. One wake-up event is
// pending at a time, for the earliest completion; when that changes, the pending event is left in the queue and
// ignored by its version stamp (the event core has no cancellation). The finish times are kept in an indexed heap
// (sim/network/finish_queue.h); when a rate change only moves a finish later, its key stays behind as a lower
// bound, corrected when it reaches the top, so about half of the rate changes never touch the heap.
//
// Time and rounding: the clock is integer nanoseconds (sim/core/simulator.h), but rates change at exact times:
// when a flow starts (an integer nanosecond) and when a flow's last byte arrives, t = (when its rate last changed)
// + remaining / rate, kept exactly (a nanosecond plus a fraction in [-0.5, 0.5)). The completion is reported at t
// rounded to the nearest nanosecond (half up), by an event with Priority::transfer_end; the other flows' rates
// change at t itself. So the rates are those of the continuous-time model (flow_finish_times), and every
// completion is reported within half a nanosecond of its exact time (plus floating-point rounding in the bytes).
// One exception: when a start and a completion fall in the same nanosecond and are handled in the opposite order
// of their exact times (the event core orders them by priority, not by the fraction), the one handled second
// changes the rates at the exact time of the first: an error below half a nanosecond. The bytes a flow carries
// over a segment of constant rate are rate x duration, except the last segment, which carries exactly what was
// left: a flow's segments sum to its bytes, and every link's byte count is the sum of its flows' segments.
//
// Link statistics (for a per-link CSV): bytes carried, busy time (at least one flow on the link) and utilisation
// seconds (bytes / capacity: the integral of utilisation over time), plus the current load and utilisation.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "models/common/units.h"
#include "models/net/flow_rates.h"
#include "sim/core/simulator.h"
#include "sim/network/finish_queue.h"
#include "sim/network/flow_table.h"
#include "sim/network/max_min_refill.h"

namespace servesim {

class Topology;

// Who hears about a finished flow; `tag` is the one given to FlowNetwork::start.
class FlowHandler {
 public:
  virtual ~FlowHandler() = default;
  virtual void flow_done(Simulator& sim, std::uint64_t tag) = 0;
};

// A flow's handle: (generation << 32) | slot. Stays unique: a slot reused by a later flow has a new generation.
using FlowId = std::uint64_t;

struct LinkStats {
  Bytes bytes{0};          // bytes carried so far
  Seconds busy{0};         // time with at least one flow on the link
  Seconds utilisation{0};  // integral of (carried rate / capacity) over time = bytes / capacity
};

class FlowNetwork final : public EventTarget {
 public:
  // Link capacities: directed link l of the topology carries link(l).bandwidth (the raw line rate per direction;
  // protocol efficiencies are the transport's business, through each flow's cap).
  explicit FlowNetwork(const Topology& topology);
  // Capacities given directly, bytes per second per directed link (InputError: not finite and > 0).
  explicit FlowNetwork(std::vector<BytesPerSec> capacity);

  // Starts a flow of `bytes` now. `who->flow_done(sim, tag)` runs at its completion (who may be nullptr: nobody
  // is told). A flow of 0 bytes completes at the current time (through an event, never inside start) and holds no
  // link. Handlers may start flows. Throws InputError for a bad demand (MaxMinSolver::check) or bytes that are
  // negative or not finite.
  FlowId start(Simulator& sim, FlowDemand demand, Bytes bytes, FlowHandler* who, std::uint64_t tag);

  void on_event(Simulator& sim, std::uint64_t arg) override;

  [[nodiscard]] std::size_t link_count() const { return table_.links.size(); }
  [[nodiscard]] std::size_t active_flows() const { return active_; }
  [[nodiscard]] std::uint64_t flows_started() const { return started_; }
  // Flows re-solved so far (summed over the re-solves): the work of the incremental re-fill.
  [[nodiscard]] std::uint64_t flows_resolved() const { return resolved_; }
  // Rate changes applied so far (flows whose re-solved rate differed from their rate).
  [[nodiscard]] std::uint64_t rate_changes() const { return rate_changes_; }
  [[nodiscard]] bool active(FlowId id) const;
  // A flow's current rate (0 once it has finished, or for a flow of 0 bytes).
  [[nodiscard]] BytesPerSec rate(FlowId id) const;
  // A flow's bytes still to arrive at time `now` (>= the time of the last event; 0 once finished).
  [[nodiscard]] Bytes remaining(FlowId id, Ns now) const;

  [[nodiscard]] BytesPerSec capacity(int link) const { return solver_.capacity(link); }
  // Sum of the current rates of the flows on a link, and that over its capacity (the current utilisation).
  [[nodiscard]] BytesPerSec load(int link) const {
    return BytesPerSec{table_.state.load.at(static_cast<std::size_t>(link))};
  }
  [[nodiscard]] double utilisation(int link) const { return load(link) / capacity(link); }
  // Every link's statistics from time 0 up to `now` (>= the time of the last event), result[l] for link l.
  [[nodiscard]] std::vector<LinkStats> link_stats(Ns now) const;

 private:
  // The live flow's slot, or kNoSlot.
  [[nodiscard]] std::uint32_t find(FlowId id) const;
  // Bytes a flow carries from its `settled` time to `at` at its current rate (0 if `at` is not later), never
  // more than it has left.
  [[nodiscard]] double carried(std::uint32_t slot, Instant at) const;
  // Advances a flow's remaining bytes to `at` at its current rate (no-op for a flow already settled at or after
  // `at`).
  void settle(std::uint32_t slot, Instant at);
  void attach(std::uint32_t slot, Instant at);
  void detach(std::uint32_t slot, Instant at);
  // Runs the re-fill begun by refill_.begin() (and fed the changes) and applies the rates that changed, as of the
  // exact time `at`.
  void resolve(Instant at);
  void reschedule(Simulator& sim);
  void set_finish(std::uint32_t slot, Ns finish, double frac);

  // The live flow that finishes first (kNoSlot: none), its queue key made exact.
  [[nodiscard]] std::uint32_t earliest();

  static constexpr std::uint32_t kNoSlot = 0xffffffffU;

  MaxMinSolver solver_;  // checks demands
  FlowTable table_;
  MaxMinRefill refill_;
  std::vector<std::uint32_t> free_slots_;
  FinishQueue finishes_;  // the live flows' finish times (a key may lag below a later finish: see set_finish)
  std::size_t active_ = 0;
  std::uint64_t started_ = 0;
  std::uint64_t resolved_ = 0;
  std::uint64_t rate_changes_ = 0;
  std::uint64_t version_ = 0;
  Ns pending_ = kNever;  // time of the valid pending wake-up event (kNever: none)
  std::vector<std::uint32_t> done_;  // scratch of on_event()
  std::vector<std::pair<FlowHandler*, std::uint64_t>> told_;
};

}  // namespace servesim
