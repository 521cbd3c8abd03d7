// Checked access to TOML documents (scenarios and catalogs).
//
// Every key a component reads goes through a Config, which records it as known. After the components are
// built, check_unknown() walks the document and rejects any key nobody asked for, naming file:line and the
// valid keys of that table. Type and range errors name file:line and the dotted key too. Values with units
// ("450GB/s", "16GiB", "5us") are read with bytes() / bandwidth() / duration().
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "models/common/error.h"
#include "models/common/units.h"

namespace servesim {

class Config {
 public:
  // Parses a TOML file; a syntax error throws InputError "file:line:col: message". The file is opened with
  // read_input_file() (models/common/input_file.h): a directory, FIFO or device, a missing or unreadable file,
  // or one over 256 MiB throws InputError "path: cannot open TOML file: reason".
  [[nodiscard]] static Config from_file(const std::string& path);
  [[nodiscard]] static Config from_string(const std::string& text, const std::string& source_name);

  // Replaces (or adds) the node at a dotted path with VALUE parsed as TOML ("--set path=VALUE"). VALUE must be one
  // TOML value: text after it (a newline and another key, e.g. "1\nx=2") throws InputError instead of being
  // dropped. The node's origin is "--set PATH": a path it holds is relative to the working directory. A part
  // NAME[INDEX] of the path is table INDEX (from 0) of the array of tables NAME ("cluster.pools[1].num_replicas"),
  // which must exist.
  void set(const std::string& dotted_path, const std::string& value_text);
  // Merges the TOML file at `path` over this document: its tables merge into the same tables here (except a
  // table with an `impl` key, which replaces the table here whole), any other value replaces the one here. Merged keys keep their file and line for error messages (an unknown key of the
  // file is reported as "path:line"). Throws InputError for a missing, unreadable (not a regular file, over
  // 256 MiB) or malformed file, for the document's own file (an include cycle), or for a file whose value
  // would replace a table here (or a table a value).
  void merge_file(const std::string& path);

  [[nodiscard]] bool has(const std::string& key) const;
  [[nodiscard]] bool is_array(const std::string& key) const;
  // Whether `key` is a table written with a [header] or dotted keys; an inline table `{ ... }` is a value (false).
  [[nodiscard]] bool is_table(const std::string& key) const;
  // The value at `key` as TOML text that set() takes back unchanged: strings quoted, arrays in brackets, inline
  // tables in braces, a float always with a '.', an exponent or inf/nan (fmt's shortest round-trip digits, so
  // it stays a float of the same value). The value is read whole: keys inside it count as known. fail()s when
  // absent.
  [[nodiscard]] std::string toml_text(const std::string& key) const;
  // Each element of the array at `key` as toml_text() writes it; fail()s unless `key` is an array.
  [[nodiscard]] std::vector<std::string> toml_texts(const std::string& key) const;
  [[nodiscard]] const std::string& path() const { return path_; }
  // "file:line" of this table, or of one of its keys.
  [[nodiscard]] std::string where() const;
  [[nodiscard]] std::string where(const std::string& key) const;
  // The place of a key for an error (InputError's fields): the file and line of its value (or of this table when
  // the key is absent) and key_path(key).
  [[nodiscard]] ErrorPlace place(const std::string& key) const;
  // Dotted name of a key inside this table, e.g. "engine.max_num_seqs".
  [[nodiscard]] std::string key_path(const std::string& key) const;
  // Throws InputError "where(key): key_path(key): message", with its fields: file and line of the key (or of this
  // table when the key is absent), key = key_path(key), detail = message.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // Throws InputError "where(): [table]: message" ("scenario" for the top level), key = this table's path.
  [[noreturn]] void fail(const std::string& message) const;

  [[nodiscard]] std::string str(const std::string& key) const;
  [[nodiscard]] std::string str_or(const std::string& key, const std::string& fallback) const;
  [[nodiscard]] double num(const std::string& key) const;
  [[nodiscard]] double num_or(const std::string& key, double fallback) const;
  [[nodiscard]] std::int64_t integer(const std::string& key) const;
  [[nodiscard]] std::int64_t integer_or(const std::string& key, std::int64_t fallback) const;
  [[nodiscard]] bool boolean_or(const std::string& key, bool fallback) const;
  [[nodiscard]] std::optional<double> num_opt(const std::string& key) const;
  [[nodiscard]] std::optional<std::int64_t> integer_opt(const std::string& key) const;
  [[nodiscard]] std::optional<std::string> str_opt(const std::string& key) const;
  [[nodiscard]] std::vector<double> num_list(const std::string& key) const;
  [[nodiscard]] std::vector<std::string> str_list(const std::string& key) const;
  [[nodiscard]] std::vector<std::int64_t> integer_list_or(const std::string& key,
                                                          std::vector<std::int64_t> fallback) const;

  // Range-checked helpers: "must be > 0" etc. fail with file:line.
  [[nodiscard]] double positive(const std::string& key) const;
  [[nodiscard]] double positive_or(const std::string& key, double fallback) const;
  [[nodiscard]] double non_negative_or(const std::string& key, double fallback) const;
  [[nodiscard]] std::int64_t positive_int(const std::string& key) const;
  [[nodiscard]] std::int64_t positive_int_or(const std::string& key, std::int64_t fallback) const;
  [[nodiscard]] std::int64_t non_negative_int_or(const std::string& key, std::int64_t fallback) const;

  // Integers with an upper limit (models/common/units.h: kMaxTokensPerRequest, kMaxRequestsPerRun): past `max`
  // fails "must be at most MAX (LIMIT; got V)", where `limit` names the limit ("the limit of tokens per request").
  [[nodiscard]] std::int64_t positive_int_at_most(const std::string& key, std::int64_t max, const std::string& limit) const;
  [[nodiscard]] std::int64_t positive_int_at_most_or(const std::string& key, std::int64_t fallback, std::int64_t max,
                                                     const std::string& limit) const;

  // A path: the string at `key`, resolved against the folder of the file the value came from, so that a path
  // inside a scenario (or a merged calibration file) is relative to that file, and a value of --set (whose
  // origin is the command line) relative to the working directory. `base` is the folder for values of the main
  // document (the scenario's folder; documents parsed from a string have no folder of their own). An absolute
  // path is returned as is; a relative one lexically normalised.
  [[nodiscard]] std::string path_value(const std::string& key, const std::filesystem::path& base) const;

  // Quantities with units; a bare number is in the base unit. A duration must be at most kMaxSimSeconds (1e7 s,
  // the simulated-time limit of models/common/units.h).
  [[nodiscard]] Bytes bytes(const std::string& key) const;
  [[nodiscard]] Bytes bytes_or(const std::string& key, Bytes fallback) const;
  [[nodiscard]] BytesPerSec bandwidth(const std::string& key) const;
  [[nodiscard]] BytesPerSec bandwidth_or(const std::string& key, BytesPerSec fallback) const;
  [[nodiscard]] Seconds duration(const std::string& key) const;
  [[nodiscard]] Seconds duration_or(const std::string& key, Seconds fallback) const;

  // Sub-tables. table() requires the key; table_or_empty() gives an empty table when absent.
  [[nodiscard]] Config table(const std::string& key) const;
  [[nodiscard]] Config table_or_empty(const std::string& key) const;
  [[nodiscard]] std::vector<Config> tables(const std::string& key) const;  // array of tables
  [[nodiscard]] std::vector<std::string> keys() const;

  // Marks a key as known without reading it (for keys read elsewhere).
  void mark(const std::string& key) const;
  // Throws InputError for the first key in the whole document that no component read.
  void check_unknown() const;

 private:
  struct Shared {
    toml::table root;
    std::string file;
    std::set<std::string> known;  // dotted paths
  };
  Config(std::shared_ptr<Shared> shared, const toml::table* table, std::string path);
  [[nodiscard]] const toml::node* node(const std::string& key) const;
  [[nodiscard]] const toml::node& require(const std::string& key) const;
  [[nodiscard]] std::string where_of(const toml::node& n) const;
  // The place of node `n` (nullptr: of this table, as where() names it) for an error about `key` (a dotted path).
  [[nodiscard]] ErrorPlace place_of(const toml::node* n, const std::string& key) const;
  void check_table(const toml::table& t, const std::string& path) const;

  std::shared_ptr<Shared> shared_;
  const toml::table* table_;
  std::string path_;
};

}  // namespace servesim
