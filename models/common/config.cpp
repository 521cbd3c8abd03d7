#include "models/common/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/quantity_parse.h"

namespace servesim {
namespace {

// Text for a one-line message: control characters (a newline in a --set value) written as escapes.
std::string one_line(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += '?';
    } else {
      out += ch;
    }
  }
  return out;
}

std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

std::string source_name(const toml::source_region& src, const std::string& fallback) {
  return src.path ? *src.path : fallback;
}

ErrorPlace parse_error_place(const std::string& file, const toml::parse_error& e) {
  const auto line = e.source().begin.line;
  return ErrorPlace{file, line ? std::optional<std::int64_t>(line) : std::nullopt, ""};
}

}  // namespace

Config::Config(std::shared_ptr<Shared> shared, const toml::table* table, std::string path)
    : shared_(std::move(shared)), table_(table), path_(std::move(path)) {}

Config Config::from_string(const std::string& text, const std::string& source_name) {
  auto shared = std::make_shared<Shared>();
  shared->file = source_name;
  try {
    shared->root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    throw InputError(os.str(), parse_error_place(source_name, e), std::string(e.description()));
  }
  const toml::table* root = &shared->root;
  return Config(shared, root, "");
}

Config Config::from_file(const std::string& path) {
  // Read through the checked opener (regular files only, at most 256 MiB), then parsed with the path as the
  // source name so that every node knows its file.
  return from_string(read_input_file(path, "TOML file", kMaxDocumentBytes), path);
}

void Config::set(const std::string& dotted_path, const std::string& value_text) {
  const std::string origin = "--set " + dotted_path;
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value_text, origin);
  } catch (const toml::parse_error& e) {
    const std::string detail = "cannot parse value '" + one_line(value_text) + "' as TOML: " +
                               std::string(e.description()) + " (quote strings: --set 'key=\"text\"')";
    throw InputError(origin + ": " + detail, ErrorPlace{"", std::nullopt, dotted_path}, detail);
  }
  // "v = 1\nx = 2" parses as two keys: everything after the value would be dropped silently.
  if (parsed.size() != 1 || !parsed.contains("v")) {
    const std::string detail = "value '" + one_line(value_text) +
                               "' is more than one TOML value (a newline in it?); give each key its own --set";
    throw InputError(origin + ": " + detail, ErrorPlace{"", std::nullopt, dotted_path}, detail);
  }
  toml::table* t = &shared_->root;
  std::string rest = dotted_path;
  if (rest.empty()) throw InputError("--set: empty key");
  for (;;) {
    const auto dot = rest.find('.');
    const std::string head = rest.substr(0, dot);
    if (head.empty()) throw InputError(origin + ": malformed key");
    if (dot == std::string::npos) {
      toml::node* v = parsed.get("v");
      // Move, so that the node keeps its source ("--set path") for later error messages.
      t->insert_or_assign(head, std::move(*v));
      return;
    }
    // "name[i]." : table i of the array of tables `name`, as messages name it (cluster.pools[1].num_replicas).
    if (const auto open = head.find('['); open != std::string::npos) {
      const std::string name = head.substr(0, open);
      const std::string digits = head.substr(open + 1, head.size() - open - 2);
      if (head.back() != ']' || name.empty() || digits.empty() || digits.size() > 9 ||
          digits.find_first_not_of("0123456789") != std::string::npos) {
        throw InputError(origin + ": malformed key '" + head + "' (a table of an array of tables is NAME[INDEX])");
      }
      toml::node* arr = t->get(name);
      if (arr == nullptr || !arr->is_array_of_tables()) {
        throw InputError(origin + ": '" + name + "' is not an array of tables");
      }
      const std::size_t i = std::stoul(digits);
      if (i >= arr->as_array()->size()) {
        throw InputError(origin + ": '" + name + "' has " + std::to_string(arr->as_array()->size()) +
                         " tables: there is no " + head);
      }
      t = arr->as_array()->get(i)->as_table();
      rest = rest.substr(dot + 1);
      continue;
    }
    toml::node* child = t->get(head);
    if (child == nullptr) {
      t->insert_or_assign(head, toml::table{});
      child = t->get(head);
    }
    if (!child->is_table()) {
      throw InputError(origin + ": '" + head + "' is not a table");
    }
    t = child->as_table();
    rest = rest.substr(dot + 1);
  }
}

namespace {

void merge_into(toml::table& dst, toml::table&& src, const std::string& file, const std::string& prefix) {
  for (auto&& [k, v] : src) {
    const std::string key = join(prefix, std::string(k.str()));
    toml::node* here = dst.get(k.str());
    if (here != nullptr && here->is_table() != v.is_table()) {
      const auto line = v.source().begin.line;
      throw InputError(ErrorPlace{file, line ? std::optional<std::int64_t>(line) : std::nullopt, key},
                       std::string("is ") + (v.is_table() ? "a table" : "a value") + " here but " +
                           (here->is_table() ? "a table" : "a value") + " in the scenario");
    }
    // A table that names its implementation (`impl`) replaces the one here whole: another implementation's
    // keys must not leak into it.
    if (here != nullptr && here->is_table() && !v.as_table()->contains("impl")) {
      merge_into(*here->as_table(), std::move(*v.as_table()), file, key);
    } else {
      dst.insert_or_assign(k.str(), std::move(v));
    }
  }
}

}  // namespace

void Config::merge_file(const std::string& path) {
  // A document merged over itself is an include cycle.
  std::error_code ec;
  if (!shared_->file.empty() && std::filesystem::equivalent(path, shared_->file, ec) && !ec) {
    throw InputError(ErrorPlace{path, std::nullopt, ""},
                     "merges itself (include cycle " + shared_->file + " -> " + path + ")");
  }
  const std::string text = read_input_file(path, "TOML file", kMaxDocumentBytes);
  toml::table parsed;
  try {
    parsed = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw InputError(os.str(), parse_error_place(path, e), std::string(e.description()));
  }
  merge_into(shared_->root, std::move(parsed), path, "");
}

const toml::node* Config::node(const std::string& key) const {
  if (table_ == nullptr) return nullptr;
  return table_->get(key);
}

std::string Config::where_of(const toml::node& n) const {
  const auto& src = n.source();
  const std::string file = source_name(src, shared_->file);
  if (src.begin.line == 0) return file;
  return file + ":" + std::to_string(src.begin.line);
}

ErrorPlace Config::place_of(const toml::node* n, const std::string& key) const {
  // The key's own node, else this table's, else the document's file (as where() and where(key) name them).
  if (n == nullptr && table_ != nullptr && table_->source().begin.line != 0) n = table_;
  if (n == nullptr) return ErrorPlace{shared_->file, std::nullopt, key};
  const auto& src = n->source();
  return ErrorPlace{source_name(src, shared_->file),
                    src.begin.line ? std::optional<std::int64_t>(src.begin.line) : std::nullopt, key};
}

std::string Config::where() const {
  if (table_ == nullptr || table_->source().begin.line == 0) return shared_->file;
  return where_of(*table_);
}

std::string Config::where(const std::string& key) const {
  const toml::node* n = node(key);
  return n ? where_of(*n) : where();
}

std::string Config::key_path(const std::string& key) const { return join(path_, key); }

ErrorPlace Config::place(const std::string& key) const { return place_of(node(key), key_path(key)); }

void Config::fail(const std::string& key, const std::string& message) const {
  throw InputError(where(key) + ": " + key_path(key) + ": " + message, place_of(node(key), key_path(key)), message);
}

void Config::fail(const std::string& message) const {
  throw InputError(where() + ": " + (path_.empty() ? std::string("scenario") : "[" + path_ + "]") + ": " + message,
                   place_of(nullptr, path_), message);
}

void Config::mark(const std::string& key) const { shared_->known.insert(key_path(key)); }

bool Config::has(const std::string& key) const {
  mark(key);
  return node(key) != nullptr;
}

namespace {

// Edit distance (insertions, deletions, substitutions) between a and b, capped: anything above `cap` is cap + 1.
std::size_t edit_distance(const std::string& a, const std::string& b, std::size_t cap) {
  if (a.size() > b.size() + cap || b.size() > a.size() + cap) return cap + 1;
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return std::min(row[b.size()], cap + 1);
}

}  // namespace

const toml::node& Config::require(const std::string& key) const {
  mark(key);
  const toml::node* n = node(key);
  if (n == nullptr) {
    // A key of this table that is not a known key and is spelt like the missing one: likely a misspelling.
    std::string near;
    if (table_ != nullptr && key.find('.') == std::string::npos) {
      for (const auto& [k, v] : *table_) {
        const std::string name(k.str());
        if (shared_->known.count(key_path(name)) > 0) continue;
        if (name.starts_with(key) || key.starts_with(name) || edit_distance(name, key, 2) <= 2) {
          near = name;
          break;
        }
      }
    }
    fail("missing required key '" + key_path(key) + "'" +
         (near.empty() ? std::string() : " (the table has '" + near + "', which is not a known key)"));
  }
  return *n;
}

std::string Config::str(const std::string& key) const {
  const auto& n = require(key);
  if (!n.is_string()) fail(key, "expected a string");
  return std::string(*n.value<std::string>());
}

std::optional<std::string> Config::str_opt(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return str(key);
}

std::string Config::str_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? str(key) : fallback;
}

double Config::num(const std::string& key) const {
  const auto& n = require(key);
  if (!n.is_number()) fail(key, "expected a number");
  const double v = *n.value<double>();
  if (!std::isfinite(v)) fail(key, "must be finite");
  return v;
}

std::optional<double> Config::num_opt(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return num(key);
}

double Config::num_or(const std::string& key, double fallback) const { return has(key) ? num(key) : fallback; }

std::int64_t Config::integer(const std::string& key) const {
  const auto& n = require(key);
  if (n.is_integer()) return *n.value<std::int64_t>();
  if (n.is_floating_point()) {
    const double v = *n.value<double>();
    if (std::floor(v) == v && std::fabs(v) < 9e15) return static_cast<std::int64_t>(v);
  }
  fail(key, "expected an integer");
}

std::optional<std::int64_t> Config::integer_opt(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return integer(key);
}

std::int64_t Config::integer_or(const std::string& key, std::int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
}

bool Config::boolean_or(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& n = require(key);
  if (!n.is_boolean()) fail(key, "expected true or false");
  return *n.value<bool>();
}

std::vector<double> Config::num_list(const std::string& key) const {
  const auto& n = require(key);
  if (!n.is_array()) fail(key, "expected an array of numbers");
  std::vector<double> out;
  for (const auto& e : *n.as_array()) {
    if (!e.is_number()) fail(key, "expected an array of numbers");
    out.push_back(*e.value<double>());
  }
  return out;
}

bool Config::is_array(const std::string& key) const {
  const toml::node* n = node(key);
  return n != nullptr && n->is_array();
}

bool Config::is_table(const std::string& key) const {
  const toml::node* n = node(key);
  return n != nullptr && n->is_table() && !n->as_table()->is_inline();
}

namespace {

// A value as TOML text (Config::toml_text): floats in fmt's shortest round-trip form, kept floats; everything else
// as toml++ writes it.
std::string value_text(const toml::node& n) {
  if (const auto* f = n.as_floating_point()) {
    std::string s = fmt::format("{}", f->get());
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // "5" -> "5.0"; inf and nan contain an 'n'
    return s;
  }
  std::ostringstream os;
  os << toml::toml_formatter(n, toml::toml_formatter::default_flags & ~toml::format_flags::indentation);
  return os.str();
}

// Records every key inside value `n` (at dotted path `path`) as known: a value read as text is read whole.
void mark_inside(const toml::node& n, const std::string& path, std::set<std::string>& known) {
  if (const auto* t = n.as_table()) {
    for (const auto& [k, v] : *t) {
      const std::string p = join(path, std::string(k.str()));
      known.insert(p);
      mark_inside(v, p, known);
    }
  } else if (const auto* a = n.as_array(); a != nullptr && a->is_array_of_tables()) {
    std::size_t i = 0;
    for (const auto& e : *a) {
      const std::string p = path + "[" + std::to_string(i++) + "]";
      known.insert(p);
      mark_inside(e, p, known);
    }
  }
}

}  // namespace

std::string Config::toml_text(const std::string& key) const {
  const auto& n = require(key);
  mark_inside(n, key_path(key), shared_->known);
  return value_text(n);
}

std::vector<std::string> Config::toml_texts(const std::string& key) const {
  const auto& n = require(key);
  if (!n.is_array()) fail(key, "expected an array");
  mark_inside(n, key_path(key), shared_->known);
  std::vector<std::string> out;
  for (const auto& e : *n.as_array()) out.push_back(value_text(e));
  return out;
}

std::vector<std::string> Config::str_list(const std::string& key) const {
  const auto& n = require(key);
  if (!n.is_array()) fail(key, "expected an array of strings");
  std::vector<std::string> out;
  for (const auto& e : *n.as_array()) {
    if (!e.is_string()) fail(key, "expected an array of strings");
    out.push_back(*e.value<std::string>());
  }
  return out;
}

std::vector<std::int64_t> Config::integer_list_or(const std::string& key, std::vector<std::int64_t> fallback) const {
  if (!has(key)) return fallback;
  const auto& n = require(key);
  if (!n.is_array()) fail(key, "expected an array of integers");
  std::vector<std::int64_t> out;
  for (const auto& e : *n.as_array()) {
    if (!e.is_integer()) fail(key, "expected an array of integers");
    out.push_back(*e.value<std::int64_t>());
  }
  return out;
}

double Config::positive(const std::string& key) const {
  const double v = num(key);
  if (!(v > 0.0)) fail(key, "must be > 0 (got " + std::to_string(v) + ")");
  return v;
}

double Config::positive_or(const std::string& key, double fallback) const {
  return has(key) ? positive(key) : fallback;
}

double Config::non_negative_or(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  const double v = num(key);
  if (v < 0.0) fail(key, "must be >= 0 (got " + std::to_string(v) + ")");
  return v;
}

std::int64_t Config::positive_int(const std::string& key) const {
  const auto v = integer(key);
  if (v <= 0) fail(key, "must be a positive integer (got " + std::to_string(v) + ")");
  return v;
}

std::int64_t Config::positive_int_or(const std::string& key, std::int64_t fallback) const {
  return has(key) ? positive_int(key) : fallback;
}

std::int64_t Config::non_negative_int_or(const std::string& key, std::int64_t fallback) const {
  if (!has(key)) return fallback;
  const auto v = integer(key);
  if (v < 0) fail(key, "must be >= 0 (got " + std::to_string(v) + ")");
  return v;
}

std::int64_t Config::positive_int_at_most(const std::string& key, std::int64_t max, const std::string& limit) const {
  const auto v = positive_int(key);
  if (v > max) {
    fail(key, "must be at most " + std::to_string(max) + " (" + limit + "; got " + std::to_string(v) + ")");
  }
  return v;
}

std::int64_t Config::positive_int_at_most_or(const std::string& key, std::int64_t fallback, std::int64_t max,
                                             const std::string& limit) const {
  return has(key) ? positive_int_at_most(key, max, limit) : fallback;
}

std::string Config::path_value(const std::string& key, const std::filesystem::path& base) const {
  const std::string text = str(key);
  if (text.empty()) fail(key, "expected a path, got an empty string");
  const std::filesystem::path p(text);
  if (p.is_absolute()) return text;
  const std::string origin = source_name(require(key).source(), shared_->file);
  std::filesystem::path dir;
  if (origin.rfind("--set ", 0) == 0) {
    dir = std::filesystem::path();  // the command line's: the working directory
  } else if (origin == shared_->file) {
    dir = base;  // the main document's (the scenario's folder)
  } else {
    dir = std::filesystem::path(origin).parent_path();  // a merged file's own folder
  }
  return (dir / p).lexically_normal().string();
}

namespace {
template <class Q, class Parse>
Q quantity(const Config& c, const toml::node& n, const std::string& key, Parse parse, const char* example) {
  if (n.is_number()) {
    const double v = *n.value<double>();
    if (!std::isfinite(v)) c.fail(key, "must be finite");
    if (v < 0) c.fail(key, "must not be negative");
    return Q{v};
  }
  if (!n.is_string()) c.fail(key, std::string("expected a number or a string with a unit, e.g. \"") + example + "\"");
  try {
    return parse(*n.value<std::string>());
  } catch (const InputError& e) {
    c.fail(key, e.what());
  }
}
}  // namespace

Bytes Config::bytes(const std::string& key) const {
  return quantity<Bytes>(*this, require(key), key, parse_bytes, "16GiB");
}
Bytes Config::bytes_or(const std::string& key, Bytes fallback) const { return has(key) ? bytes(key) : fallback; }
BytesPerSec Config::bandwidth(const std::string& key) const {
  return quantity<BytesPerSec>(*this, require(key), key, parse_bandwidth, "450GB/s");
}
BytesPerSec Config::bandwidth_or(const std::string& key, BytesPerSec fallback) const {
  return has(key) ? bandwidth(key) : fallback;
}
Seconds Config::duration(const std::string& key) const {
  const Seconds s = quantity<Seconds>(*this, require(key), key, parse_duration, "5us");
  // The event clock is int64 nanoseconds; every time in a run stays within the simulated-time limit.
  if (s.v > kMaxSimSeconds) {
    fail(key, "must be at most 1e+07 s, the simulated-time limit (got " + short_number(s.v) + " s)");
  }
  return s;
}
Seconds Config::duration_or(const std::string& key, Seconds fallback) const {
  return has(key) ? duration(key) : fallback;
}

Config Config::table(const std::string& key) const {
  const auto& n = require(key);
  if (!n.is_table()) fail(key, "expected a table");
  return Config(shared_, n.as_table(), key_path(key));
}

Config Config::table_or_empty(const std::string& key) const {
  mark(key);
  const toml::node* n = node(key);
  if (n == nullptr) return Config(shared_, nullptr, key_path(key));
  if (!n->is_table()) fail(key, "expected a table");
  return Config(shared_, n->as_table(), key_path(key));
}

std::vector<Config> Config::tables(const std::string& key) const {
  const auto& n = require(key);
  if (!n.is_array_of_tables()) fail(key, "expected an array of tables ([[" + key_path(key) + "]])");
  std::vector<Config> out;
  std::size_t i = 0;
  for (const auto& e : *n.as_array()) {
    const std::string p = key_path(key) + "[" + std::to_string(i++) + "]";
    shared_->known.insert(p);
    out.push_back(Config(shared_, e.as_table(), p));
  }
  return out;
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  if (table_ == nullptr) return out;
  for (const auto& [k, v] : *table_) out.emplace_back(k.str());
  return out;
}

void Config::check_unknown() const {
  if (table_ != nullptr) check_table(*table_, path_);
}

void Config::check_table(const toml::table& t, const std::string& path) const {
  for (const auto& [k, v] : t) {
    const std::string p = join(path, std::string(k.str()));
    if (shared_->known.count(p) == 0) {
      std::string valid;
      const std::string prefix = path.empty() ? "" : path + ".";
      for (const auto& known : shared_->known) {
        if (known.rfind(prefix, 0) != 0) continue;
        const std::string rest = known.substr(prefix.size());
        if (rest.empty() || rest.find('.') != std::string::npos || rest.find('[') != std::string::npos) continue;
        if (!valid.empty()) valid += ", ";
        valid += rest;
      }
      const std::string detail =
          "unknown key '" + p + "'" + (valid.empty() ? std::string() : " (valid: " + valid + ")");
      throw InputError(where_of(v) + ": " + detail, place_of(&v, p), detail);
    }
    if (v.is_table()) check_table(*v.as_table(), p);
    if (v.is_array_of_tables()) {
      std::size_t i = 0;
      for (const auto& e : *v.as_array()) check_table(*e.as_table(), p + "[" + std::to_string(i++) + "]");
    }
  }
}

}  // namespace servesim
