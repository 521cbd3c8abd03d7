// `servesim run --link-stats F.csv`: every directed link of the KV-transfer network that carried bytes, interval by
// interval. Columns: start_s, end_s (the interval; the last one ends at the run's end), link (directed link id),
// from, to (vertex names), bytes (carried in the interval), utilisation (its mean over the interval: bytes /
// (capacity x interval length)); in time order, then link id.
//
// The sampler adds no event to the run: the hand-off calls observe() whenever the network changes (just before a
// flow starts, just after one ends). Rates are constant between two changes, so a link's bytes at an interval
// boundary between them follow exactly by linear interpolation.
#pragma once
#include <ostream>
#include <vector>

#include "models/net/topology.h"
#include "sim/network/flow_network.h"

namespace servesim {

class LinkStatsSampler {
 public:
  // `interval` > 0. Writes the header now.
  LinkStatsSampler(const FlowNetwork& net, const Topology& topo, std::ostream& out, Ns interval);
  // The network is about to change, or has just changed, at `now` (non-decreasing).
  void observe(Ns now);
  // The run ended at `end`: writes the intervals up to it, the last one partial.
  void finish(Ns end);

 private:
  void write(Ns from, Ns to, const std::vector<double>& a, const std::vector<double>& b);
  const FlowNetwork& net_;
  const Topology& topo_;
  std::ostream& out_;
  Ns interval_;
  Ns prev_t_{0};
  std::vector<double> prev_;      // cumulative bytes per link at prev_t_
  Ns boundary_{0};                // start of the interval being filled
  std::vector<double> at_boundary_;  // cumulative bytes per link at boundary_
};

}  // namespace servesim
