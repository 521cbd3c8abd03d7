#include "models/net/topology_comm.h"

namespace servesim {

TopologyComm::TopologyComm(std::shared_ptr<const Topology> topo, const std::vector<int>& gpus,
                           const ParallelConfig& parallel, const std::string& algo,
                           std::shared_ptr<const CollectiveCalibration> cal)
    : tp_(topo, std::vector<int>(gpus.begin(), gpus.begin() + parallel.tensor), algo, std::move(cal)) {
  from_ = gpus.front();
  to_ = parallel.pipeline > 1 ? gpus.at(static_cast<std::size_t>(parallel.tensor)) : from_;
}

OpCost TopologyComm::all_reduce(Bytes bytes) const {
  return {tp_.time(CollectiveOp::all_reduce, bytes), Bound::communication};
}

OpCost TopologyComm::send_recv(Bytes bytes) const {
  return {tp_.p2p_time(from_, to_, bytes), Bound::communication};
}

}  // namespace servesim
