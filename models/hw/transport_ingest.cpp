#include "models/hw/transport_ingest.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <istream>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "models/common/csv.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/net/transport_calibration.h"

namespace servesim {
namespace {

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream ss(line);
  std::string tok;
  while (ss >> tok) out.push_back(tok);
  return out;
}

bool parse_finite(const std::string& s, double& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty() && std::isfinite(v);
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// The value of a "| Key: value |" box line, or nullopt when `line` is not that key's line.
std::optional<std::string> box_value(const std::string& line, std::string_view key) {
  const std::string t = trim(line);
  if (t.size() < 2 || t.front() != '|') return std::nullopt;
  std::string inner = trim(t.substr(1, t.back() == '|' ? t.size() - 2 : std::string::npos));
  if (!starts_with(inner, key)) return std::nullopt;
  return trim(inner.substr(key.size()));
}

// ---- ucx_perftest ----

struct UcxState {
  std::optional<double> message_size;
  std::optional<bool> stream;  // from the table header: overhead (true) / latency (false)
  std::string send_memory, recv_memory;
  struct Row {
    double time_us = 0, bandwidth_mib = 0;
    std::size_t line = 0;
  };
  std::optional<Row> pending;
};

// A result row: optional prefix ("Final:", "[thread N]", a test name), then 8 (or 4) numbers.
std::optional<UcxState::Row> ucx_row(const std::string& line, std::size_t n, bool* final_row) {
  std::vector<std::string> tok = split_ws(line);
  *final_row = false;
  if (tok.empty()) return std::nullopt;
  std::size_t first = 0;
  if (tok[0] == "Final:") {
    *final_row = true;
    first = 1;
  } else if (tok[0] == "[thread" && tok.size() > 1 && !tok[1].empty() && tok[1].back() == ']') {
    first = 2;
  } else {
    double v = 0;
    if (!parse_finite(tok[0], v)) first = 1;  // -f: the test name of a batch file
  }
  std::vector<double> num;
  for (std::size_t i = first; i < tok.size(); ++i) {
    double v = 0;
    if (!parse_finite(tok[i], v)) return std::nullopt;
    num.push_back(v);
  }
  if (num.size() != 8 && num.size() != 4) return std::nullopt;
  if (!(num[0] >= 1.0) || num[0] != std::floor(num[0])) return std::nullopt;
  for (const double v : num) {
    if (v < 0) return std::nullopt;
  }
  UcxState::Row r;
  r.line = n;
  r.time_us = num.size() == 8 ? num[3] : num[1];
  r.bandwidth_mib = num.size() == 8 ? num[5] : num[2];
  if (!(r.time_us > 0)) return std::nullopt;
  if (first == 1 && !*final_row) *final_row = true;  // -f prints one final row per test
  return r;
}

void ucx_emit(TransportLog& log, UcxState& st, const UcxState::Row& r) {
  const std::string where = fmt::format("{}:{}", log.source, r.line);
  if (!st.message_size) {
    throw InputError(where + ": result row without a '| Message size: N |' line before it (run ucx_perftest "
                     "without -v, which drops the parameter box)");
  }
  if (!st.stream) {
    throw InputError(where + ": result row without a table header naming 'latency (usec)' or 'overhead (usec)'");
  }
  const double calc = *st.message_size / (r.time_us * 1e-6) / (1024.0 * 1024.0);
  const double tol = r.bandwidth_mib >= 10.0 ? 0.01 : 0.02;
  if (r.bandwidth_mib > 0 && std::fabs(calc - r.bandwidth_mib) > tol * r.bandwidth_mib + 0.005) {
    throw InputError(fmt::format("{}: bandwidth {:.2f} MB/s does not match message size {:.0f} B / {:g} us = {:.2f} "
                                 "MB/s (is the message size of this test?)",
                                 where, r.bandwidth_mib, *st.message_size, r.time_us, calc));
  }
  TransportLogSample s;
  s.bytes = *st.message_size;
  s.time_us = r.time_us;
  s.stream = *st.stream;
  s.bandwidth_GBps = r.bandwidth_mib * 1024.0 * 1024.0 / 1e9;
  s.line = r.line;
  log.samples.push_back(s);
}

// ---- nixlbench ----

// Splits a header on runs of 2 or more spaces.
std::vector<std::string> header_columns(const std::string& line) {
  std::vector<std::string> out;
  const std::string t = trim(line);
  std::size_t pos = 0;
  while (pos < t.size()) {
    auto gap = t.find("  ", pos);
    out.push_back(trim(t.substr(pos, gap == std::string::npos ? std::string::npos : gap - pos)));
    if (gap == std::string::npos) break;
    pos = t.find_first_not_of(' ', gap);
    if (pos == std::string::npos) break;
  }
  return out;
}

std::optional<std::size_t> column(const std::vector<std::string>& cols, std::string_view name) {
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (cols[i] == name) return i;
  }
  return std::nullopt;
}

// "Backend (--backend=[UCX,...])        : UCX" -> ("Backend", "UCX"); an option longer than nixlbench's 60-column
// field has no space before its ':'.
std::optional<std::pair<std::string, std::string>> option_line(const std::string& line) {
  const auto colon = line.rfind(": ");
  if (colon == std::string::npos) return std::nullopt;
  const auto paren = line.find(" (");
  const std::string key = trim(line.substr(0, paren != std::string::npos && paren < colon ? paren : colon));
  return std::pair{key, trim(line.substr(colon + 2))};
}

}  // namespace

TransportLog parse_ucx_perftest_log(std::istream& in, const std::string& source_name) {
  TransportLog log;
  log.tool = "ucx_perftest";
  log.source = source_name;
  UcxState st;
  std::string line;
  std::size_t n = 0;
  auto flush = [&] {
    if (st.pending) ucx_emit(log, st, *st.pending);
    st.pending.reset();
  };
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    if (t.empty()) continue;
    if (t.front() == '|' || t.front() == '+') {
      if (box_value(t, "API:")) {
        flush();
        continue;
      }
      if (auto v = box_value(t, "Test:")) {
        log.test = *v;
        continue;
      }
      if (auto v = box_value(t, "Message size:")) {
        double s = 0;
        if (!parse_finite(*v, s) || !(s >= 1.0)) {
          throw InputError(fmt::format("{}:{}: message size '{}' is not a positive number", source_name, n, *v));
        }
        st.message_size = s;
        continue;
      }
      if (auto v = box_value(t, "Send memory:")) st.send_memory = *v;
      if (auto v = box_value(t, "Recv memory:")) st.recv_memory = *v;
      if (t.find("overhead (usec)") != std::string::npos) st.stream = true;
      if (t.find("latency (usec)") != std::string::npos) st.stream = false;
      continue;
    }
    if (t.front() == '[' && !starts_with(t, "[thread ")) {
      ++log.skipped_lines;  // a UCX log line
      continue;
    }
    bool final_row = false;
    if (auto r = ucx_row(t, n, &final_row)) {
      if (final_row) {
        st.pending.reset();
        ucx_emit(log, st, *r);
      } else {
        st.pending = r;
      }
      continue;
    }
    ++log.skipped_lines;
  }
  flush();
  if (!st.send_memory.empty() || !st.recv_memory.empty()) log.memory = st.send_memory + " -> " + st.recv_memory;
  if (log.samples.empty()) {
    throw InputError(source_name + ": no ucx_perftest results found (expected its table: a '| Message size: N |' "
                                   "box and result rows)");
  }
  return log;
}

TransportLog parse_nixlbench_log(std::istream& in, const std::string& source_name) {
  TransportLog log;
  log.tool = "nixlbench";
  log.source = source_name;
  std::string backend, op, initiator, target;
  int threads = 1, depth = 1;
  std::vector<std::string> cols;
  std::optional<std::size_t> c_block, c_batch, c_bw, c_lat;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    if (t.empty()) continue;
    const std::string where = fmt::format("{}:{}", source_name, n);
    if (t.find("Block Size (B)") != std::string::npos) {
      cols = header_columns(t);
      c_block = column(cols, "Block Size (B)");
      c_batch = column(cols, "Batch Size");
      c_bw = column(cols, "B/W (GB/Sec)");
      c_lat = column(cols, "Avg Lat. (us)");
      if (!c_batch || (!c_bw && !c_lat)) {
        throw InputError(where + ": nixlbench header without 'Batch Size' and 'B/W (GB/Sec)' or 'Avg Lat. (us)'");
      }
      continue;
    }
    if (!cols.empty()) {
      const auto tok = split_ws(t);
      if (tok.size() == cols.size()) {
        std::vector<double> v(tok.size());
        bool ok = true;
        for (std::size_t i = 0; i < tok.size() && ok; ++i) ok = parse_finite(tok[i], v[i]) && v[i] >= 0;
        const double block = ok ? v[*c_block] : 0;
        const double batch = ok ? v[*c_batch] : 0;
        if (ok && block >= 1 && batch >= 1 && block == std::floor(block) && batch == std::floor(batch)) {
          TransportLogSample s;
          s.bytes = block * batch;
          s.bandwidth_GBps = c_bw ? v[*c_bw] : 0.0;
          if (s.bandwidth_GBps > 0) {
            s.time_us = s.bytes / (s.bandwidth_GBps * 1e3);
          } else if (c_lat && v[*c_lat] > 0) {
            s.time_us = v[*c_lat] * batch;
            s.bandwidth_GBps = s.bytes / (s.time_us * 1e3);
          }
          if (s.time_us > 0) {
            s.stream = threads > 1 || depth > 1;
            s.line = n;
            log.samples.push_back(s);
            continue;
          }
        }
      }
    }
    if (const auto opt = option_line(t)) {
      const std::string& key = opt->first;
      const std::string& value = opt->second;
      auto as_int = [&where, &value](const std::string& what) {
        double d = 0;
        if (!parse_finite(value, d) || d < 1 || d != std::floor(d)) {
          throw InputError(where + ": " + what + " '" + value + "' is not a positive integer");
        }
        return static_cast<int>(std::min(d, 1e9));
      };
      if (key == "Backend") backend = value;
      if (key == "Op type") op = value;
      if (key == "Initiator seg type") initiator = value;
      if (key == "Target seg type") target = value;
      if (key == "Num threads") threads = as_int(key);
      if (key == "Pipeline depth") depth = as_int(key);
      if (key == "Scheme" && value != "pairwise") {
        throw InputError(where + ": scheme '" + value + "': a transport profile is one pair's (--scheme=pairwise)");
      }
      if ((key == "Num initiator dev" || key == "Num target dev") && as_int(key) > 1) {
        throw InputError(where + ": " + key + " " + value + ": a transport profile is one pair's (one device each)");
      }
      continue;
    }
    if (t.find_first_not_of("-*=") != std::string::npos) ++log.skipped_lines;
  }
  log.test = trim(backend + " " + op);
  if (!initiator.empty() || !target.empty()) log.memory = initiator + " -> " + target;
  if (log.samples.empty()) {
    throw InputError(source_name + ": no nixlbench result rows found (expected a 'Block Size (B)  Batch Size ...' "
                                   "header and its rows)");
  }
  return log;
}

TransportLog read_ucx_perftest_log(const std::string& path) {
  std::ifstream in = open_input_file(path, "ucx_perftest log");
  return parse_ucx_perftest_log(in, path);
}

TransportLog read_nixlbench_log(const std::string& path) {
  std::ifstream in = open_input_file(path, "nixlbench log");
  return parse_nixlbench_log(in, path);
}

bool gpu_memory_both_sides(const TransportLog& log) {
  if (log.memory.empty()) return true;
  const auto arrow = log.memory.find(" -> ");
  auto gpu = [](const std::string& m) { return m == "cuda" || m == "VRAM" || m == "cuda-managed"; };
  return arrow != std::string::npos && gpu(log.memory.substr(0, arrow)) && gpu(log.memory.substr(arrow + 4));
}

std::string transport_csv_source(const std::string& source_name) {
  const auto slash = source_name.find_last_of('/');
  std::string out;
  for (const char c : slash == std::string::npos ? source_name : source_name.substr(slash + 1)) {
    if (c == ',' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) continue;
    out.push_back(c);
  }
  return out;
}

std::string merge_transport_csv(const std::string& existing, const std::string& existing_name,
                                const std::vector<TransportLog>& logs, const std::string& transport) {
  std::set<std::string> replaced;
  for (const auto& l : logs) replaced.insert(transport_csv_source(l.source));
  std::ostringstream out;
  std::istringstream in(existing);
  std::string line;
  std::size_t n = 0;
  bool header = false;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') {
      out << t << "\n";
      continue;
    }
    if (!header) {
      if (t != kTransportCsvHeader) {
        throw InputError(fmt::format("{}:{}: not a transport profile (expected the header '{}')", existing_name, n,
                                     kTransportCsvHeader));
      }
      header = true;
      out << t << "\n";
      continue;
    }
    // transport,bytes,time_us,mode,source (the source may contain commas)
    std::vector<std::string> f;
    std::size_t pos = 0;
    for (int k = 0; k < 4; ++k) {
      const auto comma = t.find(',', pos);
      if (comma == std::string::npos) break;
      f.push_back(trim(t.substr(pos, comma - pos)));
      pos = comma + 1;
    }
    f.push_back(trim(t.substr(pos)));
    if (f.size() < 3) throw InputError(fmt::format("{}:{}: not a transport profile row", existing_name, n));
    const std::string source = f.size() > 4 ? f[4] : "";
    if (f[0] == transport && replaced.count(source) != 0) continue;
    out << t << "\n";
  }
  if (!header) out << kTransportCsvHeader << "\n";
  for (const auto& l : logs) {
    const std::string source = transport_csv_source(l.source);
    for (const auto& s : l.samples) {
      out << fmt::format("{},{:.0f},{:.9g},{},{}\n", transport, s.bytes, s.time_us, s.stream ? "stream" : "single",
                         source);
    }
  }
  return out.str();
}

}  // namespace servesim
