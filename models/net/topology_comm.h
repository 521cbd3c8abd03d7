// The step model's communication (GroupComm) on a topology: the tensor-parallel all-reduces of a stage on its
// GPU group (CommGroup, calibrated when a collective profile is given) and pipeline sends between the first
// GPUs of consecutive stages.
#pragma once
#include <memory>
#include <vector>

#include "models/cost/step_model.h"
#include "models/net/comm_group.h"

namespace servesim {

class TopologyComm final : public GroupComm {
 public:
  // `gpus` holds tensor x pipeline topology GPU indices, stage by stage.
  TopologyComm(std::shared_ptr<const Topology> topo, const std::vector<int>& gpus, const ParallelConfig& parallel,
               const std::string& algo, std::shared_ptr<const CollectiveCalibration> cal);
  [[nodiscard]] OpCost all_reduce(Bytes bytes) const override;
  [[nodiscard]] OpCost send_recv(Bytes bytes) const override;
  [[nodiscard]] const CommGroup& tensor_group() const { return tp_; }

 private:
  CommGroup tp_;
  int from_ = 0;  // first GPU of stage 0 and stage 1 (pipeline sends)
  int to_ = 0;
};

}  // namespace servesim
