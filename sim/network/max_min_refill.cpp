// Incremental progressive filling: only the dirty flows and links are tracked (see max_min_refill.h).
#include "sim/network/max_min_refill.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace servesim {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Relative tolerance within which two levels are the same level (rounding in recomputed levels is ~1e-16).
constexpr double kTolerance = 1e-12;

bool same_level(double a, double b) {
  return std::isfinite(a) && std::isfinite(b) && std::fabs(a - b) <= kTolerance * std::max(std::fabs(a), std::fabs(b));
}

}  // namespace

void MaxMinRefill::begin(const FlowTable& table) {
  if (++epoch_ == 0) {  // wrapped: no mark may look current
    std::fill(link_mark_.begin(), link_mark_.end(), 0U);
    std::fill(flow_mark_.begin(), flow_mark_.end(), 0U);
    for (CleanRates& c : clean_) c.mark = 0;
    epoch_ = 1;
  }
  level_ = 0;
  if (links_.size() < table.links.size()) {
    links_.resize(table.links.size());
    link_mark_.resize(table.links.size(), 0U);
    clean_.resize(table.links.size());
  }
  if (flows_.size() < table.flows.size()) {
    flows_.resize(table.flows.size());
    flow_mark_.resize(table.flows.size(), 0U);
  }
  dirty_links_.clear();
  dirty_flows_.clear();
  heap_.clear();
  result_.clear();
}

void MaxMinRefill::flow_added(const FlowTable& table, std::uint32_t slot) {
  if (flows_.size() < table.flows.size()) {
    flows_.resize(table.flows.size());
    flow_mark_.resize(table.flows.size(), 0U);
  }
  make_flow_dirty(table, slot, false, 0.0);
}

void MaxMinRefill::link_left(const FlowTable& table, int link) {
  make_link_dirty(table, link);
  if (!links_[static_cast<std::size_t>(link)].saturated) update_level(table, link);
}

void MaxMinRefill::place(std::size_t i, const Event& e) {
  heap_[i] = e;
  if (e.kind == kSaturate) links_[e.id].at = static_cast<std::uint32_t>(i);
}

void MaxMinRefill::sift_up(std::size_t i) {
  const Event e = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!Later{}(heap_[parent], e)) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, e);
}

void MaxMinRefill::sift_down(std::size_t i) {
  const Event e = heap_[i];
  const std::size_t n = heap_.size();
  while (true) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && Later{}(heap_[child], heap_[child + 1])) ++child;
    if (!Later{}(e, heap_[child])) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, e);
}

void MaxMinRefill::push(Event e) {
  heap_.push_back(e);
  sift_up(heap_.size() - 1);
}

MaxMinRefill::Event MaxMinRefill::pop() {
  const Event top = heap_.front();
  if (top.kind == kSaturate) links_[top.id].at = kNotQueued;
  const Event last = heap_.back();
  heap_.pop_back();
  if (!heap_.empty()) {
    heap_.front() = last;
    sift_down(0);
  }
  return top;
}

void MaxMinRefill::queue_saturation(int link, double level) {
  LinkScratch& s = links_[static_cast<std::size_t>(link)];
  s.queued = level;
  if (s.at == kNotQueued) {
    push(Event{level, kSaturate, static_cast<std::uint32_t>(link)});
  } else {
    heap_[s.at].level = level;  // lower than it was
    sift_up(s.at);
  }
}

void MaxMinRefill::make_link_dirty(const FlowTable& table, int link) {
  const auto li = static_cast<std::size_t>(link);
  if (link_mark_[li] == epoch_) return;
  link_mark_[li] = epoch_;
  LinkScratch& s = links_[li];
  s.frozen = 0;
  s.dirty_old = 0;
  s.bound = 0;
  s.unfrozen = 0;
  s.dirtied = 0;
  s.at = kNotQueued;
  s.queued = kInf;
  s.saturated = false;
  s.level = 0;
  dirty_links_.push_back(link);
  // The flows it held at its old level must be checked when the filling gets there (if it has not passed it).
  const double old = table.state.level[li];
  if (std::isfinite(old) && old >= level_ * (1 - kTolerance)) {
    push(Event{old, kCheck, static_cast<std::uint32_t>(link)});
  }
}

void MaxMinRefill::make_flow_dirty(const FlowTable& table, std::uint32_t slot, bool frozen, double rate) {
  flow_mark_[slot] = epoch_;
  FlowScratch& fs = flows_[slot];
  fs.frozen = frozen;
  fs.rate = rate;
  dirty_flows_.push_back(slot);
  const int* route = table.route(slot);
  const std::uint32_t hops = table.hops(slot);
  const double old = table.rate[slot];
  const double bound = table.bound[slot];
  for (std::uint32_t k = 0; k < hops; ++k) {
    const int l = route[k];
    if (left_out(table, l)) continue;
    make_link_dirty(table, l);
    LinkScratch& s = links_[static_cast<std::size_t>(l)];
    ++s.dirtied;
    s.dirty_old += old;
    if (frozen) {
      s.frozen += rate;
    } else {
      ++s.unfrozen;
      s.bound += bound;
    }
  }
  for (std::uint32_t k = 0; k < hops; ++k) {
    const int l = route[k];
    if (!left_out(table, l) && !links_[static_cast<std::size_t>(l)].saturated) update_level(table, l);
  }
  const double cap = table.cap[slot];
  if (!frozen && std::isfinite(cap)) push(Event{cap, kCap, slot});
}

void MaxMinRefill::freeze(const FlowTable& table, std::uint32_t slot, double rate) {
  FlowScratch& fs = flows_[slot];
  fs.frozen = true;
  fs.rate = rate;
  const int* route = table.route(slot);
  const double bound = table.bound[slot];
  for (std::uint32_t k = 0, hops = table.hops(slot); k < hops; ++k) {
    const int l = route[k];
    if (left_out(table, l)) continue;
    LinkScratch& s = links_[static_cast<std::size_t>(l)];
    --s.unfrozen;
    s.bound = s.unfrozen == 0 ? 0.0 : s.bound - bound;
    s.frozen += rate;
    if (!s.saturated) update_level(table, l);
  }
}

void MaxMinRefill::saturate(const FlowTable& table, int link, double level) {
  LinkScratch& s = links_[static_cast<std::size_t>(link)];
  s.saturated = true;
  s.level = level;
  for (const std::uint32_t slot : table.links[static_cast<std::size_t>(link)].flows) {
    if (dirty(slot)) {
      if (!flows_[slot].frozen) freeze(table, slot, level);
    } else if (table.rate[slot] > level * (1 + kTolerance)) {
      make_flow_dirty(table, slot, true, level);  // held lower than before
    }
  }
}

bool MaxMinRefill::held(const FlowTable& table, std::uint32_t slot) const {
  const double rate = table.rate[slot];
  if (same_level(table.cap[slot], rate)) return true;
  const int* route = table.route(slot);
  for (std::uint32_t k = 0, hops = table.hops(slot); k < hops; ++k) {
    const auto l = static_cast<std::size_t>(route[k]);
    if (link_dirty(l)) {
      const LinkScratch& s = links_[l];
      if (s.saturated && same_level(s.level, rate)) return true;
    } else if (same_level(table.state.level[l], rate)) {
      return true;
    }
  }
  return false;
}

void MaxMinRefill::check(const FlowTable& table, int link, double level) {
  for (const std::uint32_t slot : table.links[static_cast<std::size_t>(link)].flows) {
    if (dirty(slot) || !same_level(table.rate[slot], level) || held(table, slot)) continue;
    make_flow_dirty(table, slot, false, 0.0);  // nothing holds it there any more: it keeps growing
  }
}

void MaxMinRefill::update_level(const FlowTable& table, int link) {
  LinkScratch& s = links_[static_cast<std::size_t>(link)];
  if (cannot_fill(table, link)) return;  // an earlier event may stay queued: it is recomputed when it comes up
  // The queue needs a lower bound of the saturation level (the exact level is computed when the event comes up).
  // First an O(1) one: clean flows add at most their old rates, so frozen + unfrozen x level + clean >= capacity
  // at saturation. When that says nothing (a link that was full), the exact level.
  const auto li = static_cast<std::size_t>(link);
  double level = level_;
  if (s.unfrozen > 0) {
    level = std::max(level_, (table.state.capacity[li] - s.frozen - (table.state.load[li] - s.dirty_old)) / s.unfrozen);
  }
  if (level >= s.queued) return;
  if (level == level_) {
    level = saturation_level(table, link);
    if (level >= s.queued) return;
  }
  queue_saturation(link, level);
}

bool MaxMinRefill::cannot_fill(const FlowTable& table, int link) const {
  const auto li = static_cast<std::size_t>(link);
  const LinkScratch& s = links_[li];
  return s.frozen + (table.state.load[li] - s.dirty_old) + s.bound < table.state.capacity[li] * (1 - 1e-9);
}

double MaxMinRefill::saturation_level(const FlowTable& table, int link) {
  if (cannot_fill(table, link)) return kInf;
  const double capacity = table.state.capacity[static_cast<std::size_t>(link)];
  const LinkScratch& s = links_[static_cast<std::size_t>(link)];
  CleanRates& clean = clean_[static_cast<std::size_t>(link)];
  auto& rates = clean.rates;
  if (clean.mark != epoch_) {
    clean.mark = epoch_;
    clean.seen = s.dirtied;
    clean.rates.clear();
    for (const std::uint32_t slot : table.links[static_cast<std::size_t>(link)].flows) {
      if (!dirty(slot)) clean.rates.emplace_back(table.rate[slot], slot);
    }
    // By (rate, slot), a total order: any sort gives the same list. Insertion sort for the usual few dozen.
    auto& v = clean.rates;
    if (v.size() > 48) {
      std::sort(v.begin(), v.end());
    } else {
      for (std::size_t i = 1; i < v.size(); ++i) {
        const auto e = v[i];
        std::size_t j = i;
        for (; j > 0 && e < v[j - 1]; --j) v[j] = v[j - 1];
        v[j] = e;
      }
    }
  }
  // Water-filling on this link: flows below the level stay frozen; the others (the unfrozen dirty ones, and the
  // clean ones until their old rates) grow together. Entries of flows that have become dirty are dropped on the
  // way (they stay dirty for the rest of the re-fill).
  double base = s.frozen;
  std::int64_t growing = s.unfrozen;
  if (clean.seen != s.dirtied) {  // flows on it became dirty since the list was last scanned for them
    clean.seen = s.dirtied;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < rates.size(); ++i) {  // (without a branch on the marks, which are unpredictable)
      rates[kept] = rates[i];
      kept += dirty(rates[i].second) ? 0 : 1;
    }
    rates.resize(kept);
  }
  const std::size_t kept = rates.size();
  std::size_t first = 0;
  for (; first < kept && rates[first].first <= level_; ++first) base += rates[first].first;
  growing += static_cast<std::int64_t>(kept - first);
  for (std::size_t i = first;; ++i) {
    if (growing == 0) return kInf;
    const double x = (capacity - base) / static_cast<double>(growing);
    if (i >= kept || x <= rates[i].first) return std::max(x, level_);
    base += rates[i].first;
    --growing;
  }
}

const std::vector<std::pair<std::uint32_t, double>>& MaxMinRefill::run(FlowTable& table) {
  while (!heap_.empty()) {
    const Event e = pop();
    switch (e.kind) {
      case kSaturate: {
        LinkScratch& s = links_[e.id];
        if (s.saturated) break;
        const double x = saturation_level(table, static_cast<int>(e.id));
        if (x > e.level * (1 + kTolerance)) {  // the queued level was a lower bound: queue the exact one
          s.queued = x;
          if (x < kInf) queue_saturation(static_cast<int>(e.id), x);
          break;
        }
        level_ = std::max(level_, x);
        saturate(table, static_cast<int>(e.id), level_);
        break;
      }
      case kCap:
        if (flows_[e.id].frozen) break;
        level_ = std::max(level_, e.level);
        freeze(table, e.id, e.level);
        break;
      case kCheck:
        level_ = std::max(level_, e.level);
        check(table, static_cast<int>(e.id), e.level);
        break;
    }
  }
  for (const int l : dirty_links_) {
    const LinkScratch& s = links_[static_cast<std::size_t>(l)];
    table.state.level[static_cast<std::size_t>(l)] = s.saturated ? s.level : kInf;
  }
  for (const std::uint32_t slot : dirty_flows_) {
    if (!flows_[slot].frozen) throw std::logic_error("max-min re-fill ended with a flow still growing");
    result_.emplace_back(slot, flows_[slot].rate);
  }
  return result_;
}

}  // namespace servesim
