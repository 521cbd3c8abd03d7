// Admission control at the cluster's entry: caps on queued requests, after SGLang's server argument
// --max-queued-requests (max_queued_requests: a server whose waiting queue is full refuses a new request instead of
// queueing it; default: no cap). vLLM has no such cap: without these keys nothing is refused for queue length.
//
//   [cluster.admission]
//   max_queued_requests = 64          # per replica: a request routed to a replica with this many queued is refused
//   max_total_queued_requests = 256   # over the replicas that take arrivals: refused before it is routed
//
// Queued: in a waiting queue (ReplicaLoad::waiting, summed over a replica's micro-batch engines): admitted and not
// yet scheduled, or preempted and waiting again, as SGLang's scheduler counts its waiting_queue. A request still in
// the front end (ready after [engine.front_end]) is not queued yet.
//
// At each arrival, in order: the total cap (a refused request reaches no replica and leaves the router's state as
// it was), the router's choice, the replica cap, then the engine's own checks (max_model_len, KV cache). Routers
// do not skip a full replica: as with SGLang, each server applies its own cap and the router in front of it does not
// see it (a load-aware router avoids full replicas as far as its measure tracks their queues).
// Refused requests are counted by reason (sim/metrics/sink.h RejectReason): queue_full (the replica cap) and
// global_queue_full (the total cap), in summary.json's servesim.rejected_by_reason and the printed summary.
// With prefill and decode pools the caps apply where requests arrive: the prefill replicas and their router; a
// request handed over to a decode replica is never refused (decode back-pressure is the hand-off's, kv_handoff.h).
#pragma once
#include <cstdint>
#include <optional>

#include "models/common/config.h"

namespace servesim {

struct AdmissionLimits {
  std::optional<std::int64_t> max_queued_requests;        // per replica (nullopt: no cap)
  std::optional<std::int64_t> max_total_queued_requests;  // over the replicas that take arrivals (nullopt: no cap)
};

// Reads the [cluster.admission] table `admission` (absent or empty: no caps). Each key is a positive integer;
// anything else (0, negative, fractional, not a number) throws InputError naming file:line and the key.
[[nodiscard]] AdmissionLimits read_admission(const Config& admission);

}  // namespace servesim
