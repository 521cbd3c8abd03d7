// The step model's communication (GroupComm) on a topology: the tensor-parallel all-reduces of every pipeline
// stage on its own GPU group (CommGroup, calibrated when a collective profile is given) and the activation sends
// between the first GPUs of consecutive stages.
#pragma once
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "models/cost/step_model.h"
#include "models/net/comm_group.h"

namespace servesim {

class TopologyComm final : public GroupComm {
 public:
  // `gpus` holds tensor x data x pipeline topology GPU indices, stage by stage (within a stage, data-parallel group
  // after group, each of `tensor` GPUs). `algo`, `model`, `proto`: CommGroup's. The tensor-parallel collectives of
  // a stage are costed on its first group (every group has the same shape in a catalogue topology); the
  // expert-parallel all-to-all (data > 1) on all of the stage's GPUs.
  TopologyComm(std::shared_ptr<const Topology> topo, const std::vector<int>& gpus, const ParallelConfig& parallel,
               const std::string& algo, std::shared_ptr<const CollectiveCalibration> cal,
               const std::string& model = std::string(kDefaultCollectiveModel), const std::string& proto = "auto");
  [[nodiscard]] OpCost all_reduce(Bytes bytes) const override;
  [[nodiscard]] OpCost send_recv(Bytes bytes) const override;
  // As an all-gather of the last stage's group (the root receives (t - 1) x per_rank bytes either way).
  [[nodiscard]] OpCost gather(Bytes per_rank) const override;
  // On the stage's tensor-parallel group (mean over stages, as all_reduce).
  [[nodiscard]] OpCost all_gather(Bytes size) const override;
  // Expert-parallel dispatch / combine (data-parallel attention): `op` over the stage's tensor x data GPUs, or over
  // each of its nodes' or rails' GPUs (the slowest group), mean over stages as all_reduce. Node and rail scopes
  // exist when every stage's GPUs split into equal contiguous blocks per node; otherwise both are the whole group.
  // `one_shot` (all_to_all only, else std::logic_error): CommGroup::one_shot_all_to_all.
  [[nodiscard]] OpCost expert_collective(CollectiveOp op, Bytes size, ExpertScope scope,
                                         bool one_shot) const override;
  [[nodiscard]] std::int64_t expert_nodes() const override { return expert_nodes_; }
  [[nodiscard]] const CommGroup& tensor_group(std::size_t stage = 0) const { return stages_.at(stage); }

 private:
  std::vector<CommGroup> stages_;
  std::vector<CommGroup> expert_stages_;  // per stage, all its GPUs (data-parallel attention only)
  std::vector<std::vector<CommGroup>> expert_nodes_groups_;  // per stage, one group per node (when they split evenly)
  std::vector<std::vector<CommGroup>> expert_rails_;         // per stage, one group per local index
  std::int64_t expert_nodes_ = 1;
  void add_expert_tiers(const std::shared_ptr<const Topology>& topo, const std::vector<int>& all,
                        const std::string& algo, const std::shared_ptr<const CollectiveCalibration>& cal,
                        const std::string& model, const std::string& proto);
  std::vector<std::pair<int, int>> boundaries_;  // (last stage's first GPU, next stage's first GPU)
  // Per boundary, its route when its GPUs are not both in the first stage's group (nullopt: p2p_time's own).
  std::vector<std::optional<Route>> boundary_routes_;
};

}  // namespace servesim
