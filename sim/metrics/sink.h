// What happens in a run, as it happens: the observer interface components report to (an engine reports its
// requests and steps; a KV transfer its start and end). The Recorder (sim/metrics/recorder.h) is one
// implementation; trace and time-series writers are others. Every method has an empty default, so a sink
// overrides only what it uses. Calls come in simulated-time order (non-decreasing `t`), from one thread.
//
// Times are simulated ns since the run's start (Ns); token counts are counts; model times are seconds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/common/units.h"
#include "sim/workload/request.h"

namespace servesim {

// Why a request was refused at admission (summary.json "rejected_by_reason", the summary's text).
enum class RejectReason : std::uint8_t {
  exceeds_max_model_len,  // prompt + output tokens > engine.max_model_len (vLLM refuses it)
  exceeds_kv_cache,       // its KV (prompt + output - 1 tokens) needs more blocks than the engine's whole cache
  queue_full,             // its replica's waiting queue was at [cluster.admission] max_queued_requests
  global_queue_full,      // the replicas' waiting queues held [cluster.admission] max_total_queued_requests
};
inline constexpr std::size_t kNumRejectReasons = 4;
[[nodiscard]] const char* reject_reason_name(RejectReason r);

// One finished request: what requests.csv and summary.json need of it. Times are simulated ns since the run's
// start; tokens are counts.
//
// Where its time went (exact, integer ns). Every instant between arrival and finish belongs to one component:
//   front end      arrival -> ready                               (HTTP, tokenization)
//   queue          ready -> first_scheduled                       (waiting for its first step)
//   prefill        steps that computed its prompt chunks          (the first time)
//   prefill stall  between its chunks while other steps ran       (derived: the rest before the first token)
//   preempted      after a preemption: waiting again + the steps that recompute what was lost, until its KV is
//                  back where it was (split at the first token: prefill_preempted before, decode_preempted after)
//   decode         steps that produced its tokens after the first
//   decode stall   while running, steps it took no part in         (derived: the rest after the first token)
// so TTFT = front_end + queue + prefill + prefill_stall + prefill_preempted and
//    E2E  = TTFT + decode + decode_stall + decode_preempted.
// A step's time is its whole duration (a mixed batch counts fully to each sequence in it).
// Of the steps it took part in, the modeled time by kind (ns, summed over those steps): GPU operators bound by
// compute, by memory bandwidth, communication (TP/EP collectives, PP sends), and the engine's CPU overhead.
struct RequestRecord {
  std::uint64_t id = 0;
  std::int32_t replica = 0;
  std::int32_t preemptions = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t output_tokens = 0;
  Ns arrival{0};
  Ns ready{0};  // entered the engine's waiting queue (after the front end)
  Ns first_scheduled{0};
  Ns first_token{0};
  Ns finish{0};
  Ns prefill{0};
  Ns prefill_preempted{0};
  Ns decode{0};
  Ns decode_preempted{0};
  Ns step_compute{0};
  Ns step_memory{0};
  Ns step_communication{0};
  Ns step_overhead{0};
  // Disaggregated serving: the replica that ran the prefill (`replica` ran the decode; equal when aggregated),
  // the wait for the decode replica's KV blocks after the first token, and the KV transfer itself.
  std::int32_t prefill_replica = 0;
  Ns decode_wait{0};
  Ns kv_transfer{0};
  // Prefix caching: its prompt tokens found cached when it was first scheduled (vLLM's num_cached_tokens); -1 when
  // it was never looked up (caching off, or a request whose content is unknown).
  std::int64_t cached_tokens = -1;
  // Data-parallel attention: the rank of its replica that finished it (the engine of its lockstep group; 0 without
  // data parallelism).
  std::int32_t dp_rank = 0;

  [[nodiscard]] Ns front_end() const { return ready - arrival; }
  [[nodiscard]] Ns queue() const { return first_scheduled - ready; }
  [[nodiscard]] Ns prefill_stall() const { return first_token - first_scheduled - prefill - prefill_preempted; }
  [[nodiscard]] Ns decode_stall() const {
    return finish - first_token - decode - decode_preempted - decode_wait - kv_transfer;
  }
  [[nodiscard]] Ns preempted() const { return prefill_preempted + decode_preempted; }
  friend bool operator==(const RequestRecord&, const RequestRecord&) = default;
};

// One engine step. The duration is known when it starts (end - start); with pipeline parallelism it includes
// waiting for busy stages. The modeled times by kind (seconds) sum to the step's modeled time (GPU + overhead,
// before jitter and pipeline waits).
struct StepEvent {
  std::int32_t replica = 0;
  std::int32_t engine = 0;  // micro-batch engine within the replica (pipeline parallelism), else 0
  Ns start{0};
  Ns end{0};
  std::int64_t prefill_tokens = 0;  // prompt tokens computed (chunks)
  std::int64_t prefill_seqs = 0;    // sequences with a prefill chunk
  std::int64_t decode_seqs = 0;     // sequences decoding one token
  std::int64_t preempted = 0;       // sequences preempted when this step was scheduled
  std::int64_t waiting = 0;         // the engine's waiting queue after scheduling
  std::int64_t running = 0;         // running sequences after scheduling
  std::int64_t kv_used_blocks = 0;  // KV blocks in use after scheduling
  std::int64_t kv_blocks = 0;       // usable KV blocks of the engine
  double compute_s = 0;
  double memory_s = 0;
  double communication_s = 0;
  double overhead_s = 0;
  [[nodiscard]] std::int64_t num_seqs() const { return prefill_seqs + decode_seqs; }
  [[nodiscard]] std::int64_t total_tokens() const { return prefill_tokens + decode_seqs; }
};

// A point-to-point KV-cache transfer between two replicas (disaggregated serving): one request's KV, all pairs
// of GPUs together, from the start of its setup to the last byte.
struct TransferEvent {
  std::uint64_t request = 0;
  std::int32_t from_replica = 0;
  std::int32_t to_replica = 0;
  double bytes = 0;
  Ns start{0};
  Ns end{0};
};

class RunSink {
 public:
  virtual ~RunSink() = default;
  // Request `r` arrived and was routed to `replica`.
  virtual void arrived(Ns /*t*/, const Request& /*r*/, std::int32_t /*replica*/) {}
  // Refused at admission; `detail()` describes it in words (call it only when needed: it builds a string).
  virtual void rejected(Ns /*t*/, std::uint64_t /*id*/, RejectReason /*why*/,
                        const std::function<std::string()>& /*detail*/) {}
  // Entered the engine's waiting queue after the front end; `waiting`: the queue's length now.
  virtual void queued(Ns /*t*/, std::uint64_t /*id*/, std::int32_t /*replica*/, std::int32_t /*engine*/,
                      std::int64_t /*waiting*/) {}
  // Scheduled into a step for the first time, or again after a preemption.
  virtual void scheduled(Ns /*t*/, std::uint64_t /*id*/, std::int32_t /*replica*/, std::int32_t /*engine*/) {}
  // A step ended in which it computed a prompt chunk; `computed`: its tokens now in the KV cache.
  virtual void chunk_done(Ns /*t*/, std::uint64_t /*id*/, std::int64_t /*computed*/) {}
  // Preempted (recompute): its KV blocks freed, back in the waiting queue.
  virtual void preempted(Ns /*t*/, std::uint64_t /*id*/, std::int32_t /*replica*/, std::int32_t /*engine*/) {}
  // token() is called for every output token only when some sink wants them (it is per token).
  [[nodiscard]] virtual bool wants_tokens() const { return false; }
  virtual void token(Ns /*t*/, std::uint64_t /*id*/) {}
  // One inter-token gap counted in the ITL statistics (with a horizon, a request's gaps arrive when it finishes).
  virtual void inter_token(Ns /*gap*/) {}
  virtual void finished(const RequestRecord& /*r*/) {}
  virtual void step_started(const StepEvent& /*s*/) {}
  virtual void step_ended(const StepEvent& /*s*/) {}
  virtual void transfer_started(const TransferEvent& /*x*/) {}
  virtual void transfer_ended(const TransferEvent& /*x*/) {}
};

// Forwards every call to each of `sinks`, in order (none owned). Construct it once the sinks are configured:
// wants_tokens() is fixed then.
class SinkFanout final : public RunSink {
 public:
  explicit SinkFanout(std::vector<RunSink*> sinks);
  void arrived(Ns t, const Request& r, std::int32_t replica) override;
  void rejected(Ns t, std::uint64_t id, RejectReason why, const std::function<std::string()>& detail) override;
  void queued(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine, std::int64_t waiting) override;
  void scheduled(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine) override;
  void chunk_done(Ns t, std::uint64_t id, std::int64_t computed) override;
  void preempted(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine) override;
  [[nodiscard]] bool wants_tokens() const override { return wants_tokens_; }
  void token(Ns t, std::uint64_t id) override;
  void inter_token(Ns gap) override;
  void finished(const RequestRecord& r) override;
  void step_started(const StepEvent& s) override;
  void step_ended(const StepEvent& s) override;
  void transfer_started(const TransferEvent& x) override;
  void transfer_ended(const TransferEvent& x) override;

 private:
  std::vector<RunSink*> sinks_;
  bool wants_tokens_ = false;
};

}  // namespace servesim
