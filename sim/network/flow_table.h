// The state of a flow network that FlowNetwork (flow_network.h) and its incremental max-min re-solve
// (max_min_refill.h) share: the directed links with the flows on them, and the flows with their current rates.
#pragma once
#include <algorithm>
#include <cstddef>
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

// What the re-fill reads of every link it touches, kept small and dense: one array per field (struct of arrays),
// indexed by link id, so that the re-fill's scattered reads of one field over many links touch few cache lines.
struct LinkStates {
  std::vector<double> capacity;  // bytes per second
  std::vector<double> load;      // sum of the current rates of the flows on the link
  // The level at which the link saturated when the current rates were filled (the flows at that rate are held
  // there), +infinity when it did not (the link is not, or not known to be, a bottleneck).
  std::vector<double> level;
  // Every flow on the link also crosses a link of smaller capacity (NetLink::dominator): this link can never
  // saturate, so re-fills leave it out.
  std::vector<std::uint8_t> dominated;

  void resize(std::size_t n) {
    capacity.resize(n, 0.0);
    load.resize(n, 0.0);
    level.resize(n, std::numeric_limits<double>::infinity());
    dominated.resize(n, 0);
  }
};

struct NetLink {
  // The slots of the flows crossing the link, in no particular (but deterministic) order.
  std::vector<std::uint32_t> flows;
  // A link of smaller capacity that the link's first flow also crosses (the nearest such on its route; -1: none),
  // and how many of the link's flows cross it. Chosen when the link goes from empty to busy.
  int dominator = -1;
  std::int64_t through_dominator = 0;
  // Statistics.
  double bytes = 0;    // bytes of the flows that have finished (active flows' bytes so far are theirs to tell)
  Instant busy;        // busy time of the intervals that have ended (as a duration)
  Instant busy_since;  // start of the current busy interval (while flows is not empty)
};

// The cold part of a flow (its hot part, read by the re-fill, is in FlowTable's per-slot arrays).
struct NetFlow {
  FlowDemand demand;
  std::vector<std::uint32_t> where;  // where[k]: this flow's index in the flows of link demand.links[k]
  double bytes = 0;                  // its size
  std::uint64_t tag = 0;
  FlowHandler* who = nullptr;
  std::uint32_t generation = 0;
  bool live = false;
  bool attached = false;  // on its links' lists
};

// A flow's progress, rewritten whenever its rate changes (dense, by slot).
struct FlowClock {
  double remaining = 0;      // bytes left at `settled`
  Instant settled;           // when `remaining` was brought up to date
  Ns finish = kNever;        // exact finish time: finish + finish_frac ns (kNever: none)
  double finish_frac = 0;
  std::uint64_t serial = 0;  // start order: breaks ties between equal finish times
};

struct FlowTable {
  LinkStates state;            // by link id
  std::vector<NetLink> links;  // by link id
  std::vector<NetFlow> flows;  // by slot; slots of finished flows are reused
  // By slot, dense (the re-fill reads these of every flow on a link it scans, and of every flow it re-solves):
  std::vector<FlowClock> clock;
  std::vector<double> rate;   // the flow's current max-min fair rate, bytes per second
  std::vector<double> bound;  // upper bound of its rate: min(cap, capacity of each link crossed)
  std::vector<double> cap;    // its own rate limit (demand.cap; +infinity: none)
  // The flows' routes (demand.links) side by side, `stride` entries per slot: route(slot) is the first
  // route_length[slot] of them.
  std::vector<int> routes;
  std::vector<std::uint32_t> route_length;
  std::size_t stride = 0;

  [[nodiscard]] const int* route(std::uint32_t slot) const { return routes.data() + slot * stride; }
  [[nodiscard]] std::uint32_t hops(std::uint32_t slot) const { return route_length[slot]; }

  // A new slot (all of its fields zero).
  std::uint32_t add_slot() {
    const auto slot = static_cast<std::uint32_t>(flows.size());
    flows.emplace_back();
    clock.emplace_back();
    rate.push_back(0.0);
    bound.push_back(0.0);
    cap.push_back(0.0);
    route_length.push_back(0);
    routes.resize(flows.size() * stride, -1);
    return slot;
  }
  // Copies a slot's route into `routes` (widening the stride when the route is longer than any before).
  void set_route(std::uint32_t slot, const std::vector<int>& links) {
    if (links.size() > stride) {
      const std::size_t wider = std::max(links.size(), 2 * stride);
      std::vector<int> moved(flows.size() * wider, -1);
      for (std::size_t s = 0; s < flows.size(); ++s) {
        std::copy_n(routes.begin() + static_cast<std::ptrdiff_t>(s * stride), route_length[s],
                    moved.begin() + static_cast<std::ptrdiff_t>(s * wider));
      }
      routes = std::move(moved);
      stride = wider;
    }
    std::copy(links.begin(), links.end(), routes.begin() + static_cast<std::ptrdiff_t>(slot * stride));
    route_length[slot] = static_cast<std::uint32_t>(links.size());
  }
};

}  // namespace servesim
