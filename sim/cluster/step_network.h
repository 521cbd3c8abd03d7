// Replicas whose collectives or pipeline sends cross nodes, on the run's shared flow-level network: their steps'
// inter-node traffic and the KV transfers of disaggregated serving share the NICs and fabric links at max-min
// fair rates (sim/network/flow_network.h), so each slows the other.
//
// Each step of such a replica starts one flow per GPU pair on different nodes that its operators connect
// (models/net/step_traffic.h: all-reduce ring edges, all-to-all pairs, the logits gather, pipeline sends), carrying
// that pair's bytes of the step, capped at the rate that moves them in the time the step model gives those
// operators alone (their bytes over that time; scaled down together when the step's own flows would overfill a
// link, and the time alone scaled up to match). Alone, every flow then gets its cap and the step keeps the step
// model's time. With other flows on a link a flow gets its max-min fair share instead, and the step's
// communication takes longer by
//     extra = max over its flows of (bytes / rate at the step's start) - time alone   (>= 0),
// added to the step's communication time (its end, summary.json's communication, the requests' step_communication).
// The approximation: a step's flows are timed at the rates they get when the step starts (later starts and ends of
// other flows change their rates in the network, but not the step's end, which is fixed when it starts); the flows
// then run to their end and load the links for every other flow. The step's traffic is spread evenly over its
// communication time (the per-layer bursts of a real step are not resolved).
//
// Counts for the summary: steps on the network, steps slowed by contention, flows started, and the time added.
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/cost/step_model.h"
#include "models/net/step_traffic.h"
#include "sim/engine/engine.h"
#include "sim/metrics/link_stats_writer.h"
#include "sim/network/flow_network.h"

namespace servesim {

struct StepNetworkCounts {
  std::int64_t replicas = 0;  // replicas on the network
  std::int64_t steps = 0;     // their steps
  std::int64_t slowed = 0;    // steps whose communication contention lengthened
  std::int64_t flows = 0;     // flows started
  Ns extra{0};                // time added to the steps, summed
};

class StepNetwork final : public StepNetworkHook, public FlowHandler {
 public:
  // `net` outlives this.
  explicit StepNetwork(FlowNetwork& net) : net_(net) {}

  // Puts replica `replica` on the network: `model` times its steps, `traffic` (spans_nodes()) places them. Its
  // engines must then be attached (Engine::attach_network(this)). Throws std::logic_error for a replica added twice.
  void add_replica(std::int32_t replica, std::shared_ptr<const StepModel> model, StepTraffic traffic);

  Ns step_started(Simulator& sim, const Engine& e, const BatchShape& batch) override;
  void flow_done(Simulator& sim, std::uint64_t tag) override;

  // Told of every change of the network (--link-stats); not owned, may be null.
  void observe_network(LinkStatsSampler* sampler) { sampler_ = sampler; }
  [[nodiscard]] const StepNetworkCounts& counts() const { return counts_; }

 private:
  // One step's flows, worked out once per PlanKey: the operators that cross nodes depend on nothing else.
  struct PlanKey {
    bool decodes_only = false;
    std::int64_t tokens = 0, sampled = 0, rank_tokens = 0;  // rank_tokens: the busiest data-parallel rank's
    bool operator==(const PlanKey&) const = default;
  };
  struct PlanKeyHash {
    std::size_t operator()(const PlanKey& k) const {
      std::uint64_t h = static_cast<std::uint64_t>(k.tokens) * 0x9E3779B97F4A7C15ULL;
      h ^= static_cast<std::uint64_t>(k.sampled) * 0xC2B2AE3D27D4EB4FULL;
      h ^= static_cast<std::uint64_t>(k.rank_tokens) * 0x165667B19E3779F9ULL;
      return static_cast<std::size_t>(h ^ (k.decodes_only ? 0x27D4EB2F165667C5ULL : 0));
    }
  };
  struct Plan {
    std::vector<std::pair<std::size_t, double>> flows;  // (pair, bytes)
    std::vector<double> caps;                           // bytes per second, per flow
    double alone = 0;                                   // seconds: every flow's time alone
  };
  struct Entry {
    std::shared_ptr<const StepModel> model;
    StepTraffic traffic;
    std::unordered_map<PlanKey, Plan, PlanKeyHash> plans;
  };
  const Plan& plan(Entry& e, const BatchShape& batch);

  FlowNetwork& net_;
  std::unordered_map<std::int32_t, Entry> replicas_;
  StepNetworkCounts counts_;
  LinkStatsSampler* sampler_ = nullptr;
  std::vector<FlowId> ids_;  // scratch
};

}  // namespace servesim
