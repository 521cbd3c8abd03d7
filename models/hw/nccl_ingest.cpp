#include "models/hw/nccl_ingest.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <istream>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/units.h"

namespace servesim {
namespace {

enum class Factor { all_reduce, n_minus_1, one };

struct CollectiveInfo {
  const char* name;  // canonical (nccl-tests binary name without _perf)
  const char* key;   // lower case, no separators
  Factor factor;
  bool compound;     // name unambiguous enough to be recognised inside a file name
};

constexpr CollectiveInfo kCollectives[] = {
    {"all_reduce", "allreduce", Factor::all_reduce, true},
    {"all_gather", "allgather", Factor::n_minus_1, true},
    {"reduce_scatter", "reducescatter", Factor::n_minus_1, true},
    {"alltoall", "alltoall", Factor::n_minus_1, true},
    {"broadcast", "broadcast", Factor::one, true},
    {"reduce", "reduce", Factor::one, false},
    {"sendrecv", "sendrecv", Factor::one, true},
    {"gather", "gather", Factor::n_minus_1, false},
    {"scatter", "scatter", Factor::n_minus_1, false},
};

const CollectiveInfo* find_collective(const std::string& canonical) {
  for (const auto& c : kCollectives) {
    if (canonical == c.name) return &c;
  }
  return nullptr;
}

std::string basename_of(std::string_view path) {
  const auto slash = path.find_last_of('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// Lower case without '_', '-', ' '.
std::string squash(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '_' || c == '-' || c == ' ') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream ss(line);
  std::string tok;
  while (ss >> tok) out.push_back(tok);
  return out;
}

bool parse_uint(const std::string& s, std::uint64_t& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_int(const std::string& s, std::int64_t& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// A finite decimal number with nothing after it ("1290.5x", "nan", "inf" are not).
bool parse_finite(const std::string& s, double& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty() && std::isfinite(v);
}

bool looks_numeric(const std::string& s) {
  double v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p != s.data();
}

struct ResultGroup {
  std::size_t time = 0, algbw = 0, busbw = 0;
  std::optional<std::size_t> wrong;
};

// Column positions derived from a `# size count ...` header line.
struct Columns {
  std::size_t n = 0;  // words in the header (without the leading '#')
  std::size_t size = 0, count = 0;
  std::optional<std::size_t> type, redop, root;
  std::vector<ResultGroup> groups;  // [0] out-of-place, [1] in-place
  bool timestamp = false;           // the rows' timestamp is two words ("YYYY-MM-DD HH:MM:SS")
};

std::optional<std::size_t> index_of(const std::vector<std::string>& words, std::string_view w, std::size_t from = 0) {
  for (std::size_t i = from; i < words.size(); ++i) {
    if (words[i] == w) return i;
  }
  return std::nullopt;
}

// Words of a '#' line, without the '#'.
std::vector<std::string> comment_words(const std::string& line) {
  const auto hash = line.find('#');
  return split_ws(line.substr(hash + 1));
}

bool is_header(const std::vector<std::string>& words) {
  return index_of(words, "size").has_value() && index_of(words, "count").has_value();
}

Columns parse_header(const std::vector<std::string>& words, const std::string& where) {
  Columns c;
  c.n = words.size();
  c.size = *index_of(words, "size");
  c.count = *index_of(words, "count");
  c.type = index_of(words, "type");
  c.redop = index_of(words, "redop");
  c.root = index_of(words, "root");
  c.timestamp = index_of(words, "timestamp").has_value();
  if (index_of(words, "cputime")) {
    throw InputError(where + ": the log reports cputime (nccl-tests -C 1), not the collective's time; rerun without -C");
  }
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (words[i] != "time") continue;
    const auto end = index_of(words, "time", i + 1).value_or(words.size());
    const auto algbw = index_of(words, "algbw", i + 1);
    const auto busbw = index_of(words, "busbw", i + 1);
    if (!algbw || !busbw || *algbw >= end || *busbw >= end) {
      throw InputError(where + ": column header has 'time' without 'algbw' and 'busbw' after it");
    }
    ResultGroup g{i, *algbw, *busbw, std::nullopt};
    for (const char* w : {"#wrong", "wrong", "error", "#error"}) {
      const auto k = index_of(words, w, i + 1);
      if (k && *k < end) {
        g.wrong = *k;
        break;
      }
    }
    c.groups.push_back(g);
  }
  if (c.groups.empty()) throw InputError(where + ": column header has no 'time' column");
  if (c.groups.size() > 2) c.groups.resize(2);
  return c;
}

// Parses one data row into its out-of-place and in-place samples; nullopt if the row is not a valid data row.
std::optional<std::vector<CollectiveSample>> parse_row(const std::vector<std::string>& tokens, const Columns& c) {
  const std::size_t expected = c.n + (c.timestamp ? 1 : 0);
  // Older nccl-tests print an empty redop for collectives without one, so the row is one word short.
  std::optional<std::size_t> blank;
  if (tokens.size() == expected - 1 && c.redop) {
    blank = c.redop;
  } else if (tokens.size() != expected) {
    return std::nullopt;
  }
  auto at = [&](std::size_t header_index) -> const std::string& {
    return tokens[blank && header_index > *blank ? header_index - 1 : header_index];
  };
  std::uint64_t size = 0, count = 0;
  if (!parse_uint(at(c.size), size) || !parse_uint(at(c.count), count)) return std::nullopt;
  if (c.type && looks_numeric(at(*c.type))) return std::nullopt;
  if (c.redop && !blank && looks_numeric(at(*c.redop))) return std::nullopt;
  std::int64_t root = 0;
  if (c.root && !parse_int(at(*c.root), root)) return std::nullopt;
  std::vector<CollectiveSample> out;
  for (std::size_t g = 0; g < c.groups.size(); ++g) {
    const ResultGroup& rg = c.groups[g];
    CollectiveSample s;
    s.bytes = static_cast<double>(size);
    s.in_place = g == 1;
    if (!parse_finite(at(rg.time), s.time_us) || !(s.time_us > 0)) return std::nullopt;
    if (!parse_finite(at(rg.algbw), s.algbw_GBps) || s.algbw_GBps < 0) return std::nullopt;
    if (!parse_finite(at(rg.busbw), s.busbw_GBps) || s.busbw_GBps < 0) return std::nullopt;
    if (rg.wrong) {
      double wrong = 0;
      const std::string& w = at(*rg.wrong);
      // A row that failed nccl-tests' own check is not a measurement to keep.
      if (w != "N/A" && (!parse_finite(w, wrong) || wrong != 0)) return std::nullopt;
    }
    out.push_back(s);
  }
  return out;
}

// A collective named by a NAME_perf word (a path is allowed), or nullopt.
std::optional<std::string> collective_of_binary(const std::string& word) {
  const std::string base = squash(basename_of(word));
  if (!ends_with(base, "perf") && !ends_with(base, "perfmpi")) return std::nullopt;
  return canonical_nccl_collective(word);
}

std::optional<std::string> collective_from_file_name(const std::string& source) {
  const std::string base = squash(basename_of(source));
  std::optional<std::string> found;
  for (const auto& c : kCollectives) {
    if (!c.compound || base.find(c.key) == std::string::npos) continue;
    if (found) return std::nullopt;  // two names: ambiguous
    found = c.name;
  }
  return found;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string fmt_g(double v) { return fmt::format("{:.6g}", v); }

}  // namespace

std::optional<std::string> canonical_nccl_collective(std::string_view name) {
  std::string key = squash(basename_of(name));
  if (ends_with(key, "perfmpi")) {
    key.resize(key.size() - 7);
  } else if (ends_with(key, "perf")) {
    key.resize(key.size() - 4);
  }
  for (const auto& c : kCollectives) {
    if (key == c.key) return std::string(c.name);
  }
  return std::nullopt;
}

std::string nccl_collective_names() {
  std::string out;
  for (const auto& c : kCollectives) out += (out.empty() ? "" : ", ") + std::string(c.name);
  return out;
}

double nccl_busbw_factor(const std::string& collective, int ranks) {
  const CollectiveInfo* c = find_collective(collective);
  if (c == nullptr) {
    throw InputError("collective '" + collective + "' is unknown (valid: " + nccl_collective_names() + ")");
  }
  if (ranks < 1) throw InputError("collective '" + collective + "': ranks must be >= 1");
  const double n = ranks;
  switch (c->factor) {
    case Factor::all_reduce:
      return 2.0 * (n - 1.0) / n;
    case Factor::n_minus_1:
      return (n - 1.0) / n;
    case Factor::one:
      return 1.0;
  }
  return 1.0;
}

double nccl_algbw_GBps(double bytes, double time_us) { return bytes / (time_us * 1e-6) / kGB; }

double nccl_busbw_GBps(const std::string& collective, int ranks, double bytes, double time_us) {
  return nccl_algbw_GBps(bytes, time_us) * nccl_busbw_factor(collective, ranks);
}

double recomputed_busbw_GBps(const CollectiveSample& s) {
  return nccl_busbw_GBps(s.collective, s.ranks, s.bytes, s.time_us);
}

std::optional<double> busbw_diff_pct(const CollectiveSample& s) {
  if (s.busbw_GBps == 0) return std::nullopt;
  return 100.0 * (recomputed_busbw_GBps(s) - s.busbw_GBps) / s.busbw_GBps;
}

bool busbw_precision_allows(const CollectiveSample& s) { return s.busbw_GBps >= 1.0; }

std::optional<std::string> busbw_mismatch(const NcclLog& log) {
  const CollectiveSample* worst = nullptr;
  double worst_pct = 0;
  for (const auto& s : log.samples) {
    if (!busbw_precision_allows(s)) continue;
    const double d = std::fabs(*busbw_diff_pct(s));
    if (d > worst_pct) {
      worst_pct = d;
      worst = &s;
    }
  }
  if (worst == nullptr || worst_pct <= 1.0) return std::nullopt;
  return fmt::format(
      "{}: the log's busbw column differs by {:.1f} % from {} over {} ranks (at {:.0f} bytes: {} GB/s printed, "
      "{:.2f} recomputed); is the collective or the rank count wrong?",
      log.source, worst_pct, log.collective, log.ranks, worst->bytes, worst->busbw_GBps, recomputed_busbw_GBps(*worst));
}

NcclLog parse_nccl_tests_log(std::istream& in, const std::string& source_name, std::optional<std::string> collective) {
  NcclLog log;
  log.source = source_name;
  std::optional<std::string> given;
  if (collective) {
    given = canonical_nccl_collective(*collective);
    if (!given) {
      throw InputError("collective '" + *collective + "' is unknown (valid: " + nccl_collective_names() + ")");
    }
  }
  std::optional<std::string> started;  // from "# Collective test starting: NAME"
  std::string started_where;
  std::set<std::string> commands;      // collectives of NAME_perf words
  std::set<std::int64_t> rank_ids;
  std::int64_t nranks = 0;
  std::optional<Columns> columns;
  std::vector<CollectiveSample> samples;

  std::string line;
  std::size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = source_name + ":" + std::to_string(lineno);
    const std::string t = trim(line);
    if (t.empty()) continue;
    if (t[0] == '#') {
      const auto words = comment_words(t);
      if (is_header(words)) {
        columns = parse_header(words, where);
        continue;
      }
      if (words.size() >= 3 && words[0] == "Rank" && (words[2] == "Group" || words[2] == "Pid")) {
        std::int64_t r = 0;
        if (parse_int(words[1], r) && r >= 0) rank_ids.insert(r);
        continue;
      }
      const std::string body = trim(t.substr(1));
      const std::string kStart = "Collective test starting:";
      if (body.rfind(kStart, 0) == 0) {
        const std::string prog = trim(body.substr(kStart.size()));
        const auto name = canonical_nccl_collective(prog);
        if (!name) {
          throw InputError(where + ": collective test '" + prog + "' is not supported (supported: " +
                           nccl_collective_names() + ")");
        }
        if (started && *started != *name) {
          throw InputError(where + ": a second collective test (" + prog + ") in one log after " + *started +
                           " (" + started_where + "); split the log per collective");
        }
        if (given && *given != *name) {
          throw InputError(where + ": the log is from " + prog + ", not " + *given);
        }
        started = name;
        started_where = where;
      }
      continue;
    }
    const auto tokens = split_ws(t);
    if (columns) {
      if (auto row = parse_row(tokens, *columns)) {
        for (auto& s : *row) samples.push_back(std::move(s));
        continue;
      }
    }
    ++log.skipped_lines;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] == "nranks" && i + 1 < tokens.size()) {
        std::int64_t n = 0;
        if (parse_int(tokens[i + 1], n) && n > nranks) nranks = n;
      }
      if (auto c = collective_of_binary(tokens[i])) commands.insert(*c);
    }
  }

  if (samples.empty()) {
    throw InputError(source_name + ": no nccl-tests data rows found" +
                     (columns ? "" : " (no '# size count ...' column header line)"));
  }
  if (given) {
    log.collective = *given;
  } else if (started) {
    log.collective = *started;
  } else if (commands.size() == 1) {
    log.collective = *commands.begin();
  } else if (auto from_name = collective_from_file_name(source_name); from_name && commands.empty()) {
    log.collective = *from_name;
  } else {
    throw InputError(source_name + ": cannot tell which collective the log measured (no '# Collective test starting' " +
                     "line, no single NAME_perf command, no collective in the file name); give it explicitly (valid: " +
                     nccl_collective_names() + ")");
  }
  if (!rank_ids.empty()) {
    log.ranks = static_cast<int>(rank_ids.size());
  } else if (nranks > 0) {
    if (nranks > (1 << 20)) throw InputError(source_name + ": nranks " + std::to_string(nranks) + " is out of range");
    log.ranks = static_cast<int>(nranks);
  } else {
    throw InputError(source_name + ": cannot tell the number of ranks (no '#  Rank N Group G ...' device lines and no " +
                     "'nranks N' in the log)");
  }
  for (auto& s : samples) {
    s.collective = log.collective;
    s.ranks = log.ranks;
  }
  log.samples = std::move(samples);
  return log;
}

NcclLog read_nccl_tests_log(const std::string& path, std::optional<std::string> collective) {
  std::ifstream in = open_input_file(path, "nccl-tests log");
  return parse_nccl_tests_log(in, path, std::move(collective));
}

std::string collectives_csv_source(const std::string& source_name) {
  std::string out;
  for (const char c : basename_of(source_name)) {
    if (c == ',' || static_cast<unsigned char>(c) < 0x20) {
      out.push_back('_');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void write_collectives_csv_rows(std::ostream& out, const NcclLog& log) {
  if (log.ranks < 2) {
    throw InputError(log.source + ": " + std::to_string(log.ranks) +
                     " rank; collectives.csv needs measurements over at least 2 ranks");
  }
  const std::string source = collectives_csv_source(log.source);
  for (const auto& s : log.samples) {
    if (s.in_place || s.bytes <= 0) continue;
    const double algbw = nccl_algbw_GBps(s.bytes, s.time_us);
    out << fmt::format("{},{},{:.0f},{},{},{},{}\n", s.collective, s.ranks, s.bytes, s.time_us, fmt_g(algbw),
                       fmt_g(algbw * nccl_busbw_factor(s.collective, s.ranks)), source);
  }
}

std::string merge_collectives_csv(const std::string& existing, const std::string& existing_name,
                                  const std::vector<NcclLog>& logs) {
  std::set<std::tuple<std::string, std::string, std::string>> replaced;  // (collective, ranks, source)
  for (const auto& l : logs) replaced.emplace(l.collective, std::to_string(l.ranks), collectives_csv_source(l.source));

  std::ostringstream out;
  std::istringstream in(existing);
  std::string line;
  std::size_t lineno = 0;
  bool header = false;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = existing_name + ":" + std::to_string(lineno);
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') {
      out << line << "\n";
      continue;
    }
    if (!header) {
      std::string normalized;
      std::istringstream fields(t);
      std::string f;
      while (std::getline(fields, f, ',')) normalized += (normalized.empty() ? "" : ",") + trim(f);
      if (normalized != kCollectivesCsvHeader) {
        throw InputError(where + ": expected the collectives.csv header '" + std::string(kCollectivesCsvHeader) + "'");
      }
      header = true;
      out << line << "\n";
      continue;
    }
    // collective,ranks,... ,source (the source may hold commas in hand-written files: it is the rest of the line)
    std::vector<std::string> f;
    std::size_t pos = 0;
    while (f.size() < 6) {
      const auto comma = t.find(',', pos);
      if (comma == std::string::npos) break;
      f.push_back(trim(t.substr(pos, comma - pos)));
      pos = comma + 1;
    }
    f.push_back(trim(t.substr(pos)));
    if (f.size() != 7) {
      throw InputError(where + ": expected 7 comma-separated fields (" + std::string(kCollectivesCsvHeader) + "), got " +
                       std::to_string(f.size()));
    }
    if (replaced.count({f[0], f[1], f[6]}) != 0) continue;
    out << line << "\n";
  }
  if (!header) out << kCollectivesCsvHeader << "\n";
  for (const auto& l : logs) write_collectives_csv_rows(out, l);
  return out.str();
}

}  // namespace servesim
