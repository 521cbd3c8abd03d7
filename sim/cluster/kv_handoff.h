// Disaggregated serving's hand-off: a request's prefill runs on a prefill replica, which samples its first token
// (as vLLM's and Dynamo's P/D connectors do); then its KV cache moves to a decode replica, which decodes the rest.
//
// When a prefill engine hands a request over (Engine::prefill_done), the decode router picks a decode replica. That
// replica must reserve KV blocks for the request's computed tokens before any byte moves (back-pressure: a decode cache
// is never over-committed). When its free blocks do not suffice, the request waits, parked in the prefill engine and
// holding its blocks there, in the decode replica's reservation queue (first come, first served; retried whenever that
// replica frees blocks): its decode_wait. (A prefill engine whose blocks all belong to such parked requests idles until
// one leaves; a decode engine whose FCFS queue is blocked by a preempted request's recompute that cannot fit lets the
// requests received behind it run first: Engine::start_step.) Once reserved, the KV moves: one flow per (sender rank,
// receiver rank) pair of the tensor-parallel split (models/cost/kv_transfer.h), each over the transport chosen for its
// GPU pair (models/net/transport.h: the fastest alone, or the forced one; with [cluster.kv_transfer] profile, a
// measured transport's cost terms are its fit's), all sharing the flow-level network (sim/network/flow_network.h) with
// every other transfer: each starts after its transport's setup (and, host-staged, pipeline fill) and runs at its
// max-min fair rate, capped at what the transport reaches alone. When the last byte has arrived, the prefill engine
// frees the request's blocks and the decode engine queues it to decode: its kv_transfer.
//
// Layer-streamed mode: each layer's KV leaves as soon as the layer is computed. The reservation is tried when the
// step that completes the prompt starts, and if it succeeds the flows start then; the transfer cannot end before
// the prefill step ends plus the last layer's share at the transport's rate alone. Only what is left after the
// first token counts as kv_transfer. A reservation that fails then is retried after the first token as above.
//
// Placement: a replica of TP t, PP p and data-parallel attention d lists its GPUs stage after stage, rank after
// rank: (stage s, DP rank r, TP rank i) is gpus[(s x d + r) x t + i] (KvLayout::gpu). With pipeline parallelism each
// (sender stage, receiver stage) pair whose layers overlap moves those layers' KV (models/cost/kv_transfer.h);
// layer-streamed, the earliest end is set by the last sender stage's last layer. With data-parallel attention a
// request's KV leaves the GPUs of the prefill rank that computed it (its engine) for the decode rank that reserved
// it (the decode replica's rank with the fewest requests, those reserved on their way included, that has the
// blocks).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/arch/model_arch.h"
#include "models/cost/kv_transfer.h"
#include "models/net/topology.h"
#include "models/net/transport.h"
#include "models/net/transport_calibration.h"
#include "sim/cluster/replica.h"
#include "sim/cluster/router.h"
#include "sim/metrics/link_stats_writer.h"
#include "sim/network/flow_network.h"

namespace servesim {

struct KvHandOffConfig {
  ModelArch arch;
  bool layer_streamed = false;
  std::optional<std::string> transport;  // forced transport (registry key); nullopt: the fastest alone
  std::string transport_key = "cluster.kv_transfer.transport";  // named by errors
  // [cluster.kv_transfer] profile's fit (null: none): the cost terms of the transports it measures, applied to
  // every pair's paths by select_transport() as `servesim transfer --profile` applies them.
  std::shared_ptr<const TransportCalibration> calibration;
  // GPU indices of every replica, stage after stage (data-parallel ranks, then TP ranks, in order within a stage),
  // by replica index (prefill and decode replicas alike), and each replica's TP, PP and DP degrees.
  std::vector<std::vector<int>> replica_gpus;
  std::vector<KvLayout> replica_layout;
};

// Counts for the conservation checks and the summary.
struct HandOffCounts {
  std::int64_t handed_off = 0;  // requests that left a prefill engine after their first token
  std::int64_t waiting = 0;     // waiting for decode blocks now
  std::int64_t in_transfer = 0;  // reserved, KV on its way now
  std::int64_t streaming = 0;    // of those, layer-streamed ones whose prefill step has not ended (not handed off yet)
  std::int64_t received = 0;    // arrived at a decode engine
};

class KvHandOff final : public PrefillHandOff, public FlowHandler, public EventTarget {
 public:
  // `decode`: the decode replicas (not owned; the router's view); `topology` and `network` (the run's shared
  // flow-level network over the topology's links, transfer_link_capacities) outlive this.
  KvHandOff(KvHandOffConfig cfg, const Topology& topology, FlowNetwork& network,
            const std::vector<std::unique_ptr<Replica>>& decode, std::unique_ptr<Router> decode_router,
            RunSink& sink);

  // Whether some decode replica could ever hold the request (else it is refused at arrival).
  [[nodiscard]] bool decodable(const Request& r) const;
  // Reports request `r`, routed to prefill replica `replica`, as arrived and refused: no decode replica could
  // ever hold it.
  void refuse(Simulator& sim, const Request& r, std::int32_t replica);

  void prefill_starting(Simulator& sim, Engine& from, Sequence& s, Ns step_end) override;
  void prefill_done(Simulator& sim, Engine& from, Sequence& s) override;
  void kv_freed(Simulator& sim, Engine& e) override;
  void flow_done(Simulator& sim, std::uint64_t tag) override;
  void on_event(Simulator& sim, std::uint64_t arg) override;

  [[nodiscard]] const HandOffCounts& counts() const { return counts_; }
  [[nodiscard]] const FlowNetwork& network() const { return net_; }
  // Told of every change of the network (--link-stats); not owned, may be null.
  void observe_network(LinkStatsSampler* sampler) { sampler_ = sampler; }

 private:
  struct Transfer {
    Engine* from = nullptr;
    Sequence* src = nullptr;
    Engine* to = nullptr;
    Sequence* dst = nullptr;
    std::int32_t decode_replica = 0;
    Ns reserved{0};                // the flows' setup starts
    Ns handed = kNever;            // first token (kNever: the prefill step still runs)
    Ns floor{0};                   // layer-streamed: the earliest end
    Ns data_done = kNever;         // the last flow's last byte
    std::int32_t flows_left = 0;
    double bytes = 0;
    std::vector<FlowDemand> flows;  // started after `delay`
    std::vector<double> flow_bytes;
    std::vector<double> flow_last_layer;  // bytes of the flow's last layer if it leaves the last stage, else 0
    Ns delay{0};
  };
  struct Waiting {
    Engine* from;
    Sequence* src;
    Ns handed;
  };
  [[nodiscard]] std::size_t route(const Sequence& s);
  // Reserves on the decode replica (its engine with the fewest outstanding and incoming requests that has room) and
  // starts the transfer; false when no engine of the replica has room.
  // `tokens`: the KV to reserve and move (the prompt).
  bool try_start(Simulator& sim, Engine& from, Sequence& s, std::size_t decode_replica, Ns handed,
                 std::int64_t tokens);
  void maybe_finish(Simulator& sim, std::uint32_t slot);
  // The transport paths that can carry GPU src -> dst (the forced one only when forced), computed once per pair.
  const std::vector<TransportPath>& paths(int src, int dst);

  KvHandOffConfig cfg_;
  const Topology& topo_;
  const std::vector<std::unique_ptr<Replica>>& decode_;
  std::unique_ptr<Router> router_;
  RunSink& sink_;
  FlowNetwork& net_;
  std::vector<Transfer> transfers_;
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<const Sequence*, std::uint32_t> streaming_;  // layer-streamed transfers before the first token
  std::vector<std::deque<Waiting>> waiting_;                      // per decode replica (position in decode_)
  std::unordered_map<const Engine*, std::size_t> decode_pos_;
  std::map<std::pair<int, int>, std::vector<TransportPath>> paths_;
  HandOffCounts counts_;
  LinkStatsSampler* sampler_ = nullptr;
};

}  // namespace servesim
