// The facade the step cost model calls: the cost of a collective on one group of GPUs of a topology.
//
// Construction does all the work (routes, ring orders, link loads: one plan per algorithm and op, see
// models/net/collective.h); cost() / time() only evaluate at most five precomputed plans and never allocate.
// A group of one GPU costs nothing. `algo` is a registered algorithm name or "auto" (the fastest valid plan for
// the size). A named algorithm that does not implement an op (tree only implements all_reduce) falls back to
// "auto" for that op, as NCCL_ALGO only constrains the collectives an algorithm implements; a named algorithm
// that cannot run on the group at all (nvls without a shared NVSwitch, hierarchical within one node) is an
// InputError. With a calibration, the time of every (op, group size) it measured is multiplied by its
// size-dependent correction factor (models/net/collective_calibration.h); the calibration must have been fitted
// against the same `algo`.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "models/common/units.h"
#include "models/net/collective.h"
#include "models/net/topology.h"

namespace servesim {

class CollectiveCalibration;
class CorrectionCurve;

struct CollectiveResult {
  Seconds time{0};
  double algbw_GBps = 0.0;  // S / time, GB = 1e9 bytes
  double busbw_GBps = 0.0;  // algbw * busbw_factor(op, n)
  std::string algo;         // algorithm used ("local" for a group of one GPU)
};

class CommGroup {
 public:
  // Throws InputError: GPU index out of range (more ranks than GPUs) or repeated, a member without a route to
  // another, an unknown algorithm (listing the valid ones), an algorithm that cannot run on the group, or a
  // calibration fitted against another algorithm.
  CommGroup(std::shared_ptr<const Topology> topo, std::vector<int> gpu_indices, std::string algo = "auto",
            std::shared_ptr<const CollectiveCalibration> cal = nullptr);

  [[nodiscard]] CollectiveResult cost(CollectiveOp op, Bytes size) const;
  [[nodiscard]] Seconds time(CollectiveOp op, Bytes size) const;
  // The model without the calibration's correction.
  [[nodiscard]] Seconds analytic_time(CollectiveOp op, Bytes size) const;
  // Name of the algorithm cost() uses for op at this size.
  [[nodiscard]] const std::string& chosen_algo(CollectiveOp op, Bytes size) const;

  // Point-to-point send of `size` bytes from GPU gpu_a to GPU gpu_b (topology GPU indices): size / bottleneck
  // of the route + route latency + one step_latency; 0 when gpu_a == gpu_b. Pairs inside the group are cached;
  // other pairs are routed on the spot (slower). Not calibrated.
  [[nodiscard]] Seconds p2p_time(int gpu_a, int gpu_b, Bytes size) const;

  [[nodiscard]] int size() const { return static_cast<int>(gpus_.size()); }
  [[nodiscard]] const std::vector<int>& gpus() const { return gpus_; }
  [[nodiscard]] const std::string& algo() const { return algo_; }
  [[nodiscard]] const Topology& topology() const { return *topo_; }
  // Algorithms with a plan for op on this group, in preference order.
  [[nodiscard]] std::vector<std::string> candidates(CollectiveOp op) const;

 private:
  struct Candidate {
    std::string name;
    CollectivePlan plan;
  };
  const Candidate* best(CollectiveOp op, Bytes size, Seconds* t) const;

  std::shared_ptr<const Topology> topo_;
  std::vector<int> gpus_;
  std::string algo_;
  std::shared_ptr<const CollectiveCalibration> cal_;
  std::array<std::vector<Candidate>, kNumCollectiveOps> candidates_;
  std::array<const CorrectionCurve*, kNumCollectiveOps> curves_{};
  std::vector<int> pos_of_gpu_;           // topology GPU index -> group position, -1 outside the group
  std::vector<double> p2p_sec_per_byte_;  // size*size
  std::vector<double> p2p_latency_;       // size*size, route latency + step latency
};

}  // namespace servesim
