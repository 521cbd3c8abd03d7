// The event-driven flow network: incremental max-min re-solves, lazy byte accounting, one wake-up event.
#include "sim/network/flow_network.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "models/common/error.h"
#include "models/net/topology.h"

namespace servesim {

namespace {

std::vector<BytesPerSec> line_rates(const Topology& topology) {
  std::vector<BytesPerSec> capacity;
  capacity.reserve(topology.links().size());
  for (const TopoLink& link : topology.links()) capacity.push_back(link.bandwidth);
  return capacity;
}

// An offset of `offset_ns` nanoseconds from `base`, rounded half up: the integer nanosecond and the fraction left
// ([-0.5, 0.5)). Throws InputError (to_ns) for an offset past the simulated-time limit.
std::pair<Ns, double> round_half_up(Ns base, double offset_ns) {
  const double whole = std::floor(offset_ns + 0.5);
  const Ns step = to_ns(Seconds{whole * 1e-9});
  return {Ns{base.v + step.v}, offset_ns - whole};
}

}  // namespace

FlowNetwork::FlowNetwork(const Topology& topology) : FlowNetwork(line_rates(topology)) {}

FlowNetwork::FlowNetwork(std::vector<BytesPerSec> capacity) : solver_(std::move(capacity)) {
  table_.links.resize(solver_.link_count());
  table_.state.resize(solver_.link_count());
  for (std::size_t l = 0; l < table_.links.size(); ++l) {
    table_.state.capacity[l] = solver_.capacity(static_cast<int>(l)).value();
  }
}

FlowId FlowNetwork::start(Simulator& sim, FlowDemand demand, Bytes bytes, FlowHandler* who, std::uint64_t tag) {
  const std::string problem = solver_.problem(demand);
  const double b = bytes.value();
  if (!problem.empty() || !(b >= 0) || !std::isfinite(b)) {
    const std::string what = "flow (tag " + std::to_string(tag) + ")";
    throw InputError(what + (problem.empty() ? ": bytes " + short_number(b) + " must be >= 0" : problem));
  }

  std::uint32_t slot = 0;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = table_.add_slot();
  }
  const Ns now = sim.now();
  NetFlow& f = table_.flows[slot];
  f.demand = std::move(demand);
  f.where.assign(f.demand.links.size(), 0);
  double bound = f.demand.cap.value();
  for (const int l : f.demand.links) bound = std::min(bound, table_.state.capacity[static_cast<std::size_t>(l)]);
  table_.bound[slot] = bound;
  table_.cap[slot] = f.demand.cap.value();
  table_.set_route(slot, f.demand.links);
  f.bytes = b;
  FlowClock& c = table_.clock[slot];
  c.remaining = b;
  table_.rate[slot] = 0;
  c.settled = Instant{now, 0.0};
  c.finish = kNever;
  c.serial = started_++;
  f.tag = tag;
  f.who = who;
  f.live = true;
  f.attached = false;
  ++active_;
  const FlowId id = (static_cast<FlowId>(f.generation) << 32) | slot;
  if (b == 0) {
    set_finish(slot, now, 0.0);  // holds no link
  } else if (f.demand.links.empty()) {
    table_.rate[slot] = bound;  // its cap: nothing to share
    const auto [finish, frac] = round_half_up(now, c.remaining / bound * 1e9);
    set_finish(slot, finish, frac);
    ++resolved_;
  } else {
    attach(slot, c.settled);
    refill_.begin(table_);
    refill_.flow_added(table_, slot);
    resolve(Instant{now, 0.0});
  }
  reschedule(sim);
  return id;
}

void FlowNetwork::on_event(Simulator& sim, std::uint64_t arg) {
  if (arg != version_) return;  // superseded by a later wake-up
  pending_ = kNever;
  const Ns now = sim.now();
  done_.clear();
  // Completions in order of their exact times; those at the same exact time together, then one re-solve.
  for (std::uint32_t s = earliest(); s != kNoSlot && table_.clock[s].finish <= now; s = earliest()) {
    const Instant at{table_.clock[s].finish, table_.clock[s].finish_frac};
    refill_.begin(table_);
    bool changed = false;
    for (; s != kNoSlot && table_.clock[s].finish == at.ns && table_.clock[s].finish_frac == at.frac;
         s = earliest()) {
      NetFlow& f = table_.flows[s];
      if (f.attached) {
        for (const int l : f.demand.links) table_.links[static_cast<std::size_t>(l)].bytes += f.bytes;
        detach(s, at);
        changed = true;
      }
      table_.clock[s].remaining = 0;
      table_.rate[s] = 0;
      table_.clock[s].finish = kNever;
      finishes_.erase(s);
      done_.push_back(s);
    }
    if (changed) resolve(at);
  }
  reschedule(sim);

  // Release the slots, then tell the owners (whose handlers may start flows, reusing the slots).
  told_.clear();
  for (const std::uint32_t s : done_) {
    NetFlow& f = table_.flows[s];
    told_.emplace_back(f.who, f.tag);
    f.live = false;
    ++f.generation;
    --active_;
    free_slots_.push_back(s);
  }
  for (std::size_t i = 0; i < told_.size(); ++i) {  // by index: nothing a handler does touches told_
    if (told_[i].first != nullptr) told_[i].first->flow_done(sim, told_[i].second);
  }
}

double FlowNetwork::carried(std::uint32_t slot, Instant at) const {
  const FlowClock& c = table_.clock[slot];
  const double dt = elapsed_ns(c.settled, at);
  return dt > 0 ? std::min(table_.rate[slot] * dt * 1e-9, c.remaining) : 0.0;
}

void FlowNetwork::settle(std::uint32_t slot, Instant at) {
  FlowClock& c = table_.clock[slot];
  if (elapsed_ns(c.settled, at) <= 0) return;
  c.remaining -= carried(slot, at);
  c.settled = at;
}

namespace {

bool crosses(const NetFlow& f, int link) {
  return std::find(f.demand.links.begin(), f.demand.links.end(), link) != f.demand.links.end();
}

}  // namespace

void FlowNetwork::attach(std::uint32_t slot, Instant at) {
  NetFlow& f = table_.flows[slot];
  const auto& route = f.demand.links;
  for (std::size_t k = 0; k < route.size(); ++k) {
    const auto l = static_cast<std::size_t>(route[k]);
    NetLink& link = table_.links[l];
    if (link.flows.empty()) {
      link.busy_since = at;
      // The dominator: the nearest link of smaller capacity on this flow's route (ties: the smaller capacity,
      // then the earlier link).
      link.dominator = -1;
      link.through_dominator = 0;
      std::size_t best = route.size();
      for (std::size_t j = 0; j < route.size(); ++j) {
        const double c = table_.state.capacity[static_cast<std::size_t>(route[j])];
        if (!(c < table_.state.capacity[l])) continue;
        const std::size_t distance = j > k ? j - k : k - j;
        const std::size_t best_distance = best > k ? best - k : k - best;
        if (best == route.size() || distance < best_distance ||
            (distance == best_distance && c < table_.state.capacity[static_cast<std::size_t>(route[best])])) {
          best = j;
        }
      }
      if (best < route.size()) link.dominator = route[best];
    }
    if (link.dominator >= 0 && crosses(f, link.dominator)) ++link.through_dominator;
    f.where[k] = static_cast<std::uint32_t>(link.flows.size());
    link.flows.push_back(slot);
    table_.state.dominated[l] =
        link.dominator >= 0 && link.through_dominator == static_cast<std::int64_t>(link.flows.size()) ? 1 : 0;
  }
  f.attached = true;
}

void FlowNetwork::detach(std::uint32_t slot, Instant at) {
  NetFlow& f = table_.flows[slot];
  for (std::size_t k = 0; k < f.demand.links.size(); ++k) {
    const int l = f.demand.links[k];
    const auto li = static_cast<std::size_t>(l);
    NetLink& link = table_.links[li];
    const std::uint32_t index = f.where[k];
    const std::uint32_t last = link.flows.back();
    link.flows[index] = last;
    NetFlow& moved = table_.flows[last];
    const auto at_k = std::find(moved.demand.links.begin(), moved.demand.links.end(), l) - moved.demand.links.begin();
    moved.where[static_cast<std::size_t>(at_k)] = index;
    link.flows.pop_back();
    if (link.dominator >= 0 && crosses(f, link.dominator)) --link.through_dominator;
    if (link.flows.empty()) {
      link.busy.ns.v += at.ns.v - link.busy_since.ns.v;
      link.busy.frac += at.frac - link.busy_since.frac;
      table_.state.load[li] = 0;  // exactly: no rounding left over from the += / -= of rates
      link.dominator = -1;
      table_.state.dominated[li] = 0;
    } else {
      table_.state.load[li] -= table_.rate[slot];
      table_.state.dominated[li] =
          link.dominator >= 0 && link.through_dominator == static_cast<std::int64_t>(link.flows.size()) ? 1 : 0;
    }
    refill_.link_left(table_, l);
  }
  f.attached = false;
}

void FlowNetwork::resolve(Instant at) {
  const auto& changes = refill_.run(table_);
  resolved_ += changes.size();
  constexpr std::size_t kAhead = 4;  // the changed flows are scattered over the table: fetch a few ahead
  for (std::size_t i = 0; i < changes.size(); ++i) {
    if (i + kAhead < changes.size()) {
      const std::uint32_t next = changes[i + kAhead].first;
      __builtin_prefetch(&table_.clock[next]);
      __builtin_prefetch(table_.route(next));
    }
    const auto [s, rate] = changes[i];
    const double old = table_.rate[s];
    if (rate == old) continue;  // unchanged: its finish time stands
    ++rate_changes_;
    settle(s, at);
    const FlowClock& c = table_.clock[s];
    const int* route = table_.route(s);
    const double delta = rate - old;
    for (std::uint32_t k = 0, n = table_.hops(s); k < n; ++k) table_.state.load[static_cast<std::size_t>(route[k])] += delta;
    table_.rate[s] = rate;
    const auto [finish, frac] = round_half_up(c.settled.ns, c.settled.frac + c.remaining / rate * 1e9);
    set_finish(s, finish, frac);
  }
}

void FlowNetwork::reschedule(Simulator& sim) {
  const std::uint32_t s = earliest();
  const Ns next = s == kNoSlot ? kNever : table_.clock[s].finish;
  if (next == pending_) return;
  ++version_;  // the pending event, if any, is now stale
  pending_ = next;
  if (next != kNever) sim.schedule(next, Priority::transfer_end, this, version_);
}

void FlowNetwork::set_finish(std::uint32_t slot, Ns finish, double frac) {
  FlowClock& c = table_.clock[slot];
  // A later finish leaves the queue's key where it was, a lower bound that earliest() corrects when it comes up.
  const bool later = finish > c.finish || (finish == c.finish && frac >= c.finish_frac);
  c.finish = finish;
  c.finish_frac = frac;
  if (!later) finishes_.set(slot, FinishQueue::Key{finish, frac, c.serial});
}

std::uint32_t FlowNetwork::earliest() {
  if (finishes_.empty()) return kNoSlot;
  finishes_.refresh([this](std::uint32_t slot) {
    const FlowClock& c = table_.clock[slot];
    return FinishQueue::Key{c.finish, c.finish_frac, c.serial};
  });
  return finishes_.top();
}

std::uint32_t FlowNetwork::find(FlowId id) const {
  const auto slot = static_cast<std::uint32_t>(id & 0xffffffffU);
  if (slot >= table_.flows.size()) return kNoSlot;
  const NetFlow& f = table_.flows[slot];
  return f.live && f.generation == static_cast<std::uint32_t>(id >> 32) ? slot : kNoSlot;
}

bool FlowNetwork::active(FlowId id) const { return find(id) != kNoSlot; }

BytesPerSec FlowNetwork::rate(FlowId id) const {
  const std::uint32_t slot = find(id);
  return BytesPerSec{slot != kNoSlot ? table_.rate[slot] : 0.0};
}

Bytes FlowNetwork::remaining(FlowId id, Ns now) const {
  const std::uint32_t slot = find(id);
  if (slot == kNoSlot) return Bytes{0};
  return Bytes{table_.clock[slot].remaining - carried(slot, Instant{now, 0.0})};
}

std::vector<LinkStats> FlowNetwork::link_stats(Ns now) const {
  std::vector<LinkStats> out(table_.links.size());
  for (std::size_t l = 0; l < table_.links.size(); ++l) {
    const NetLink& link = table_.links[l];
    double bytes = link.bytes;
    for (const std::uint32_t slot : link.flows) {
      bytes += table_.flows[slot].bytes - table_.clock[slot].remaining + carried(slot, Instant{now, 0.0});
    }
    double busy_ns = static_cast<double>(link.busy.ns.v) + link.busy.frac;
    if (!link.flows.empty()) busy_ns += elapsed_ns(link.busy_since, Instant{now, 0.0});
    out[l] = LinkStats{Bytes{bytes}, Seconds{busy_ns * 1e-9}, Seconds{bytes / table_.state.capacity[l]}};
  }
  return out;
}

}  // namespace servesim
