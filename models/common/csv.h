// Comma-separated fields of one line (no quoting: servesim's CSV files never put commas inside fields);
// a trailing carriage return is dropped.
#pragma once
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

}  // namespace servesim
