#include "models/common/quantity_parse.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "models/common/error.h"

namespace servesim {
namespace {

// Splits "1.5MiB" into (1.5, "MiB"). Throws when there is no leading number.
std::pair<double, std::string> split_number(std::string_view text, const char* what) {
  std::string s(text);
  const char* begin = s.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (end == begin) throw InputError("'" + s + "' is not a " + what);
  std::string unit(end);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.erase(0, 1);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.pop_back();
  if (!std::isfinite(v)) throw InputError("'" + s + "' is not a finite number");
  if (!(v >= 0.0)) throw InputError("'" + s + "' must not be negative");
  return {v, unit};
}

double scale_of(const std::string& unit, const std::vector<std::pair<const char*, double>>& table,
                std::string_view text, const char* what) {
  for (const auto& [name, k] : table) {
    if (unit == name) return k;
  }
  std::string valid;
  for (const auto& [name, k] : table) {
    if (*name == '\0') continue;
    if (!valid.empty()) valid += ", ";
    valid += name;
  }
  throw InputError("'" + std::string(text) + "' is not a " + what + " (units: " + valid + ")");
}

double finite(double v, std::string_view text) {
  if (!std::isfinite(v)) throw InputError("'" + std::string(text) + "' is out of range");
  return v;
}

}  // namespace

Bytes parse_bytes(std::string_view text) {
  static const std::vector<std::pair<const char*, double>> units = {
      {"", 1.0},     {"B", 1.0},     {"KiB", kKiB}, {"MiB", kMiB}, {"GiB", kGiB}, {"TiB", kGiB * 1024.0},
      {"KB", 1e3},   {"kB", 1e3},    {"MB", 1e6},   {"GB", 1e9},   {"TB", 1e12}};
  const auto [v, unit] = split_number(text, "size");
  return Bytes{finite(v * scale_of(unit, units, text, "size"), text)};
}

BytesPerSec parse_bandwidth(std::string_view text) {
  static const std::vector<std::pair<const char*, double>> units = {
      {"", 1.0},           {"B/s", 1.0},          {"KB/s", 1e3},         {"MB/s", 1e6},
      {"GB/s", 1e9},       {"TB/s", 1e12},        {"KiB/s", kKiB},       {"MiB/s", kMiB},
      {"GiB/s", kGiB},     {"Mb/s", 1e6 / 8.0},   {"Gb/s", 1e9 / 8.0},   {"Tb/s", 1e12 / 8.0},
      {"Mbps", 1e6 / 8.0}, {"Gbps", 1e9 / 8.0},   {"Tbps", 1e12 / 8.0}};
  const auto [v, unit] = split_number(text, "bandwidth");
  return BytesPerSec{finite(v * scale_of(unit, units, text, "bandwidth"), text)};
}

Seconds parse_duration(std::string_view text) {
  static const std::vector<std::pair<const char*, double>> units = {
      {"", 1.0}, {"s", 1.0}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}, {"min", 60.0}, {"h", 3600.0}};
  const auto [v, unit] = split_number(text, "duration");
  return Seconds{finite(v * scale_of(unit, units, text, "duration"), text)};
}

}  // namespace servesim
