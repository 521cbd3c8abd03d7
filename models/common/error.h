// Errors. Library code throws; only main() turns an exception into a message and an exit code.
//   InputError      the user's input is wrong (scenario, trace, flag, impossible configuration): exit code 2.
//                   Its message is one line that names file:line or the offending key. The same place is also
//                   kept as fields (file, line, key) with the message's rest (detail), so that a caller that
//                   knows better where an error belongs (the scenario key that named a file, the table a model
//                   error came from) re-places it from the fields, never by reading the message text.
//   InputFileError  an InputError for an input file that cannot be opened or read at all (missing, a directory
//                   or FIFO, over the size limit, unreadable: models/common/input_file.h); file() is the path.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace servesim {

// Where an input error is. Each part is empty when unknown.
struct ErrorPlace {
  std::string file;                  // the input file, as it was named ("" when unknown)
  std::optional<std::int64_t> line;  // 1-based line in `file` (nullopt when unknown)
  std::string key;                   // dotted key ("engine.max_num_seqs", "cluster.pools[1].role"); "" when unknown
};

class InputError : public std::runtime_error {
 public:
  // A message alone: every field empty, detail() the whole message (a message that names its place in its text
  // only, as most readers' errors still do).
  explicit InputError(const std::string& message) : InputError(message, ErrorPlace{}, message) {}
  explicit InputError(const char* message) : InputError(std::string(message)) {}
  // "FILE[:LINE]: KEY: DETAIL"; an empty part is left out with its ": " ("KEY: DETAIL" without a file).
  InputError(ErrorPlace place, const std::string& detail) : InputError(format(place, detail), place, detail) {}
  // A message of its own shape, with its place and its detail (the message without the place) given apart.
  InputError(const std::string& message, ErrorPlace place, std::string detail)
      : std::runtime_error(message),
        fields_(std::make_shared<const Fields>(Fields{std::move(place), std::move(detail)})) {}

  [[nodiscard]] const std::string& file() const noexcept { return fields_->place.file; }
  [[nodiscard]] std::optional<std::int64_t> line() const noexcept { return fields_->place.line; }
  [[nodiscard]] const std::string& key() const noexcept { return fields_->place.key; }
  [[nodiscard]] const ErrorPlace& place() const noexcept { return fields_->place; }
  // The message without its place: for "scenario.toml:12: engine.max_num_seqs: must be > 0", "must be > 0".
  [[nodiscard]] const std::string& detail() const noexcept { return fields_->detail; }
  // Whether the error knows its file or key (an unplaced one is for the caller to place).
  [[nodiscard]] bool placed() const noexcept { return !file().empty() || !key().empty(); }

  // "FILE[:LINE]: KEY: DETAIL" as the two-argument constructor writes it.
  [[nodiscard]] static std::string format(const ErrorPlace& place, const std::string& detail) {
    std::string s;
    if (!place.file.empty()) {
      s = place.file;
      if (place.line) s += ":" + std::to_string(*place.line);
      s += ": ";
    }
    if (!place.key.empty()) s += place.key + ": ";
    return s + detail;
  }

 private:
  struct Fields {
    ErrorPlace place;
    std::string detail;
  };
  std::shared_ptr<const Fields> fields_;  // shared: copying an exception does not throw
};

class InputFileError : public InputError {
 public:
  // "PATH: DETAIL" with file() = path (the path as named; "''" in the text when empty).
  InputFileError(const std::string& path, const std::string& detail)
      : InputError((path.empty() ? std::string("''") : path) + ": " + detail, ErrorPlace{path, std::nullopt, ""},
                   detail) {}
};

}  // namespace servesim
