// The step model's communication (GroupComm) on a topology: the tensor-parallel all-reduces of every pipeline
// stage on its own GPU group (CommGroup, calibrated when a collective profile is given) and the activation sends
// between the first GPUs of consecutive stages.
#pragma once
#include <memory>
#include <vector>

#include "models/cost/step_model.h"
#include "models/net/comm_group.h"

namespace servesim {

class TopologyComm final : public GroupComm {
 public:
  // `gpus` holds tensor x pipeline topology GPU indices, stage by stage. `algo`, `model`, `proto`: CommGroup's.
  TopologyComm(std::shared_ptr<const Topology> topo, const std::vector<int>& gpus, const ParallelConfig& parallel,
               const std::string& algo, std::shared_ptr<const CollectiveCalibration> cal,
               const std::string& model = std::string(kDefaultCollectiveModel), const std::string& proto = "auto");
  [[nodiscard]] OpCost all_reduce(Bytes bytes) const override;
  [[nodiscard]] OpCost send_recv(Bytes bytes) const override;
  // As an all-gather of the last stage's group (the root receives (t - 1) x per_rank bytes either way).
  [[nodiscard]] OpCost gather(Bytes per_rank) const override;
  [[nodiscard]] const CommGroup& tensor_group(std::size_t stage = 0) const { return stages_.at(stage); }

 private:
  std::vector<CommGroup> stages_;
  std::vector<std::pair<int, int>> boundaries_;  // (last stage's first GPU, next stage's first GPU)
};

}  // namespace servesim
