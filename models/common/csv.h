// Comma-separated fields of one line, and small helpers of the CSV and JSONL readers (no quoting: servesim's CSV
// files never put commas inside fields); a trailing carriage return is dropped.
#pragma once
#include <cstddef>
#include <istream>
#include <string>
#include <vector>

namespace servesim {

[[nodiscard]] inline std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (const char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

// `s` without leading and trailing spaces, tabs, carriage returns and newlines.
[[nodiscard]] inline std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// At most `n` (>= 1) comma-separated fields of `line`, each trimmed; the last keeps any further commas.
[[nodiscard]] inline std::vector<std::string> split_fields(const std::string& line, std::size_t n) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (out.size() + 1 < n) {
    const auto comma = line.find(',', pos);
    if (comma == std::string::npos) break;
    out.push_back(trim(line.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  out.push_back(trim(line.substr(pos)));
  return out;
}

// Calls f(line, lineno) for every line of `in` that holds more than spaces and tabs, its trailing carriage return
// removed; lineno counts every line from 1 (for FILE:LINE messages).
template <class F>
void for_each_nonblank_line(std::istream& in, F&& f) {
  std::string line;
  std::size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    f(line, lineno);
  }
}

}  // namespace servesim
