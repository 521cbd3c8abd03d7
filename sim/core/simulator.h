// The event core: a clock in int64 nanoseconds and a queue of events ordered by (time, priority, insertion
// sequence). Ties never depend on pointer values or hash order, so a run is a pure function of its inputs.
// Components receive their events through the EventTarget interface; `arg` is theirs to interpret.
#pragma once
#include <cstdint>
#include <queue>
#include <vector>

#include "models/common/units.h"

namespace servesim {

class Simulator;

class EventTarget {
 public:
  virtual ~EventTarget() = default;
  virtual void on_event(Simulator& sim, std::uint64_t arg) = 0;
};

// Lower runs first among events at the same time.
// engine_start runs after every arrival of the same instant, so that simultaneous requests share a first step.
enum class Priority : std::int32_t { step_end = 0, transfer_end = 1, arrival = 2, request_ready = 3, engine_start = 4 };

struct Event {
  Ns time;
  std::int32_t priority;
  std::uint64_t seq;
  EventTarget* target;
  std::uint64_t arg;
};

struct EventLater {
  bool operator()(const Event& a, const Event& b) const {
    if (a.time != b.time) return a.time > b.time;
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.seq > b.seq;
  }
};

class Simulator {
 public:
  [[nodiscard]] Ns now() const { return now_; }
  // Schedules `target->on_event(arg)` at absolute time `at` (>= now: an earlier time is a bug, std::logic_error).
  // A time past kMaxSimSeconds (models/common/units.h) throws InputError: the run's events added up beyond the
  // simulated-time limit.
  void schedule(Ns at, Priority priority, EventTarget* target, std::uint64_t arg = 0);
  // Runs events until the queue is empty or the next event lies beyond `horizon`. Returns events processed
  // (inline events included).
  std::uint64_t run(Ns horizon = kNever);
  // An event handled by its target without the queue. Called from inside an event handler (during run()) for an
  // event it would schedule at `at` with `priority`: when that event would be the very next one run -- nothing in
  // the queue comes before it in (time, priority, insertion sequence) order, where it would be the newest, and
  // `at` lies within run()'s horizon -- advances the clock to `at`, counts it as a processed event and returns
  // true: the caller then handles it at once, exactly as its on_event would have. Otherwise returns false and
  // changes nothing: the caller schedules it. Same errors as schedule(). The order of everything that happens is
  // that of scheduling the event, so outputs are byte-identical; a run saves the queue's push and pop.
  [[nodiscard]] bool advance_inline(Ns at, Priority priority) {
    check_time(at);
    if (at > horizon_) return false;
    if (!queue_.empty()) {
      const Event& next = queue_.top();
      // Equal time and priority: the queued event is older, so it runs first.
      if (next.time < at || (next.time == at && next.priority <= static_cast<std::int32_t>(priority))) return false;
    }
    now_ = at;
    ++inline_;
    return true;
  }
  [[nodiscard]] std::uint64_t events_processed() const { return processed_; }
  [[nodiscard]] bool idle() const { return queue_.empty(); }

 private:
  void check_time(Ns at) const;

  Ns now_{0};
  Ns horizon_ = kNever;  // of the run in progress
  std::uint64_t next_seq_ = 0;
  std::uint64_t processed_ = 0;
  std::uint64_t inline_ = 0;  // events handled inline during the run in progress
  std::priority_queue<Event, std::vector<Event>, EventLater> queue_;
};

}  // namespace servesim
