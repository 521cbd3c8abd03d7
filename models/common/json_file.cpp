#include "models/common/json_file.h"

#include <algorithm>

#include "models/common/error.h"
#include "models/common/input_file.h"

namespace servesim {
namespace {

using json = nlohmann::json;

// Finds where the parser stopped (a number overflow carries no position in its exception; the SAX interface
// is told it).
class ErrorLocator final : public nlohmann::json_sax<json> {
 public:
  std::size_t position = 0;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception&) override {
    position = pos;
    return false;
  }
};

// "LINE:COL" of byte offset `pos` (the count of characters read, so the offending one is at pos - 1).
std::string line_col(std::string_view text, std::size_t pos, std::size_t first_line) {
  const std::size_t at = std::min(pos == 0 ? 0 : pos - 1, text.size());
  const auto nl = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
  const std::size_t line_start = at == 0 ? 0 : text.rfind('\n', at - 1);
  const std::size_t col = line_start == std::string_view::npos || at == 0 ? at + 1 : at - line_start;
  return std::to_string(first_line + static_cast<std::size_t>(nl)) + ":" + std::to_string(col);
}

}  // namespace

std::string json_error_message(const json::exception& e) {
  std::string m = e.what();
  if (m.rfind("[json.exception.", 0) == 0) {
    const auto close = m.find("] ");
    if (close != std::string::npos) m.erase(0, close + 2);
  }
  if (m.rfind("parse error", 0) == 0) {
    const auto colon = m.find(": ");
    if (colon != std::string::npos) m.erase(0, colon + 2);
  }
  return m;
}

json parse_json_text(std::string_view text, const std::string& source, std::size_t first_line) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(source + ":" + line_col(text, e.byte, first_line) + ": not valid JSON: " + json_error_message(e));
  } catch (const json::exception& e) {
    // E.g. out_of_range.406, "number overflow parsing '1e999'": find where with a second, event-only pass.
    ErrorLocator locator;
    (void)json::sax_parse(text, &locator);
    std::string msg = json_error_message(e);
    if (e.id == 406) msg += " (beyond the range of a double)";
    throw InputError(source + ":" + line_col(text, locator.position, first_line) + ": " + msg);
  }
}

json parse_json_file(const std::string& path, const std::string& what) {
  return parse_json_text(read_input_file(path, what, kMaxDocumentBytes), path);
}

}  // namespace servesim
