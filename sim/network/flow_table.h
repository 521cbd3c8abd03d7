// The state of a flow network that FlowNetwork (flow_network.h) and its incremental max-min re-solve
// (max_min_refill.h) share: the directed links with the flows on them, and the flows with their current rates.
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

#include "models/common/units.h"
#include "models/net/flow_rates.h"

namespace servesim {

class FlowHandler;

// An exact time: ns + frac nanoseconds (frac is what rounding to the nanosecond left over).
struct Instant {
  Ns ns{0};
  double frac = 0;
};

// Nanoseconds from `from` to `to` (negative when `to` is earlier).
[[nodiscard]] inline double elapsed_ns(Instant from, Instant to) {
  return static_cast<double>(to.ns.v - from.ns.v) + (to.frac - from.frac);
}

// One flow on a link's list: its slot, and the link's index in the flow's route.
struct OnLink {
  std::uint32_t slot;
  std::uint32_t k;
};

// What the re-fill reads of every link it touches, kept small and dense.
struct LinkState {
  double capacity = 0;  // bytes per second
  double load = 0;      // sum of the current rates of the flows on the link
  // The level at which the link saturated when the current rates were filled (the flows at that rate are held
  // there), +infinity when it did not (the link is not, or not known to be, a bottleneck).
  double level = std::numeric_limits<double>::infinity();
  // Every flow on the link also crosses a link of smaller capacity (NetLink::dominator): this link can never
  // saturate, so re-fills leave it out.
  bool dominated = false;
};

struct NetLink {
  std::vector<OnLink> flows;  // the flows crossing the link, in no particular (but deterministic) order
  // A link of smaller capacity that the link's first flow also crosses (the nearest such on its route; -1: none),
  // and how many of the link's flows cross it. Chosen when the link goes from empty to busy.
  int dominator = -1;
  std::int64_t through_dominator = 0;
  // Statistics.
  double bytes = 0;    // bytes of the flows that have finished (active flows' bytes so far are theirs to tell)
  Instant busy;        // busy time of the intervals that have ended (as a duration)
  Instant busy_since;  // start of the current busy interval (while flows is not empty)
};

struct NetFlow {
  FlowDemand demand;
  std::vector<std::uint32_t> where;  // where[k]: this flow's index in the flows of link demand.links[k]
  double bound = 0;                  // upper bound of its rate: min(cap, capacity of each link crossed)
  double bytes = 0;                  // its size
  double remaining = 0;              // bytes left at `settled`
  Instant settled;                   // when `remaining` was brought up to date
  Ns finish = kNever;                // exact finish time: finish + finish_frac ns (kNever: none)
  double finish_frac = 0;
  std::uint64_t serial = 0;  // start order: breaks ties between equal finish times
  std::uint64_t tag = 0;
  FlowHandler* who = nullptr;
  std::uint32_t generation = 0;
  bool live = false;
  bool attached = false;  // on its links' lists
};

struct FlowTable {
  std::vector<LinkState> state;  // by link id
  std::vector<NetLink> links;    // by link id
  std::vector<NetFlow> flows;    // by slot; slots of finished flows are reused
  std::vector<double> rate;      // by slot: the flow's current max-min fair rate, bytes per second (dense: the
                                 // re-fill reads the rates of every flow on a link it scans)
};

}  // namespace servesim
