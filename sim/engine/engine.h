// One engine (vLLM's EngineCore; with pipeline parallelism, one of a replica's virtual engines): a front end, a
// waiting queue, a scheduler, a paged KV cache and a step loop. The replica that owns it (sim/cluster/replica.h)
// decides which of its engines a request enters. A step runs the scheduler's batch for the time the StepModel predicts; at its end
// every sequence whose tokens are all computed samples one token. Everything that happens is reported to a
// RunSink (sim/metrics/sink.h), including each request's exact time breakdown.
#pragma once
#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "models/cost/step_timer.h"
#include "sim/core/simulator.h"
#include "sim/engine/decode_stretch.h"
#include "sim/engine/kv_cache.h"
#include "sim/engine/pipeline.h"
#include "sim/engine/scheduler.h"
#include "sim/engine/step_jitter.h"
#include "sim/metrics/recorder.h"
#include "sim/metrics/sink.h"

namespace servesim {

// Time between a request's arrival and its entry into the engine's waiting queue (HTTP, tokenization).
struct FrontEnd {
  Seconds fixed{0.0};
  Seconds per_prompt_token{0.0};
  [[nodiscard]] Ns delay(std::int64_t prompt_tokens) const {
    return to_ns(fixed + per_prompt_token * double(prompt_tokens));
  }
};

struct EngineConfig {
  SchedulerLimits limits;
  FrontEnd front_end;
  std::int64_t num_kv_blocks = 0;  // this engine's pool as vLLM counts it (num_gpu_blocks): one is the null block
  std::int64_t block_size = 16;
  bool enable_prefix_caching = true;  // vLLM's enable_prefix_caching (sim/engine/kv_cache.h); on as in vLLM v1
  // vLLM's hybrid KV cache manager for models mixing full and sliding-window layers (sim/engine/kv_cache.h
  // KvGroups); false = vLLM's disable_hybrid_kv_cache_manager (every layer's KV held as full attention).
  bool hybrid_kv_cache = true;
  // A data-parallel replica scheduled as one engine over its ranks' pools (calibrate trace's step matcher): one
  // rank's pool as vLLM counts it (num_gpu_blocks, its null block included), which bounds one sequence; 0 = the
  // whole pool (num_kv_blocks). A run gives each rank an engine of its own instead (sim/engine/dp_group.h).
  std::int64_t kv_blocks_per_rank = 0;
  std::int64_t max_model_len = 0;  // prompt + output longer than this is rejected, as vLLM does
  // Record a request's inter-token gaps only when it finishes (a run with a horizon leaves some unfinished, and
  // vLLM's ITL counts finished requests only).
  bool defer_itl = false;
  // Keep the sequences decoding at the front of the running queue as a decode stretch, without the scheduler and
  // without visiting each of them every step (sim/engine/decode_stretch.h); false plans every step whole with the
  // scheduler. Same outputs either way ([sim] decode_stretch; tests/unit/test_decode_stretch.cpp checks it).
  bool decode_stretch = true;
  // Step-time variability (off unless the scenario has [engine.jitter]); each engine samples it from the stream
  // "step_jitter/<replica>/<engine>" of `seed`.
  StepJitterSpec jitter;
  std::uint64_t seed = 0;
  std::int32_t engine = 0;  // this engine's index among its replica's micro-batch engines
};

// One engine's books at a moment (the end-of-run invariant, sim/cluster/cluster.h check_run_accounting).
struct EngineAccount {
  std::int32_t replica = 0;
  std::int32_t engine = 0;
  std::int64_t kv_blocks = 0;    // usable blocks of the pool
  std::int64_t kv_free = 0;      // free blocks
  std::int64_t kv_held = 0;      // blocks held by the engine's sequences (running or waiting)
  std::int64_t outstanding = 0;  // admitted and unfinished, as counted at admission and finish
  std::int64_t queued = 0;       // sequences in the front end, the waiting queue or running
};

class Engine;

// The other side of an engine in disaggregated serving (sim/cluster/kv_handoff.h implements it). A prefill engine
// hands each request over after its first token; a decode engine says when it freed KV blocks (a reservation
// waiting for them may now fit).
class PrefillHandOff {
 public:
  virtual ~PrefillHandOff() = default;
  // Prefill engine: the step that computes the rest of `s`'s prompt starts now and ends at `step_end` (a
  // layer-streamed transfer starts here).
  virtual void prefill_starting(Simulator& sim, Engine& from, Sequence& s, Ns step_end) = 0;
  // Prefill engine: `s` sampled its first token now and left the running batch. It stays parked in `from`,
  // holding its KV blocks, until from.release_handed_off(sim, &s).
  virtual void prefill_done(Simulator& sim, Engine& from, Sequence& s) = 0;
  // Decode engine `e` finished requests now and freed their KV blocks.
  virtual void kv_freed(Simulator& sim, Engine& e) = 0;
};

// A replica whose collectives or pipeline sends cross nodes, on the run's shared flow-level network
// (sim/cluster/step_network.h implements it).
class StepNetworkHook {
 public:
  virtual ~StepNetworkHook() = default;
  // Engine `e`'s step with `batch` starts now: starts the step's inter-node flows and returns the time they take
  // beyond what the step model gave them alone (>= 0: the contention), which the step's communication gains.
  virtual Ns step_started(Simulator& sim, const Engine& e, const BatchShape& batch) = 0;
};

enum class EngineRole { aggregated, prefill, decode };

class DataParallelGroup;

class Engine final : public EventTarget {
 public:
  // `replica`: the owning replica's index (reported with every event); `pipeline`: the stages this engine shares
  // with the other micro-batch engines of its replica (nullptr without pipeline parallelism).
  Engine(std::int32_t replica, std::shared_ptr<const StepModel> model, std::unique_ptr<Scheduler> scheduler,
          const EngineConfig& cfg, RunSink& sink, std::shared_ptr<PipelineStages> pipeline = nullptr);

  // A request arrives at this engine now.
  void submit(Simulator& sim, const Request& r);
  void on_event(Simulator& sim, std::uint64_t arg) override;

  [[nodiscard]] std::int32_t replica() const { return replica_; }
  [[nodiscard]] std::int32_t index() const { return cfg_.engine; }
  // Sequences admitted and not finished (the router's load signal).
  [[nodiscard]] std::int64_t outstanding() const { return outstanding_; }
  [[nodiscard]] std::int64_t waiting() const { return static_cast<std::int64_t>(waiting_.size()); }
  [[nodiscard]] std::int64_t running() const { return static_cast<std::int64_t>(running_.size()); }
  // Admitted requests still in the front end (not yet queued).
  [[nodiscard]] std::int64_t in_front_end() const { return in_front_end_; }
  // Decode engine: sequences reserved here whose KV is still on its way (not outstanding yet).
  [[nodiscard]] std::int64_t incoming() const { return static_cast<std::int64_t>(incoming_.size()); }
  [[nodiscard]] const KvCacheManager& kv() const { return kv_; }
  [[nodiscard]] EngineAccount account() const;

  // Disaggregated serving. A prefill engine hands requests that need more than one token to `h` after their
  // first token; a decode engine tells `h` when it frees blocks. Without a hand-off an engine is aggregated.
  void attach(PrefillHandOff* h, EngineRole role) {
    handoff_ = h;
    role_ = role;
    if (role == EngineRole::decode) kv_.disable_prefix_caching();  // its KV arrives; it never looks it up
  }
  [[nodiscard]] EngineRole role() const { return role_; }
  // Puts this engine's inter-node communication on the shared network (not owned). Every step then goes through
  // the scheduler (no decode stretch: each step's flows depend on the network at its start).
  void attach_network(StepNetworkHook* h) {
    network_ = h;
    cfg_.decode_stretch = false;
  }
  // Data-parallel attention: this engine is one rank of `g` (not owned), which starts every rank's steps together
  // and ends them together (sim/engine/dp_group.h). Every step then goes through the scheduler (no decode stretch).
  void attach_group(DataParallelGroup* g) {
    group_ = g;
    cfg_.decode_stretch = false;
  }
  // A group's step, in three calls at its start: plan_step() schedules this rank's batch (false: nothing to run,
  // the engine stays idle); time_rank_step() times it as one rank of the group's step (StepTimer::GroupStep);
  // join_group_step() sets its end to the group's (the slowest rank's), the wait counted as communication; then
  // launch_step() reports it. At the group step's end, end_step() ends it without starting another.
  [[nodiscard]] bool plan_step(Simulator& sim);
  void time_rank_step(Ns now, const StepTimer::GroupStep& group);
  void join_group_step(Ns end);
  void lengthen_step(Ns extra);  // e.g. by the shared network's contention
  void launch_step(Simulator& sim);
  void end_step(Simulator& sim);
  // The batch planned by plan_step() and its timed end (after time_rank_step()).
  [[nodiscard]] const BatchShape& batch() const { return batch_; }
  [[nodiscard]] Ns step_end() const { return step_.end; }
  // Time spent in steps so far (steps already started count whole).
  [[nodiscard]] Ns busy_time() const { return busy_time_; }
  // Prefill engine: frees a parked sequence (its KV has arrived at the decode replica); the request leaves.
  void release_handed_off(Simulator& sim, Sequence* s);
  // Decode engine: allocates KV blocks for `tokens` tokens of `from` (its prompt) and returns this engine's copy
  // of the sequence, to be received once its KV has arrived; nullptr (nothing allocated) when the free blocks do
  // not suffice. can_ever_hold() tells whether it could ever fit.
  [[nodiscard]] Sequence* reserve(const Sequence& from, std::int64_t tokens);
  [[nodiscard]] bool can_ever_hold(const Request& r) const {
    return kv_.can_ever_fit(r.prompt_tokens + r.output_tokens - 1);
  }
  // Decode engine: a reserved sequence's KV has arrived now; it joins the waiting queue to decode.
  void receive(Simulator& sim, Sequence* s);

 private:
  void enqueue(Simulator& sim, Sequence* s);
  // The step loop. start_step plans a step with the scheduler and starts it; end_step ends the step in flight (now)
  // and starts the next; next_step_inline then lets the clock jump to the new step's end when nothing else comes
  // first (Simulator::advance_inline), else schedules its end event. A prefill engine schedules its step ends
  // itself, before the hand-offs they start.
  void start_step(Simulator& sim);
  [[nodiscard]] bool next_step_inline(Simulator& sim);
  // A decode stretch (sim/engine/decode_stretch.h): the running sequences at the front that decode one token
  // every step. At a step's start they get their tokens and blocks here and the scheduler plans the rest of the
  // step after them (Scheduler::schedules_after_decodes); at its end their running totals advance, the members that
  // sampled their last token leave (settled), and the running sequences right behind them that sampled a token and
  // decode next join. Same calls to the sinks, same times as planning every step whole. start_stretch_step
  // allocates the members' blocks and returns how many they are (0: no stretch, or it ended here, settled).
  [[nodiscard]] std::size_t start_stretch_step();
  void end_members(Ns now, bool tokens_wanted, bool& any_done);
  // `s` sampled its last token now: it frees its blocks and leaves with its record.
  void finish(Sequence& s, Ns now);
  // A stretch ends (and starts again) after this many steps with deferred inter-token gaps kept (memory bound).
  static constexpr std::size_t kMaxKeptGaps = std::size_t{1} << 16;
  Sequence* allocate(const Request& r);
  // Sets the step's duration and its modeled time by kind in step_ (time_parts: from its GPU time).
  void time_step(Ns now);
  void time_parts(Ns now, Seconds gpu, const BoundTimes& bounds);
  [[nodiscard]] RequestRecord record_of(const Sequence& s, Ns now) const;

  std::int32_t replica_;
  std::shared_ptr<const StepModel> model_;
  StepTimer timer_;
  std::optional<StepJitter> jitter_;
  std::unique_ptr<Scheduler> scheduler_;
  std::shared_ptr<PipelineStages> pipeline_;
  EngineConfig cfg_;
  RunSink& sink_;
  Recorder* recorder_ = nullptr;  // sink_ when it is the Recorder alone: per-token calls without a virtual call
  void inter_token(Ns gap) {
    if (recorder_ != nullptr) {
      recorder_->add_gap(gap);
    } else {
      sink_.inter_token(gap);
    }
  }
  KvCacheManager kv_;
  std::vector<Sequence*> running_;
  std::deque<Sequence*> waiting_;
  StepPlan plan_;
  BatchShape batch_;
  std::deque<Sequence> pool_;  // pointer-stable storage
  std::vector<Sequence*> free_;
  StepEvent step_;                           // the step in progress
  std::array<std::int64_t, 4> step_kinds_{};  // its modeled ns by kind (Sequence::step_kinds order)
  bool busy_ = false;
  bool start_pending_ = false;
  std::int64_t outstanding_ = 0;
  std::int64_t in_front_end_ = 0;  // admitted, their ready event still pending
  void kick(Simulator& sim);       // an idle engine with work starts a step (after this instant's arrivals)
  PrefillHandOff* handoff_ = nullptr;
  StepNetworkHook* network_ = nullptr;
  DataParallelGroup* group_ = nullptr;
  EngineRole role_ = EngineRole::aggregated;
  Ns busy_time_{0};
  std::vector<Sequence*> parked_;    // prefill: handed off, holding their blocks until released
  std::vector<Sequence*> incoming_;  // decode: reserved, their KV on its way
  std::vector<Sequence*> handed_;    // prefill: sequences of the step just ended that leave
  DecodeStretch stretch_;
};

}  // namespace servesim
