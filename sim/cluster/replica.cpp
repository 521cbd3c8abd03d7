#include "sim/cluster/replica.h"

#include <stdexcept>
#include <string>

namespace servesim {

Replica::Replica(std::int32_t index, std::vector<std::unique_ptr<Engine>> engines, EngineEntry entry)
    : index_(index), engines_(std::move(engines)), entry_(entry) {
  if (engines_.empty()) throw std::logic_error("replica " + std::to_string(index) + " has no engine");
  for (std::size_t v = 0; v < engines_.size(); ++v) {
    if (engines_[v]->replica() != index || engines_[v]->index() != static_cast<std::int32_t>(v)) {
      throw std::logic_error("replica " + std::to_string(index) + ": engine " + std::to_string(v) +
                             " was built for another place");
    }
  }
}

std::size_t Replica::entry_engine() const {
  std::size_t best = 0;
  if (entry_ == EngineEntry::data_parallel_balance) {
    auto score = [&](std::size_t v) { return 4 * counts_[v].first + counts_[v].second; };
    for (std::size_t v = 1; v < engines_.size() && v < counts_.size(); ++v) {
      if (score(v) < score(best)) best = v;
    }
    return best;
  }
  for (std::size_t v = 1; v < engines_.size(); ++v) {
    if (engines_[v]->outstanding() < engines_[best]->outstanding()) best = v;
  }
  return best;
}

void Replica::refresh_counts(Ns now) const {
  constexpr std::int64_t kIntervalNs = 100'000'000;  // vLLM's stats_update_interval_ms = 100
  const std::int64_t interval = now.v / kIntervalNs;
  if (interval <= counts_interval_) return;  // snapshots only move forward
  counts_interval_ = interval;
  counts_.clear();
  // Requests still in the front end count as waiting (vLLM counts a request at its engine once it is assigned);
  // a prefill engine's requests parked for their KV hand-off are finished for its scheduler, as in vLLM.
  for (const auto& e : engines_) counts_.emplace_back(e->waiting() + e->in_front_end(), e->running());
}

void Replica::submit(Simulator& sim, const Request& r) {
  if (entry_ == EngineEntry::data_parallel_balance) {
    refresh_counts(sim.now());
    const std::size_t v = entry_engine();
    ++counts_[v].first;
    engines_[v]->submit(sim, r);
    return;
  }
  engines_[entry_engine()]->submit(sim, r);
}

std::int64_t Replica::cached_prefix_tokens(const Request& r) const {
  if (entry_ == EngineEntry::data_parallel_balance) refresh_counts(r.arrival);
  return engines_[entry_engine()]->kv().cached_prefix(r, r.prompt_tokens - 1);
}

std::int64_t Replica::outstanding() const {
  std::int64_t n = 0;
  for (const auto& e : engines_) n += e->outstanding();
  return n;
}

ReplicaLoad Replica::load() const {
  ReplicaLoad l;
  for (const auto& e : engines_) {
    l.outstanding += e->outstanding();
    l.waiting += e->waiting();
    l.running += e->running();
    l.kv_blocks += e->kv().num_blocks();
    l.kv_free += e->kv().free_blocks();
  }
  return l;
}

}  // namespace servesim
