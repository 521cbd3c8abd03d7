// The facade the step cost model calls: the cost of a collective on one group of GPUs of a topology.
//
// Construction does all the work (NCCL's tuning tables or the link-load plans, routes, ...); cost() / time()
// only evaluate precomputed tables or plans and never allocate. A group of one GPU costs nothing.
// `model` names the collective cost model (models/net/collective_model.h): "nccl" (default, NCCL 2.30.7's tuning
// model) or "link_load" (servesim's link-load plans, models/net/collective.h). `algo` constrains the algorithm
// like NCCL_ALGO ("auto" or one of the model's algorithms); a named algorithm that does not implement an op
// (tree only implements all_reduce) leaves that op unconstrained, while one that cannot run on the group at all
// (nvls without a shared NVSwitch, hierarchical within one node) is an InputError. `proto` constrains the
// protocol like NCCL_PROTO ("auto", LL, LL128, Simple; nccl model only). With a calibration, the time of every
// (op, group size) it measured is multiplied by its size-dependent correction factor
// (models/net/collective_calibration.h); the calibration must have been fitted against the same model, algo and
// proto (CommGroup::model_key()).
#pragma once
#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/common/units.h"
#include "models/net/collective.h"
#include "models/net/collective_model.h"
#include "models/net/topology.h"

namespace servesim {

class CollectiveCalibration;
class CorrectionCurve;

struct CollectiveResult {
  Seconds time{0};
  double algbw_GBps = 0.0;  // S / time, GB = 1e9 bytes
  double busbw_GBps = 0.0;  // algbw * busbw_factor(op, n)
  std::string algo;         // algorithm used ("local" for a group of one GPU)
  std::string protocol;     // NCCL protocol used (LL, LL128, Simple); "" for the link_load model and local groups
};

class CommGroup {
 public:
  // Throws InputError: GPU index out of range (more ranks than GPUs) or repeated, a member without a route to
  // another, an unknown model, algorithm or protocol (listing the valid ones), an algorithm that cannot run on
  // the group, or a calibration fitted against another model / algorithm / protocol.
  CommGroup(std::shared_ptr<const Topology> topo, std::vector<int> gpu_indices, std::string algo = "auto",
            std::shared_ptr<const CollectiveCalibration> cal = nullptr,
            std::string model = std::string(kDefaultCollectiveModel), std::string proto = "auto");
  // "model/algo/proto", e.g. "nccl/auto/auto": what a calibration must have been fitted against.
  [[nodiscard]] static std::string model_key(const std::string& model, const std::string& algo,
                                             const std::string& proto) {
    return model + "/" + algo + "/" + proto;
  }

  [[nodiscard]] CollectiveResult cost(CollectiveOp op, Bytes size) const;
  [[nodiscard]] Seconds time(CollectiveOp op, Bytes size) const;
  // The model without the calibration's correction.
  [[nodiscard]] Seconds analytic_time(CollectiveOp op, Bytes size) const;
  // Name of the algorithm cost() uses for op at this size ("local" for one GPU).
  [[nodiscard]] const std::string& chosen_algo(CollectiveOp op, Bytes size) const;
  // Its NCCL protocol ("" for the link_load model and one GPU).
  [[nodiscard]] const std::string& chosen_protocol(CollectiveOp op, Bytes size) const;

  // An all-to-all (nccl-tests' size S: each rank's send buffer) whose ranks post every send at once from the GPU,
  // as DeepEP's kernels do (GPU-initiated NVLink stores and RDMA writes): every pair's S / n shares the links as in
  // the direct plan, but the whole exchange waits one latency step (the slowest pair's route latency plus
  // step_latency) instead of NCCL's one per peer. The link_load arithmetic whatever `model` is; not calibrated (a
  // collective calibration measures NCCL's kernels).
  [[nodiscard]] Seconds one_shot_all_to_all(Bytes size) const;

  // Point-to-point send of `size` bytes from GPU gpu_a to GPU gpu_b (topology GPU indices): size / bottleneck
  // of the route + route latency + one step_latency; 0 when gpu_a == gpu_b. Pairs inside the group are cached;
  // other pairs are routed on the spot (slower). Not calibrated.
  [[nodiscard]] Seconds p2p_time(int gpu_a, int gpu_b, Bytes size) const;
  // What p2p_time() charges for a pair outside the group routed on `r`: size / bottleneck + latency + step_latency.
  [[nodiscard]] static Seconds route_time(const Route& r, Seconds step_latency, Bytes size);

  [[nodiscard]] int size() const { return static_cast<int>(gpus_.size()); }
  [[nodiscard]] const std::vector<int>& gpus() const { return gpus_; }
  [[nodiscard]] const std::string& algo() const { return algo_; }
  [[nodiscard]] const std::string& model() const { return model_; }
  [[nodiscard]] const std::string& proto() const { return proto_; }
  [[nodiscard]] const Topology& topology() const { return *topo_; }
  // Algorithms (nccl model: "algo/protocol" pairs) the model may pick for op on this group.
  [[nodiscard]] std::vector<std::string> candidates(CollectiveOp op) const;

 private:
  std::shared_ptr<const Topology> topo_;
  std::vector<int> gpus_;
  std::string algo_;
  std::shared_ptr<const CollectiveCalibration> cal_;
  std::string model_;
  std::string proto_;
  std::shared_ptr<const CollectiveCostModel> impl_;  // null for a group of one GPU
  std::array<const CorrectionCurve*, kNumCollectiveOps> curves_{};
  std::vector<std::pair<int, int>> pos_of_gpu_;  // (topology GPU index, group position), sorted by GPU index
  std::vector<double> p2p_sec_per_byte_;  // size*size
  std::vector<double> p2p_latency_;       // size*size, route latency + step latency
  CollectivePhase one_shot_;              // all pairs at once, one step (one_shot_all_to_all)
};

}  // namespace servesim
