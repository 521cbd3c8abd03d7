// Incremental max-min fair rates: after flows start or end, progressive filling (models/net/flow_rates.h) re-run
// over only what can change, with the rest of the network taken as it was.
//
// Why this is enough. Compare progressive filling of the network before the change (rates r, each link's
// saturation level) with filling after it, as the common level rises from 0. The two runs stay identical until a
// link crossed by a flow that started or ended saturates at another level (or not at all), and after that they
// differ only where a difference has spread: through a flow whose rate differs, to the links it crosses. So the
// re-fill tracks explicitly only the "dirty" flows (those whose trajectory may differ) and "dirty" links (those
// such a flow crosses, and those a flow left); every other ("clean") flow is known to grow until its old rate r_f
// and freeze there. A dirty link's saturation level is where its load reaches capacity:
//     frozen dirty rates + (unfrozen dirty flows) x level + sum over clean flows of min(r_f, level) = capacity;
// the queue holds a lower bound of it (O(1) to compute when something on the link changes; the link's one queued
// event is moved down to it) and the exact level is worked out when that entry comes up. Events, smallest level first:
//   (a) a dirty link saturates at level x: its unfrozen dirty flows freeze at x; clean flows on it with r_f > x
//       become dirty, frozen at x (a lower rate), spreading the change to their other links;
//   (b) a dirty flow reaches its cap and freezes there;
//   (c) the level reaches the old saturation level of a dirty link: the clean flows held there (r_f equal to it)
//       freeze at r_f only if something still holds them at that level (their cap, a clean link that saturated
//       at r_f, or a dirty link that has just saturated at r_f); otherwise they become dirty and keep growing.
// When no event is left, every dirty flow is frozen at its new rate; clean flows keep theirs. The result is the
// max-min fair allocation of the whole network (up to rounding), as flow_finish_times' full re-solve gives it
// (tests/unit/test_flow_network.cpp compares the two after every start and end). Everything dirty lies in the
// connected component of the change, so this is progressive filling on that component, restricted to the part
// that moves: its cost grows with the flows whose rates change and the links they cross, not with the network
// or the component. (The re-fill is servesim's own construction; progressive filling itself is Bertsekas and
// Gallager's, models/net/flow_rates.h.) Levels are compared with a relative tolerance of 1e-12, so that rounding
// in recomputed levels never counts as a change. Links that can never saturate (LinkStates::dominated: every flow
// on them also crosses a link of smaller capacity) are left out, unless a flow has just left them.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "sim/network/flow_table.h"

namespace servesim {

class MaxMinRefill {
 public:
  // A re-fill: begin(), then flow_added() for each new flow (attached, rate 0) and link_left() for each link that
  // a flow left, then run().
  void begin(const FlowTable& table);
  void flow_added(const FlowTable& table, std::uint32_t slot);
  void link_left(const FlowTable& table, int link);
  // Runs the re-fill and sets the `level` of the links it touched. Returns (slot, new rate) for every flow whose
  // rate it re-solved (the rate may come out unchanged), in a deterministic order. The table's rates are left for
  // the caller to apply.
  const std::vector<std::pair<std::uint32_t, double>>& run(FlowTable& table);

 private:
  enum Kind : std::int32_t { kSaturate = 0, kCap = 1, kCheck = 2 };
  // Queued events are unique by (kind, id): a link has at most one kSaturate event (moved when its level drops),
  // and kCheck and kCap events are queued once per re-fill (when the link or flow becomes dirty).
  struct Event {
    double level;
    Kind kind;
    std::uint32_t id;  // link (kSaturate, kCheck) or flow slot (kCap)
  };
  // The heap's order: smallest level first; at one level saturations, then caps, then checks (a check asks what
  // saturated there).
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      if (a.level != b.level) return a.level > b.level;
      if (a.kind != b.kind) return a.kind > b.kind;
      return a.id > b.id;
    }
  };
  static constexpr std::uint32_t kNotQueued = 0xffffffffU;
  // A dirty link's scratch (valid while link_mark_ equals epoch_).
  struct LinkScratch {
    double frozen = 0;     // sum of the new rates of its frozen dirty flows
    double dirty_old = 0;  // sum of the old rates of its dirty flows
    double bound = 0;      // sum of the rate bounds of its unfrozen dirty flows
    double queued = 0;     // the level of its kSaturate event (+infinity: none)
    double level = 0;      // where it saturated in this re-fill
    std::int32_t unfrozen = 0;
    std::uint32_t dirtied = 0;      // its flows made dirty so far
    std::uint32_t at = kNotQueued;  // its kSaturate event's index in heap_
    bool saturated = false;
  };
  // Per link, the (old rate, slot) of the flows that were clean when first needed, by rate (entries that became
  // dirty since are skipped); this re-fill's when `mark` equals epoch_.
  struct CleanRates {
    std::uint32_t mark = 0;
    std::uint32_t seen = 0;  // the link's `dirtied` when the list last dropped its dirty flows
    std::vector<std::pair<double, std::uint32_t>> rates;
  };
  // A dirty flow's scratch (valid while flow_mark_ equals epoch_).
  struct FlowScratch {
    double rate = 0;
    bool frozen = false;
  };

  [[nodiscard]] bool dirty(std::uint32_t slot) const { return flow_mark_[slot] == epoch_; }
  [[nodiscard]] bool link_dirty(std::size_t link) const { return link_mark_[link] == epoch_; }
  // A link the re-fill leaves out: dominated, and not dirty (a link a flow left is dirty from the start).
  [[nodiscard]] bool left_out(const FlowTable& table, int link) const {
    const auto l = static_cast<std::size_t>(link);
    return table.state.dominated[l] != 0 && !link_dirty(l);
  }
  void make_link_dirty(const FlowTable& table, int link);
  void make_flow_dirty(const FlowTable& table, std::uint32_t slot, bool frozen, double rate);
  void freeze(const FlowTable& table, std::uint32_t slot, double rate);
  void saturate(const FlowTable& table, int link, double level);
  void check(const FlowTable& table, int link, double level);
  [[nodiscard]] bool held(const FlowTable& table, std::uint32_t slot) const;
  // After a change on a dirty link: makes sure its kSaturate event's level is at most a lower bound of its
  // saturation level (O(1)); the exact level is computed when the event comes up.
  void update_level(const FlowTable& table, int link);
  // The link cannot fill, even with every unfrozen dirty flow at its bound.
  [[nodiscard]] bool cannot_fill(const FlowTable& table, int link) const;
  // The level at which the dirty link saturates given what is known now (+infinity: it does not), >= level_.
  [[nodiscard]] double saturation_level(const FlowTable& table, int link);
  // The event heap (a binary min-heap in Later's order that keeps each kSaturate event's index in its link's `at`).
  void push(Event e);
  // Moves the link's queued kSaturate event down to `level`, or queues one there.
  void queue_saturation(int link, double level);
  Event pop();
  void place(std::size_t i, const Event& e);
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);

  // Marks equal to epoch_ are this re-fill's; epoch_ starts over (and every mark is cleared) when it wraps.
  std::uint32_t epoch_ = 0;
  double level_ = 0;  // the filling's current level
  std::vector<std::uint32_t> link_mark_;  // by link: dirty in the current re-fill when equal to epoch_
  std::vector<LinkScratch> links_;
  std::vector<CleanRates> clean_;
  std::vector<std::uint32_t> flow_mark_;  // by slot: dirty in the current re-fill when equal to epoch_
  std::vector<FlowScratch> flows_;
  std::vector<int> dirty_links_;
  std::vector<std::uint32_t> dirty_flows_;
  std::vector<Event> heap_;
  std::vector<std::pair<std::uint32_t, double>> result_;
};

}  // namespace servesim
