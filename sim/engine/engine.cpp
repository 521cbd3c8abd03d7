#include "sim/engine/engine.h"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

#include "sim/engine/dp_group.h"

namespace servesim {

namespace {
constexpr std::uint64_t kStepEnd = 0;
constexpr std::uint64_t kStart = 1;  // never a Sequence address
}

Engine::Engine(std::int32_t replica, std::shared_ptr<const StepModel> model, std::unique_ptr<Scheduler> scheduler,
               const EngineConfig& cfg, RunSink& sink, std::shared_ptr<PipelineStages> pipeline)
    : replica_(replica),
      model_(std::move(model)),
      timer_(model_),
      scheduler_(std::move(scheduler)),
      pipeline_(std::move(pipeline)),
      cfg_(cfg),
      sink_(sink),
      kv_(cfg.num_kv_blocks, cfg.block_size,
          KvGroups::of(model_->arch(), model_->parallel().pipeline, cfg.hybrid_kv_cache),
          cfg.limits.max_num_batched_tokens,
          cfg.enable_prefix_caching) {
  if (cfg.kv_blocks_per_rank > 0) kv_.limit_sequence_blocks(cfg.kv_blocks_per_rank - KvCacheSizing::kNullBlocks);
  recorder_ = dynamic_cast<Recorder*>(&sink_);
  step_.replica = replica;
  step_.engine = cfg.engine;
  batch_.window = model_->arch().sliding_window;  // sliding-window layers read min(context, window) at decode
  stretch_.reset(cfg.block_size);
  if (cfg.jitter.active()) {
    jitter_.emplace(cfg.jitter, cfg.seed, "step_jitter/" + std::to_string(replica) + "/" + std::to_string(cfg.engine));
  }
}

Sequence* Engine::allocate(const Request& r) {
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

void Engine::submit(Simulator& sim, const Request& r) {
  sink_.arrived(sim.now(), r, replica_);
  const std::int64_t total = r.prompt_tokens + r.output_tokens;
  // The last sampled token is never fed back, so a sequence holds at most total - 1 tokens of KV.
  if (cfg_.max_model_len > 0 && total > cfg_.max_model_len) {
    sink_.rejected(sim.now(), r.id, RejectReason::exceeds_max_model_len, [&] {
      return "request " + std::to_string(r.id) + " (" + std::to_string(r.prompt_tokens) + " prompt + " +
             std::to_string(r.output_tokens) + " output tokens) is longer than engine.max_model_len = " +
             std::to_string(cfg_.max_model_len);
    });
    return;
  }
  if (!kv_.can_ever_fit(total - 1)) {
    sink_.rejected(sim.now(), r.id, RejectReason::exceeds_kv_cache, [&] {
      return "request " + std::to_string(r.id) + " (" + std::to_string(r.prompt_tokens) + " prompt + " +
             std::to_string(r.output_tokens) + " output tokens) can never fit the KV cache: it needs " +
             std::to_string(kv_.peak_blocks(total - 1)) + " blocks of " + std::to_string(kv_.block_size()) +
             " tokens, the engine has " + std::to_string(kv_.num_blocks());
    });
    return;
  }
  Sequence* s = allocate(r);
  s->mark = r.arrival;
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

void Engine::on_event(Simulator& sim, std::uint64_t arg) {
  if (arg == kStepEnd) {
    do {
      end_step(sim);
    } while (next_step_inline(sim));
  } else if (arg == kStart) {
    start_pending_ = false;
    if (busy_) return;
    start_step(sim);
    while (next_step_inline(sim)) end_step(sim);
  } else {
    --in_front_end_;
    enqueue(sim, reinterpret_cast<Sequence*>(arg));
  }
}

EngineAccount Engine::account() const {
  EngineAccount a;
  a.replica = replica_;
  a.engine = cfg_.engine;
  a.kv_blocks = kv_.num_blocks();
  a.kv_free = kv_.free_blocks();
  for (const Sequence* s : running_) a.kv_held += kv_.held(*s);
  for (const Sequence* s : waiting_) a.kv_held += kv_.held(*s);
  for (const Sequence* s : parked_) a.kv_held += kv_.held(*s);
  for (const Sequence* s : incoming_) a.kv_held += kv_.held(*s);  // reserved: not yet outstanding here
  a.kv_held -= kv_.shared_refs();  // a cached block held by several sequences is one block
  a.outstanding = outstanding_;
  a.queued = static_cast<std::int64_t>(running_.size() + waiting_.size() + parked_.size()) + in_front_end_;
  return a;
}

void Engine::enqueue(Simulator& sim, Sequence* s) {
  s->ready = sim.now();
  s->mark = s->ready;  // the front end: ready - arrival
  waiting_.push_back(s);
  sink_.queued(s->ready, s->req.id, replica_, cfg_.engine, static_cast<std::int64_t>(waiting_.size()));
  kick(sim);
}

void Engine::kick(Simulator& sim) {
  if (group_ != nullptr) {
    group_->kick(sim);
    return;
  }
  if (!busy_ && !start_pending_) {
    // An idle engine starts its next step after every request arriving at this instant has been queued.
    start_pending_ = true;
    sim.schedule(sim.now(), Priority::engine_start, this, kStart);
  }
}

void Engine::release_handed_off(Simulator& sim, Sequence* s) {
  const auto it = std::find(parked_.begin(), parked_.end(), s);
  if (it == parked_.end()) throw std::logic_error("release_handed_off: the sequence is not parked here");
  parked_.erase(it);
  kv_.release(*s);
  --outstanding_;
  free_.push_back(s);
  if (!waiting_.empty()) kick(sim);  // the freed blocks may admit a waiting prompt
}

Sequence* Engine::reserve(const Sequence& from, std::int64_t tokens) {
  Sequence* s = allocate(from.req);
  *s = from;
  s->blocks = 0;
  s->null_blocks = 0;
  s->swa_blocks = 0;
  s->swa_null = 0;
  s->scheduled = 0;
  s->kv_entries.clear();  // the prefill replica's blocks
  s->hashed = BlockHashCursor{};
  if (!kv_.allocate(*s, tokens)) {
    free_.push_back(s);
    return nullptr;
  }
  incoming_.push_back(s);
  return s;
}

void Engine::receive(Simulator& sim, Sequence* s) {
  const auto it = std::find(incoming_.begin(), incoming_.end(), s);
  if (it == incoming_.end()) throw std::logic_error("receive: the sequence was not reserved here");
  incoming_.erase(it);
  ++outstanding_;
  s->mark = sim.now();
  waiting_.push_back(s);
  kick(sim);
}

namespace {

// Time of a sequence between `mark` and `now` spent after a preemption (waiting again, or recomputing what it
// lost): preempted time, before or after its first token.
void add_preempted(Sequence& s, Ns now) {
  (s.first_token == kNever ? s.prefill_preempted : s.decode_preempted) += now - s.mark;
}

}  // namespace

std::size_t Engine::start_stretch_step() {
  if (!stretch_.active()) return 0;
  const auto members = static_cast<std::size_t>(stretch_.size());
  // The members' tokens, as the scheduler would give them (first, in running order); the stretch ends when it
  // would not, or when the KV cache cannot grow them all (the scheduler would preempt), or to bound its kept gaps.
  if (!scheduler_->schedules_after_decodes(members) || stretch_.blocks_needed() > kv_.free_blocks() ||
      stretch_.kept_gaps() >= kMaxKeptGaps) {
    stretch_.settle_all(running_);
    return 0;
  }
  // The KV blocks of this step, as the scheduler takes them: each member crossing into a new block, in running
  // order (and one filling a block, which a prefix cache may keep).
  for (Sequence* s : stretch_.allocations()) {
    const std::int64_t tokens = stretch_.tokens_after_next(*s);
    s->computed = tokens - 1;
    if (!kv_.allocate(*s, tokens)) throw std::logic_error("stretch: a KV allocation that fits failed");
  }
  return members;
}

void Engine::start_step(Simulator& sim) {
  if (!plan_step(sim)) return;
  time_step(sim.now());
  if (network_ != nullptr) {
    // Contention on the shared network lengthens the step's communication.
    lengthen_step(network_->step_started(sim, *this, batch_));
  }
  launch_step(sim);
}

void Engine::lengthen_step(Ns extra) {
  step_.end = step_.end + extra;
  step_.communication_s += ns_to_s(extra);
  step_kinds_[2] += extra.v;
}

bool Engine::plan_step(Simulator& sim) {
  const std::size_t members = start_stretch_step();
  EngineQueues q{running_, waiting_, kv_, members};
  scheduler_->schedule(q, plan_);
  // A decode engine whose FCFS queue is blocked by a recompute (after a preemption) that cannot fit while the
  // requests received behind it hold the blocks (where vLLM would wait forever): the blocked front goes to the
  // back, in turn, until one of them runs.
  for (std::size_t k = 1; members == 0 && plan_.scheduled.empty() && running_.empty() && role_ == EngineRole::decode &&
                          k < waiting_.size();
       ++k) {
    waiting_.push_back(waiting_.front());
    waiting_.pop_front();
    scheduler_->schedule(q, plan_);
  }
  const Ns now = sim.now();
  for (Sequence* v : plan_.preempted) {
    // Until now it was running: stalled (derived), or still recomputing after an earlier preemption.
    if (v->recovering) add_preempted(*v, now);
    v->mark = now;
    v->preempted_waiting = true;
    v->recovering = true;
    sink_.preempted(now, v->req.id, replica_, cfg_.engine);
  }
  if (members == 0 && plan_.scheduled.empty()) {
    // A prefill engine whose blocks are held by requests parked for their hand-off (waiting for decode blocks)
    // idles until one leaves (release_handed_off() kicks it); a decode engine until a KV transfer arrives.
    if (!running_.empty() || (!waiting_.empty() && parked_.empty() && incoming_.empty())) {
      throw std::logic_error("scheduler made no progress with work queued");
    }
    busy_ = false;
    return false;
  }
  for (Sequence* s : plan_.scheduled) {
    // Its time since `mark` was queueing or a stall (both derived), or preempted time.
    if (s->preempted_waiting || s->recovering) add_preempted(*s, now);
    s->mark = now;
    if (s->first_scheduled == kNever) {
      s->first_scheduled = now;
      sink_.scheduled(now, s->req.id, replica_, cfg_.engine);
    } else if (s->preempted_waiting) {
      sink_.scheduled(now, s->req.id, replica_, cfg_.engine);
    }
    s->preempted_waiting = false;
  }
  plan_.shape(batch_);
  if (members > 0) {
    // Every member decodes, reading its computed tokens and the new one.
    batch_.num_decodes += static_cast<std::int64_t>(members);
    batch_.num_sampled += static_cast<std::int64_t>(members);
    batch_.decode_context_tokens += stretch_.context_tokens_next();
  }
  return true;
}

void Engine::launch_step(Simulator& sim) {
  const Ns now = sim.now();
  busy_ = true;
  step_.start = now;
  step_.prefill_tokens = batch_.prefill_tokens();
  step_.prefill_seqs = static_cast<std::int64_t>(batch_.prefills.size());
  step_.decode_seqs = batch_.num_decodes;
  step_.preempted = static_cast<std::int64_t>(plan_.preempted.size());
  step_.waiting = static_cast<std::int64_t>(waiting_.size());
  step_.running = static_cast<std::int64_t>(running_.size());
  step_.kv_blocks = kv_.num_blocks();
  step_.kv_used_blocks = kv_.num_blocks() - kv_.free_blocks();
  sink_.step_started(step_);
  busy_time_ += step_.end - now;
  if (role_ == EngineRole::prefill) {
    // Its end is scheduled before the hand-offs it starts (next_step_inline leaves a prefill engine's steps alone);
    // a data-parallel group schedules its ranks' end itself, before launching them.
    if (group_ == nullptr) sim.schedule(step_.end, Priority::step_end, this, kStepEnd);
    for (Sequence* s : plan_.scheduled) {
      if (s->generated == 0 && s->output_tokens_left_after_first() &&
          s->computed + s->scheduled >= s->num_tokens()) {
        handoff_->prefill_starting(sim, *this, *s, step_.end);
      }
    }
  }
}

void Engine::time_rank_step(Ns now, const StepTimer::GroupStep& group) {
  BoundTimes bounds;
  const Seconds gpu = timer_.rank_gpu_time(batch_, group, bounds);
  time_parts(now, gpu, bounds);
}

void Engine::join_group_step(Ns end) {
  // The wait for the group's slowest rank is spent in the MoE layers' collectives: communication.
  if (end > step_.end) lengthen_step(end - step_.end);
}

void Engine::time_step(Ns now) {
  BoundTimes bounds;
  const Seconds gpu = timer_.gpu_time(batch_, bounds);
  time_parts(now, gpu, bounds);
}

void Engine::time_parts(Ns now, Seconds gpu, const BoundTimes& bounds) {
  Seconds overhead = model_->overhead().of(batch_);
  step_.memory_s = bounds.of(Bound::memory);
  step_.compute_s = bounds.of(Bound::compute);
  step_.communication_s = bounds.of(Bound::communication);
  // GPU operators bound by launch overhead (none of today's predictors reports one) count with the engine's.
  step_.overhead_s = overhead.v + bounds.of(Bound::overhead);
  step_kinds_ = {to_ns(Seconds{step_.memory_s}).v, to_ns(Seconds{step_.compute_s}).v,
                 to_ns(Seconds{step_.communication_s}).v, to_ns(Seconds{step_.overhead_s}).v};
  // Jitter scales the step's own work (CPU and GPU) and a stall adds to its CPU part; without jitter the
  // mean model's time, computed exactly as before jitter existed.
  if (!pipeline_ && !jitter_) {
    step_.end = now + to_ns(gpu + overhead);
    return;
  }
  const StepJitter::Draw j = jitter_ ? jitter_->next() : StepJitter::Draw{};
  if (!pipeline_) {
    step_.end = now + to_ns((gpu + overhead) * j.factor + j.stall);
    return;
  }
  // The engine's CPU work first, then its micro-batch through the shared stages (each stage an equal share of the
  // GPU time once the sends are taken out).
  const Seconds send = timer_.stage_send_time(batch_.total_tokens());
  const double p = double(pipeline_->stages());
  Seconds stage = (gpu - send * (p - 1.0)) / p;
  if (jitter_) {
    overhead = overhead * j.factor + j.stall;
    stage = stage * j.factor;
  }
  step_.end = pipeline_->pass(now + to_ns(overhead), to_ns(stage), to_ns(send));
}

RequestRecord Engine::record_of(const Sequence& s, Ns now) const {
  RequestRecord r;
  r.id = s.req.id;
  r.replica = replica_;
  r.preemptions = s.preemptions;
  r.prompt_tokens = s.req.prompt_tokens;
  r.output_tokens = s.generated;
  r.arrival = s.req.arrival;
  r.ready = s.ready;
  r.first_scheduled = s.first_scheduled;
  r.first_token = s.first_token;
  r.finish = now;
  r.prefill = s.prefill;
  r.prefill_preempted = s.prefill_preempted;
  r.decode = s.decode;
  r.decode_preempted = s.decode_preempted;
  r.step_memory = Ns{s.step_kinds[0]};
  r.step_compute = Ns{s.step_kinds[1]};
  r.step_communication = Ns{s.step_kinds[2]};
  r.step_overhead = Ns{s.step_kinds[3]};
  r.prefill_replica = s.prefill_replica < 0 ? replica_ : s.prefill_replica;
  r.decode_wait = s.decode_wait;
  r.kv_transfer = s.kv_transfer;
  r.cached_tokens = s.cached_tokens;
  r.dp_rank = group_ != nullptr ? index() : 0;
  return r;
}

bool Engine::next_step_inline(Simulator& sim) {
  if (!busy_ || role_ == EngineRole::prefill) return false;
  if (sim.advance_inline(step_.end, Priority::step_end)) return true;
  sim.schedule(step_.end, Priority::step_end, this, kStepEnd);
  return false;
}

void Engine::end_step(Simulator& sim) {
  const Ns now = sim.now();
  sink_.step_ended(step_);
  bool any_done = false;
  const bool tokens_wanted = sink_.wants_tokens();
  if (stretch_.active()) end_members(now, tokens_wanted, any_done);
  for (Sequence* s : plan_.scheduled) {
    // The step's whole duration: lost work redone, its prompt, or its decode.
    if (s->recovering) {
      add_preempted(*s, now);
    } else {
      (s->first_token == kNever ? s->prefill : s->decode) += now - s->mark;
    }
    s->mark = now;
    for (std::size_t k = 0; k < step_kinds_.size(); ++k) s->step_kinds[k] += step_kinds_[k];
    const bool chunk = s->in_prefill();
    s->computed += s->scheduled;
    s->scheduled = 0;
    s->recovering = s->computed < s->recompute_until;
    if (chunk) sink_.chunk_done(now, s->req.id, s->computed);
    if (s->computed < s->num_tokens()) continue;  // a prefill chunk that does not finish the prompt
    ++s->generated;
    if (s->first_token == kNever) {
      s->first_token = now;
    } else if (cfg_.defer_itl) {
      s->gaps.push_back((now - s->last_token).v);
    } else {
      inter_token(now - s->last_token);
    }
    s->last_token = now;
    if (tokens_wanted) sink_.token(now, s->req.id);
    if (role_ == EngineRole::prefill && !s->done()) {
      handed_.push_back(s);  // leaves after its first token: its KV goes to a decode replica
      continue;
    }
    if (s->done()) {
      any_done = true;
      finish(*s, now);
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
  if (!handed_.empty()) {
    running_.erase(std::remove_if(running_.begin(), running_.end(),
                                  [this](Sequence* s) {
                                    return std::find(handed_.begin(), handed_.end(), s) != handed_.end();
                                  }),
                   running_.end());
    for (Sequence* s : handed_) {
      parked_.push_back(s);
      handoff_->prefill_done(sim, *this, *s);
    }
    handed_.clear();
  }
  if (any_done && role_ == EngineRole::decode) handoff_->kv_freed(sim, *this);
  // The running sequences right behind the members that sampled a token now and decode next join them.
  if (cfg_.decode_stretch && role_ != EngineRole::prefill && !pipeline_ && batch_.window == 0 &&
      kv_.sliding_window() == 0) {
    for (auto i = static_cast<std::size_t>(stretch_.size()); i < running_.size() && stretch_.qualifies(*running_[i], now);
         ++i) {
      stretch_.join(*running_[i], kv_.caches(*running_[i]));
    }
  }
  if (group_ != nullptr) {
    busy_ = false;  // the group starts every rank's next step together
    return;
  }
  start_step(sim);
}

void Engine::finish(Sequence& s, Ns now) {
  kv_.release(s);
  for (const std::int64_t g : s.gaps) inter_token(Ns{g});
  sink_.finished(record_of(s, now));
  --outstanding_;
}

void Engine::end_members(Ns now, bool tokens_wanted, bool& any_done) {
  // Every member sampled its last token at this step's start and samples one now.
  const Ns gap = now - step_.start;
  stretch_.step_ended(now, step_kinds_, cfg_.defer_itl, gap);
  auto leave = [&](Sequence* s) {
    stretch_.leave_finisher();  // settled: its last token sampled now
    any_done = true;
    finish(*s, now);
  };
  if (recorder_ != nullptr && !tokens_wanted) {
    if (!cfg_.defer_itl) recorder_->add_gaps(gap, stretch_.size());
    while (Sequence* s = stretch_.finisher()) leave(s);
    return;
  }
  // Every member's calls in running order (the sinks see what step-by-step processing gives them).
  const auto members = static_cast<std::size_t>(stretch_.size());
  for (std::size_t i = 0; i < members; ++i) {
    Sequence* s = running_[i];
    if (!cfg_.defer_itl) inter_token(gap);
    if (tokens_wanted) sink_.token(now, s->req.id);
    if (stretch_.finisher() == s) leave(s);
  }
}

}  // namespace servesim
