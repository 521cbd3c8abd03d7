#include "sim/engine/dp_group.h"

#include <algorithm>
#include <stdexcept>

namespace servesim {
namespace {
constexpr std::uint64_t kStepEnd = 0;
constexpr std::uint64_t kStart = 1;
}  // namespace

DataParallelGroup::DataParallelGroup(std::vector<Engine*> ranks) : ranks_(std::move(ranks)) {
  if (ranks_.empty()) throw std::logic_error("a data-parallel group needs at least one rank");
  stepping_.reserve(ranks_.size());
}

void DataParallelGroup::kick(Simulator& sim) {
  if (!busy_ && !start_pending_) {
    start_pending_ = true;
    sim.schedule(sim.now(), Priority::engine_start, this, kStart);
  }
}

void DataParallelGroup::on_event(Simulator& sim, std::uint64_t arg) {
  if (arg == kStart) {
    start_pending_ = false;
    if (!busy_) start(sim);
    return;
  }
  for (Engine* e : stepping_) e->end_step(sim);
  busy_ = false;
  start(sim);
}

void DataParallelGroup::start(Simulator& sim) {
  stepping_.clear();
  StepTimer::GroupStep group;
  for (Engine* e : ranks_) {
    if (!e->plan_step(sim)) continue;
    stepping_.push_back(e);
    const std::int64_t n = e->batch().total_tokens();
    group.step_tokens += n;
    group.max_rank_tokens = std::max(group.max_rank_tokens, n);
    group.decodes_only = group.decodes_only && e->batch().prefills.empty();
  }
  if (stepping_.empty()) return;  // every rank idle
  const Ns now = sim.now();
  Ns end = now;
  for (Engine* e : stepping_) {
    e->time_rank_step(now, group);
    end = std::max(end, e->step_end());
  }
  if (network_ != nullptr) {
    all_ = BatchShape{};
    all_.window = stepping_.front()->batch().window;
    for (Engine* e : stepping_) {
      const BatchShape& b = e->batch();
      all_.prefills.insert(all_.prefills.end(), b.prefills.begin(), b.prefills.end());
      all_.num_decodes += b.num_decodes;
      all_.decode_context_tokens += b.decode_context_tokens;
      all_.decode_window_context_tokens += b.decode_window_context_tokens;
      all_.num_sampled += b.num_sampled;
    }
    end = end + network_->step_started(sim, *stepping_.front(), all_);
  }
  // The end first, then the launches: a prefill rank's launch may start KV transfers, which end after the step.
  busy_ = true;
  sim.schedule(end, Priority::step_end, this, kStepEnd);
  for (Engine* e : stepping_) {
    e->join_group_step(end);
    e->launch_step(sim);
  }
}

}  // namespace servesim
