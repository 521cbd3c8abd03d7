#include "models/net/topology_comm.h"

namespace servesim {

TopologyComm::TopologyComm(std::shared_ptr<const Topology> topo, const std::vector<int>& gpus,
                           const ParallelConfig& parallel, const std::string& algo,
                           std::shared_ptr<const CollectiveCalibration> cal, const std::string& model,
                           const std::string& proto) {
  const auto t = static_cast<std::size_t>(parallel.tensor);
  for (std::size_t s = 0; s < static_cast<std::size_t>(parallel.pipeline); ++s) {
    stages_.emplace_back(topo, std::vector<int>(gpus.begin() + static_cast<std::ptrdiff_t>(s * t),
                                                gpus.begin() + static_cast<std::ptrdiff_t>((s + 1) * t)),
                         algo, cal, model, proto);
    if (s > 0) boundaries_.emplace_back(gpus[(s - 1) * t], gpus[s * t]);
  }
}

// The step model multiplies one layer's time by every layer of the pipeline and one send by the number of stage
// boundaries, so the mean over stages (and over boundaries) makes their sums exact.
OpCost TopologyComm::all_reduce(Bytes bytes) const {
  Seconds sum{0.0};
  for (const auto& g : stages_) sum += g.time(CollectiveOp::all_reduce, bytes);
  return {sum / double(stages_.size()), Bound::communication};
}

OpCost TopologyComm::send_recv(Bytes bytes) const {
  if (boundaries_.empty()) return {Seconds{0.0}, Bound::communication};
  Seconds sum{0.0};
  for (const auto& [a, b] : boundaries_) sum += stages_.front().p2p_time(a, b, bytes);
  return {sum / double(boundaries_.size()), Bound::communication};
}

OpCost TopologyComm::gather(Bytes per_rank) const {
  const CommGroup& last = stages_.back();
  return {last.time(CollectiveOp::all_gather, per_rank * double(last.size())), Bound::communication};
}

}  // namespace servesim
