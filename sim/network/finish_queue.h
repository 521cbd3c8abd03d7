// The flows' finish times, earliest first: an indexed binary min-heap over flow slots. Setting a slot's key moves
// it up or down from where it was, so a small change of a finish time (the usual one: a rate re-solved a little
// up or down) costs O(1) moves on average, and the earliest is read in O(1). A caller may also leave a key below
// the slot's true key (FlowNetwork does when a finish only moves later) and have refresh() correct the top.
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

#include "models/common/units.h"

namespace servesim {

class FinishQueue {
 public:
  // Ordered by (finish, frac, serial): exact time finish + frac ns, then start order.
  struct Key {
    Ns finish{0};
    double frac = 0;
    std::uint64_t serial = 0;
  };

  [[nodiscard]] bool empty() const { return heap_.empty(); }
  // The slot with the earliest key, and that key (the queue must not be empty).
  [[nodiscard]] std::uint32_t top() const { return heap_.front().slot; }
  [[nodiscard]] const Key& top_key() const { return heap_.front().key; }

  // Inserts the slot, or moves it to its new key.
  void set(std::uint32_t slot, Key key) {
    if (slot >= pos_.size()) pos_.resize(static_cast<std::size_t>(slot) + 1, kNone);
    std::size_t i = pos_[slot];
    if (i == kNone) {
      i = heap_.size();
      heap_.push_back(Entry{key, slot});
      pos_[slot] = static_cast<std::uint32_t>(i);
      sift_up(i);
      return;
    }
    const bool up = before(key, heap_[i].key);
    heap_[i].key = key;
    if (up) {
      sift_up(i);
    } else {
      sift_down(i);
    }
  }

  // Keys may be left lower than a slot's true key (the caller skips set() when a key only grows): then the top may
  // be such a lower bound. refresh() gives the top its true key, key_of(slot), and sifts it down, until the top's
  // key is true; the top is then the true earliest (every other key is at most its true key).
  template <class KeyOf>
  void refresh(KeyOf key_of) {
    while (!heap_.empty()) {
      const Key k = key_of(heap_.front().slot);
      const Key& have = heap_.front().key;
      if (k.finish == have.finish && k.frac == have.frac && k.serial == have.serial) return;
      heap_.front().key = k;
      sift_down(0);
    }
  }

  // Removes the slot (no-op when absent).
  void erase(std::uint32_t slot) {
    if (slot >= pos_.size() || pos_[slot] == kNone) return;
    const std::size_t i = pos_[slot];
    pos_[slot] = kNone;
    const Entry last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;
    heap_[i] = last;
    pos_[last.slot] = static_cast<std::uint32_t>(i);
    if (i > 0 && before(last.key, heap_[(i - 1) / 2].key)) {
      sift_up(i);
    } else {
      sift_down(i);
    }
  }

 private:
  struct Entry {
    Key key;
    std::uint32_t slot;
  };
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

  [[nodiscard]] static bool before(const Key& a, const Key& b) {
    if (a.finish != b.finish) return a.finish < b.finish;
    if (a.frac != b.frac) return a.frac < b.frac;
    return a.serial < b.serial;
  }
  void place(std::size_t i, const Entry& e) {
    heap_[i] = e;
    pos_[e.slot] = static_cast<std::uint32_t>(i);
  }
  void sift_up(std::size_t i) {
    const Entry e = heap_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!before(e.key, heap_[parent].key)) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, e);
  }
  void sift_down(std::size_t i) {
    const Entry e = heap_[i];
    const std::size_t n = heap_.size();
    while (true) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(heap_[child + 1].key, heap_[child].key)) ++child;
      if (!before(heap_[child].key, e.key)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, e);
  }

  std::vector<Entry> heap_;
  std::vector<std::uint32_t> pos_;  // per slot: its index in heap_, or kNone
};

}  // namespace servesim
