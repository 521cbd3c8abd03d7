// A pool's view of a scenario table: [[cluster.pools]] parallel and engine sub-tables override the scenario's
// [parallel] and [engine] key by key.
#pragma once
#include <optional>
#include <string>
#include <utility>

#include "models/common/config.h"
#include "models/common/error.h"

namespace servesim {

// Reads each key from the override table when it has the key, else from the base table, so that every read and
// every error names the table the value came from ("cluster.pools[1].engine.max_num_seqs" at its file:line, or
// "engine.max_num_seqs"). A sub-table is one key: an override's [..engine.overhead] replaces the base's whole.
// Without an override it is the base table itself (the scenario without pools reads exactly as before).
class LayeredTable {
 public:
  explicit LayeredTable(Config base) : base_(std::move(base)) {}
  LayeredTable(Config over, Config base) : over_(std::move(over)), base_(std::move(base)) {}

  // The table `key` is read from. Marks the key as known in both: a base key that every pool overrides is the
  // default of a pool that would not, not an unknown key.
  [[nodiscard]] const Config& at(const std::string& key) const {
    if (over_ && over_->has(key)) {
      (void)base_.has(key);
      return *over_;
    }
    return base_;
  }
  // Whether either table has `key`.
  [[nodiscard]] bool has(const std::string& key) const { return at(key).has(key); }
  // The sub-table `key` of the table that has it (an empty one when neither has).
  [[nodiscard]] Config sub(const std::string& key) const { return at(key).table_or_empty(key); }
  // Fails at `key` of the table it is read from (the base's for a key neither has).
  [[noreturn]] void fail(const std::string& key, const std::string& message) const { at(key).fail(key, message); }
  // file:line and dotted path of `key` where it is read from.
  [[nodiscard]] ErrorPlace place(const std::string& key) const { return at(key).place(key); }
  [[nodiscard]] const Config& base() const { return base_; }
  [[nodiscard]] const std::optional<Config>& over() const { return over_; }

 private:
  std::optional<Config> over_;
  Config base_;
};

}  // namespace servesim
