// Flow-level network model: concurrent transfers (flows) share directed links, and every flow gets its max-min
// fair rate. The pure solver lives here; sim/network/flow_network.h runs it event by event.
//
// Max-min fairness by progressive filling (D. Bertsekas and R. Gallager, "Data Networks", 2nd ed., Prentice
// Hall 1992, section 6.5.2): every unfrozen flow's rate grows at the same pace from 0; when a link saturates
// (the rates of the flows crossing it sum to its capacity), its unfrozen flows freeze at the level reached; when
// a flow reaches its own cap (what its transport reaches alone), it freezes at its cap. The result: no flow can
// go faster without slowing a flow that is no faster than it. Links are directed ids (a cable's two directions
// are two ids), so opposite directions never interfere.
//
// Ties and rounding: links that saturate at the same level are frozen in ascending id order, a link before a
// flow's cap at the same level; each link's remaining capacity is reduced by every rate frozen on it, in that order.
// The result is a pure function of the inputs (never of pointer values or hash order).
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "models/common/units.h"

namespace servesim {

// One flow's demand: the directed links it crosses (ids into `capacity`), and its own rate limit (what its
// transport can reach alone, e.g. a NIC's achieved GPUDirect rate; +infinity for none).
struct FlowDemand {
  std::vector<int> links;
  BytesPerSec cap{std::numeric_limits<double>::infinity()};
};

// Max-min fair rates by progressive filling: every unfrozen flow's rate grows equally until a link saturates
// (its flows freeze at that share) or a flow reaches its cap. Links carry each direction independently (they are
// directed ids). A flow with no links gets its cap (must be finite, else InputError). Shapes: result[f] for
// flows[f], in bytes per second; capacity[l] is directed link l's capacity in bytes per second.
// Throws InputError (one line naming the flow or link index) for a capacity that is not finite and > 0, a link id
// out of range or repeated within one flow, a cap that is not > 0 (NaN included), and a flow with neither links
// nor a finite cap.
[[nodiscard]] std::vector<BytesPerSec> max_min_rates(const std::vector<BytesPerSec>& capacity,
                                                     const std::vector<FlowDemand>& flows);

struct TimedFlow {
  FlowDemand demand;
  Bytes bytes{0};
  Seconds start{0};
};

// When each flow finishes (absolute seconds, result[f] for flows[f]), rates re-solved whenever a flow starts or
// ends (piecewise-constant rates): the continuous-time reference for sim/network/flow_network.h. A flow of 0 bytes
// finishes at its start and never holds a link. Flows that finish within 1e-13 s of each other finish together
// (at the earlier time), so that rounding in the remaining bytes cannot make one of them a separate event.
// Throws InputError as max_min_rates does, and for bytes or a start that is negative or not finite (naming the
// flow index).
[[nodiscard]] std::vector<Seconds> flow_finish_times(const std::vector<BytesPerSec>& capacity,
                                                     const std::vector<TimedFlow>& flows);

// The solver behind both functions, reusable over one set of links: its scratch space is sized to the link count
// once, so solving a few flows costs time in the sum of their route lengths (times a log for the heap of
// saturation levels), not in the number of links. sim/network/flow_network.h solves one connected component of
// flows at a time with it.
class MaxMinSolver {
 public:
  // Throws InputError "link <l>: capacity ... must be finite and > 0" for a bad capacity.
  explicit MaxMinSolver(std::vector<BytesPerSec> capacity);

  [[nodiscard]] std::size_t link_count() const { return capacity_.size(); }
  [[nodiscard]] BytesPerSec capacity(int link) const { return BytesPerSec{capacity_[static_cast<std::size_t>(link)]}; }

  // Checks one demand against these links; the InputError names `what` ("flow 3"): a link id out of range or
  // repeated, a cap that is not > 0 (NaN), or no links and an infinite cap.
  void check(const FlowDemand& demand, const std::string& what) const;
  // The same check without formatting anything for a good demand: "" when it is good, else the message's tail
  // (what check() appends to `what`, e.g. ": link id 9 is out of range (4 links)").
  [[nodiscard]] std::string problem(const FlowDemand& demand) const;

  // Max-min fair rates of `flows` (each already check()ed) as if they were alone on the links: rates[i] for
  // *flows[i], bytes per second. rates.size() must equal flows.size().
  void solve(std::span<const FlowDemand* const> flows, std::span<double> rates);

 private:
  struct Level {  // a candidate saturation: link `id` (< link count) or the cap of flow `id - link count`
    double level;
    std::int64_t id;
  };

  std::vector<double> capacity_;
  // Per-link scratch, valid for links whose stamp_ equals epoch_ (the links the current solve touches).
  std::vector<std::uint64_t> stamp_;
  std::vector<double> remaining_;    // capacity not yet taken by frozen flows
  std::vector<std::int32_t> unfrozen_;  // flows crossing the link that are still growing
  std::vector<std::int32_t> first_;     // start of the link's flows in incidence_
  std::vector<std::int32_t> count_;     // flows crossing the link (this solve)
  std::uint64_t epoch_ = 0;
  // Per-solve scratch.
  std::vector<int> touched_;            // links of this solve, first-seen order
  std::vector<std::int32_t> incidence_;  // flow indices per touched link (CSR)
  std::vector<char> frozen_;
  std::vector<Level> heap_;
};

}  // namespace servesim
