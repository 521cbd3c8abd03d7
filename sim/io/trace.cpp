#include "sim/io/trace.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "models/common/csv.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/units.h"

namespace servesim {
namespace {


std::int64_t parse_count(const std::string& s, const std::string& where, const char* what) {
  std::int64_t v = 0;
  const auto* end = s.data() + s.size();
  const auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end) throw InputError(where + ": " + what + " '" + s + "' is not an integer");
  if (v < 0) throw InputError(where + ": " + what + " must not be negative");
  if (v > kMaxTokensPerRequest) {
    throw InputError(where + ": " + what + " " + s + " is past the limit of " + std::to_string(kMaxTokensPerRequest) +
                     " tokens per request");
  }
  return v;
}

double parse_seconds(const std::string& s, const std::string& where) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') throw InputError(where + ": arrival_s '" + s + "' is not a number");
  if (!std::isfinite(v) || v > kMaxSimSeconds) {
    throw InputError(where + ": arrival_s '" + s + "' is not a finite time within the simulated-time limit of 1e+07 s");
  }
  if (v < 0) throw InputError(where + ": arrival_s must not be negative");
  return v;
}

// Years an Azure-format TIMESTAMP may have: the Unix era up to 2100 (the published traces are 2023 and 2024).
constexpr int kMinTraceYear = 1970;
constexpr int kMaxTraceYear = 2100;

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// (days since 1970-01-01, seconds into the day): kept apart so that differences keep the trace's 100 ns
// resolution (seconds since 1970 in one double would round to ~0.2 us).
std::pair<std::int64_t, double> parse_timestamp(const std::string& s, const std::string& where) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  double sec = 0;
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%d %d:%d:%lf%n", &y, &mo, &d, &h, &mi, &sec, &consumed) != 6 ||
      consumed != static_cast<int>(s.size()) || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
      mi < 0 || mi > 59 || !(sec >= 0) || sec >= 61) {
    throw InputError(where + ": TIMESTAMP '" + s + "' is not 'YYYY-MM-DD HH:MM:SS.fff'");
  }
  // A date that does not exist (2023-02-30) or a year no recorded trace has is a damaged row, not a time.
  if (y < kMinTraceYear || y > kMaxTraceYear) {
    throw InputError(where + ": TIMESTAMP '" + s + "': year " + std::to_string(y) + " is outside " +
                     std::to_string(kMinTraceYear) + "-" + std::to_string(kMaxTraceYear));
  }
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int days = kDays[mo - 1] + (mo == 2 && leap ? 1 : 0);
  if (d > days) {
    throw InputError(where + ": TIMESTAMP '" + s + "': day " + std::to_string(d) + " does not exist in month " +
                     std::to_string(mo) + " of " + std::to_string(y));
  }
  return {days_from_civil(y, unsigned(mo), unsigned(d)), h * 3600.0 + mi * 60.0 + sec};
}

}  // namespace

std::vector<std::string> trace_formats() { return {"azure", "csv"}; }

std::vector<TraceRow> read_trace(const std::string& path, const std::string& format) {
  if (format != "azure" && format != "csv") {
    throw InputError("trace format '" + format + "' is unknown (valid: azure, csv)");
  }
  std::ifstream in = open_input_file(path, "trace file");
  std::string line;
  std::size_t lineno = 0;
  std::vector<TraceRow> rows;
  const std::string expected =
      format == "azure" ? "TIMESTAMP,ContextTokens,GeneratedTokens" : "arrival_s,prompt_tokens,output_tokens";
  std::pair<std::int64_t, double> t0{0, 0.0};
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = path + ":" + std::to_string(lineno);
    if (lineno == 1) {
      if (line != expected) throw InputError(where + ": expected header '" + expected + "'");
      continue;
    }
    if (line.empty()) continue;
    const auto f = split_csv(line);
    if (f.size() != 3) throw InputError(where + ": expected 3 columns, got " + std::to_string(f.size()));
    TraceRow r;
    if (format == "azure") {
      const auto t = parse_timestamp(f[0], where);
      if (rows.empty()) t0 = t;
      r.arrival_s = double(t.first - t0.first) * 86400.0 + (t.second - t0.second);
      if (r.arrival_s > kMaxSimSeconds) {
        throw InputError(where + ": TIMESTAMP '" + f[0] + "' is " + short_number(r.arrival_s) +
                         " s after the first row, past the simulated-time limit of 1e+07 s");
      }
    } else {
      r.arrival_s = parse_seconds(f[0], where);
    }
    r.prompt_tokens = parse_count(f[1], where, "prompt tokens");
    r.output_tokens = parse_count(f[2], where, "output tokens");
    if (r.prompt_tokens == 0) throw InputError(where + ": prompt tokens must be > 0");
    if (r.output_tokens == 0) throw InputError(where + ": output tokens must be > 0");
    if (!rows.empty() && r.arrival_s < rows.back().arrival_s) {
      throw InputError(where + ": arrival times must not decrease");
    }
    rows.push_back(r);
  }
  if (rows.empty()) throw InputError(path + ": trace has no rows");
  return rows;
}

}  // namespace servesim
