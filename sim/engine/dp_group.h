// Data-parallel attention's engines in lockstep: vLLM runs one engine core per data-parallel rank, each with its
// own scheduler, waiting queue, KV cache and engine limits, and every rank's forward pass meets the others' in the
// MoE layers' dispatch and combine, so the ranks step together: a step starts on every rank at once and ends when
// the slowest rank's ends. A rank with nothing scheduled runs a dummy batch in vLLM; here it costs nothing and is not
// reported as a step, so a rank's busy time (and the run's busy fraction, over all ranks) is its time with work of
// its own.
//
// Each rank's time is its own batch costed as one rank of a step of all ranks' tokens (StepTimer::rank_gpu_time:
// its attention and dense layers, the MoE layers' routing and dispatch over every rank's tokens, its sampling) plus
// its engine overhead and jitter; a faster rank's wait for the slowest counts as communication. The group steps
// while any rank has work, and idles (every rank idle, as vLLM's DP wave ends) until a rank receives some.
// In a prefill or decode pool (disaggregated serving) each rank hands over or receives its own requests' KV
// (sim/cluster/kv_handoff.h); the group schedules its step end before launching the ranks, whose launch may start
// KV transfers.
// A replica's shared-network hook (multi-node replicas) sees the step of all ranks' sequences together, which the
// step network re-splits as evenly as the sequences allow (StepModel::busiest_rank), not as the ranks hold them.
#pragma once
#include <cstdint>
#include <vector>

#include "sim/core/simulator.h"
#include "sim/engine/engine.h"

namespace servesim {

class DataParallelGroup final : public EventTarget {
 public:
  // `ranks`: the replica's engines, one per data-parallel rank (not owned; each attach_group()-ed to this group).
  explicit DataParallelGroup(std::vector<Engine*> ranks);
  // A rank has work now: an idle group starts a step after every arrival of this instant.
  void kick(Simulator& sim);
  void on_event(Simulator& sim, std::uint64_t arg) override;
  // Puts the group's inter-node communication on the shared network (not owned).
  void attach_network(StepNetworkHook* h) { network_ = h; }

 private:
  void start(Simulator& sim);
  std::vector<Engine*> ranks_;
  std::vector<Engine*> stepping_;  // the ranks with a batch in the step in flight
  StepNetworkHook* network_ = nullptr;
  BatchShape all_;  // every rank's sequences of the step (for the network hook)
  bool busy_ = false;
  bool start_pending_ = false;
};

}  // namespace servesim
