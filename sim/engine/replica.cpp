#include "sim/engine/replica.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace servesim {

namespace {
constexpr std::uint64_t kStepEnd = 0;
constexpr std::uint64_t kStart = 1;  // never a Sequence address
}

Replica::Replica(std::int32_t id, std::shared_ptr<const StepModel> model, std::unique_ptr<Scheduler> scheduler,
                 const ReplicaConfig& cfg, Recorder& recorder, std::shared_ptr<PipelineStages> pipeline)
    : id_(id),
      model_(std::move(model)),
      timer_(model_),
      scheduler_(std::move(scheduler)),
      pipeline_(std::move(pipeline)),
      cfg_(cfg),
      recorder_(recorder),
      kv_(cfg.num_kv_blocks, cfg.block_size, model_->arch().kv_window(), cfg.limits.max_num_batched_tokens) {
  batch_.window = model_->arch().sliding_window;  // sliding-window layers read min(context, window) at decode
  if (cfg.jitter.active()) {
    jitter_.emplace(cfg.jitter, cfg.seed, "step_jitter/" + std::to_string(id) + "/" + std::to_string(cfg.engine));
  }
}

Sequence* Replica::allocate(const Request& r) {
  Sequence* s = nullptr;
  if (!free_.empty()) {
    s = free_.back();
    free_.pop_back();
    *s = Sequence{};
  } else {
    s = &pool_.emplace_back();
  }
  s->req = r;
  return s;
}

void Replica::submit(Simulator& sim, const Request& r) {
  const std::int64_t total = r.prompt_tokens + r.output_tokens;
  // The last sampled token is never fed back, so a sequence holds at most total - 1 tokens of KV.
  if (cfg_.max_model_len > 0 && total > cfg_.max_model_len) {
    recorder_.rejected(r.id, RejectReason::exceeds_max_model_len, [&] {
      return "request " + std::to_string(r.id) + " (" + std::to_string(r.prompt_tokens) + " prompt + " +
             std::to_string(r.output_tokens) + " output tokens) is longer than engine.max_model_len = " +
             std::to_string(cfg_.max_model_len);
    });
    return;
  }
  if (!kv_.can_ever_fit(total - 1)) {
    recorder_.rejected(r.id, RejectReason::exceeds_kv_cache, [&] {
      return "request " + std::to_string(r.id) + " (" + std::to_string(r.prompt_tokens) + " prompt + " +
             std::to_string(r.output_tokens) + " output tokens) can never fit the KV cache: it needs " +
             std::to_string(kv_.peak_blocks(total - 1)) + " blocks of " + std::to_string(kv_.block_size()) +
             " tokens, the engine has " + std::to_string(kv_.num_blocks());
    });
    return;
  }
  Sequence* s = allocate(r);
  ++outstanding_;
  const Ns delay = cfg_.front_end.delay(r.prompt_tokens);
  if (delay.v == 0) {
    enqueue(sim, s);
  } else {
    ++in_front_end_;
    // The sequence's address identifies it; it never orders events.
    sim.schedule(sim.now() + delay, Priority::request_ready, this, reinterpret_cast<std::uint64_t>(s));
  }
}

void Replica::on_event(Simulator& sim, std::uint64_t arg) {
  if (arg == kStepEnd) {
    end_step(sim);
  } else if (arg == kStart) {
    start_pending_ = false;
    if (!busy_) start_step(sim);
  } else {
    --in_front_end_;
    enqueue(sim, reinterpret_cast<Sequence*>(arg));
  }
}

EngineAccount Replica::account() const {
  EngineAccount a;
  a.replica = id_;
  a.engine = cfg_.engine;
  a.kv_blocks = kv_.num_blocks();
  a.kv_free = kv_.free_blocks();
  for (const Sequence* s : running_) a.kv_held += s->blocks;
  for (const Sequence* s : waiting_) a.kv_held += s->blocks;
  a.outstanding = outstanding_;
  a.queued = static_cast<std::int64_t>(running_.size() + waiting_.size()) + in_front_end_;
  return a;
}

void Replica::enqueue(Simulator& sim, Sequence* s) {
  s->ready = sim.now();
  waiting_.push_back(s);
  recorder_.waiting(static_cast<std::int64_t>(waiting_.size()));
  if (!busy_ && !start_pending_) {
    // An idle engine starts its next step after every request arriving at this instant has been queued.
    start_pending_ = true;
    sim.schedule(sim.now(), Priority::engine_start, this, kStart);
  }
}

void Replica::start_step(Simulator& sim) {
  EngineQueues q{running_, waiting_, kv_};
  scheduler_->schedule(q, plan_);
  if (plan_.scheduled.empty()) {
    if (!running_.empty() || !waiting_.empty()) {
      throw std::logic_error("scheduler made no progress with work queued");
    }
    busy_ = false;
    return;
  }
  for (Sequence* s : plan_.scheduled) {
    if (s->first_scheduled == kNever) s->first_scheduled = sim.now();
  }
  plan_.shape(batch_);
  const Ns d = step_duration(sim.now());
  busy_ = true;
  step_start_ = sim.now();
  recorder_.step(batch_.total_tokens(), batch_.num_seqs(), plan_.preempted, d);
  sim.schedule(sim.now() + d, Priority::step_end, this, kStepEnd);
}

Ns Replica::step_duration(Ns now) {
  // Jitter scales the step's own work (CPU and GPU) and a stall adds to its CPU part; without jitter the
  // mean model's time, computed exactly as before jitter existed.
  if (!pipeline_ && !jitter_) return to_ns(timer_.step_time(batch_));
  const StepJitter::Draw j = jitter_ ? jitter_->next() : StepJitter::Draw{};
  Seconds overhead = model_->overhead().of(batch_);
  if (!pipeline_) return to_ns((timer_.gpu_time(batch_) + overhead) * j.factor + j.stall);
  // The engine's CPU work first, then its micro-batch through the shared stages (each stage an equal share of the
  // GPU time once the sends are taken out).
  const Seconds send = timer_.stage_send_time(batch_.total_tokens());
  const double p = double(pipeline_->stages());
  Seconds stage = (timer_.gpu_time(batch_) - send * (p - 1.0)) / p;
  if (jitter_) {
    overhead = overhead * j.factor + j.stall;
    stage = stage * j.factor;
  }
  return pipeline_->pass(now + to_ns(overhead), to_ns(stage), to_ns(send)) - now;
}

void Replica::end_step(Simulator& sim) {
  const Ns now = sim.now();
  bool any_done = false;
  for (Sequence* s : plan_.scheduled) {
    s->computed += s->scheduled;
    s->scheduled = 0;
    if (s->computed < s->num_tokens()) continue;  // a prefill chunk that does not finish the prompt
    ++s->generated;
    if (s->first_token == kNever) {
      s->first_token = now;
    } else if (cfg_.defer_itl) {
      s->gaps.push_back((now - s->last_token).v);
    } else {
      recorder_.inter_token(now - s->last_token);
    }
    s->last_token = now;
    if (recorder_.logs()) recorder_.log_token(s->req.id, now);
    if (s->done()) {
      any_done = true;
      kv_.release(*s);
      for (const std::int64_t g : s->gaps) recorder_.inter_token(Ns{g});
      recorder_.finished(*s, id_, now);
      --outstanding_;
    }
  }
  if (any_done) {
    running_.erase(std::remove_if(running_.begin(), running_.end(),
                                  [this](Sequence* s) {
                                    if (!s->done()) return false;
                                    free_.push_back(s);
                                    return true;
                                  }),
                   running_.end());
  }
  start_step(sim);
}

}  // namespace servesim
