#include "models/hw/profile.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "models/common/csv.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/json_file.h"
#include "models/common/units.h"

namespace servesim {
namespace {

// Upper limits of a profile's sizes (profile.h lists them): far above any benchmark, and low enough that what the
// calibrated predictor builds from a row (one chunk per prefill sequence, batch x tokens products in int64) stays
// small and exact.
constexpr std::int64_t kMaxProfileBatch = std::int64_t{1} << 16;
constexpr std::int64_t kMaxProfileTokens = kMaxTokensPerRequest;
constexpr std::int64_t kMaxProfileHeads = std::int64_t{1} << 16;
constexpr std::int64_t kMaxProfileWidth = std::int64_t{1} << 30;
constexpr std::int64_t kMaxProfileRanks = std::int64_t{1} << 20;

void check_at_most(std::int64_t v, std::int64_t max, const std::string& where, const char* name) {
  if (v > max) {
    throw InputError(where + ": " + name + " " + std::to_string(v) + " is past the limit of " + std::to_string(max));
  }
}

// A row's repetitions: min_us <= median_us <= max_us.
void check_time_order(const std::string& where, double median_us, double min_us, double max_us) {
  if (!(min_us <= median_us && median_us <= max_us)) {
    throw InputError(where + ": times must satisfy min_us <= median_us <= max_us");
  }
}


std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The mixed decode batches an attention.csv lists in its comments (attn_bench.py):
//   # decode mixed batches: mode=groups (...)
//   # mixed decode batch: 8x256 + 8x4096 (sequences x cached tokens) -> batch 16, kv_total 34816
struct MixedBatches {
  std::string mode = "groups";  // attn_bench.py's default
  std::vector<std::vector<AttentionSample::Group>> mixes;
};

MixedBatches read_mixed_batches(const std::string& path) {
  MixedBatches out;
  std::ifstream in = open_input_file(path, "profile CSV");
  std::string line;
  std::size_t lineno = 0;
  const std::string mode_tag = "# decode mixed batches: mode=", mix_tag = "# mixed decode batch: ";
  while (std::getline(in, line)) {
    ++lineno;
    if (line.rfind(mode_tag, 0) == 0) {
      const std::string rest = line.substr(mode_tag.size());
      out.mode = rest.substr(0, rest.find_first_of(" \t\r"));
      if (out.mode != "groups" && out.mode != "pad") {
        throw InputError(path + ":" + std::to_string(lineno) + ": mixed-batch mode '" + out.mode +
                         "' is not one of: groups, pad");
      }
    } else if (line.rfind(mix_tag, 0) == 0) {
      std::string body = line.substr(mix_tag.size());
      body = body.substr(0, std::min(body.find('('), body.find("->")));
      std::vector<AttentionSample::Group> groups;
      std::int64_t sequences = 0;
      std::size_t start = 0;
      while (start <= body.size()) {
        const auto plus = body.find('+', start);
        const std::string term = trim(body.substr(start, plus == std::string::npos ? std::string::npos : plus - start));
        const auto x = term.find('x');
        char* e1 = nullptr;
        char* e2 = nullptr;
        const std::string n = x == std::string::npos ? "" : term.substr(0, x);
        const std::string l = x == std::string::npos ? "" : term.substr(x + 1);
        const long long nv = std::strtoll(n.c_str(), &e1, 10), lv = std::strtoll(l.c_str(), &e2, 10);
        if (n.empty() || l.empty() || *e1 != '\0' || *e2 != '\0' || nv <= 0 || lv <= 0) {
          throw InputError(path + ":" + std::to_string(lineno) + ": mixed decode batch term '" + term +
                           "' is not SEQUENCESxTOKENS");
        }
        // The batch (all terms' sequences) and each length within the row limits, so that the batch's kv_total
        // (sum of sequences x tokens) stays far below 2^63.
        const std::string where = path + ":" + std::to_string(lineno);
        check_at_most(lv, kMaxProfileTokens, where, "mixed decode batch cached tokens");
        check_at_most(nv, kMaxProfileBatch, where, "mixed decode batch sequences");
        sequences += nv;
        check_at_most(sequences, kMaxProfileBatch, where, "mixed decode batch size");
        groups.push_back({nv, lv});
        if (plus == std::string::npos) break;
        start = plus + 1;
      }
      if (groups.size() > 1) out.mixes.push_back(std::move(groups));
    }
  }
  return out;
}

// Whether an optional profile file is there at all (of any type: read_profile_csv refuses what is not a regular
// file, with the reason).
bool present(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::symlink_status(p, ec).type() != std::filesystem::file_type::not_found;
}

}  // namespace

double CsvRow::number(std::size_t i, const char* name) const {
  const std::string& s = fields.at(i);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) throw InputError(where + ": " + name + " '" + s + "' is not a number");
  return v;
}

std::int64_t CsvRow::integer(std::size_t i, const char* name) const {
  const double v = number(i, name);
  if (v != std::floor(v)) throw InputError(where + ": " + name + " '" + fields.at(i) + "' is not an integer");
  // Beyond int64 the conversion would be undefined; no profile size comes near.
  if (std::fabs(v) > 9e18) throw InputError(where + ": " + name + " '" + fields.at(i) + "' is out of range (|v| <= 9e18)");
  return static_cast<std::int64_t>(v);
}

std::vector<CsvRow> read_profile_csv(const std::string& path, const std::vector<std::string>& columns) {
  std::ifstream in = open_input_file(path, "profile CSV");
  std::vector<CsvRow> rows;
  std::string line;
  std::size_t lineno = 0;
  bool header = false;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(lineno);
    auto f = split_csv(line);
    if (!header) {
      if (f != columns) throw InputError(where + ": expected header '" + join(columns) + "'");
      header = true;
      continue;
    }
    if (f.size() != columns.size()) {
      throw InputError(where + ": expected " + std::to_string(columns.size()) + " columns, got " + std::to_string(f.size()));
    }
    rows.push_back(CsvRow{std::move(f), where});
  }
  if (!header) throw InputError(path + ": no header line");
  if (rows.empty()) throw InputError(path + ": no data rows");
  return rows;
}

CalibrationProfile CalibrationProfile::load(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw InputError(dir + ": calibration profile directory not found");
  CalibrationProfile p;
  p.dir = dir;
  const fs::path d(dir);
  {
    const auto meta = (d / "profile.json").string();
    std::error_code ec;
    if (!fs::exists(meta, ec)) throw InputError(meta + ": missing (every profile has a profile.json)");
    p.meta = parse_json_file(meta, "profile.json");
  }
  for (const auto& r : read_profile_csv((d / "gemm.csv").string(),
                                        {"op", "M", "N", "K", "dtype", "median_us", "min_us", "max_us"})) {
    GemmSample g{r.fields[0], r.integer(1, "M"), r.integer(2, "N"), r.integer(3, "K"), r.fields[4],
                 r.number(5, "median_us"), r.number(6, "min_us"), r.number(7, "max_us")};
    if (g.m <= 0 || g.n <= 0 || g.k <= 0 || g.median_us <= 0) throw InputError(r.where + ": sizes and times must be > 0");
    check_at_most(g.m, kMaxProfileTokens, r.where, "M");
    check_at_most(g.n, kMaxProfileWidth, r.where, "N");
    check_at_most(g.k, kMaxProfileWidth, r.where, "K");
    check_time_order(r.where, g.median_us, g.min_us, g.max_us);
    p.gemm.push_back(g);
  }
  if (present(d / "grouped_gemm.csv")) {
    for (const auto& r : read_profile_csv((d / "grouped_gemm.csv").string(),
                                          {"op", "groups", "m", "N", "K", "dtype", "median_us", "min_us", "max_us"})) {
      GroupedGemmSample g{r.fields[0], r.integer(1, "groups"), r.integer(2, "m"), r.integer(3, "N"), r.integer(4, "K"),
                          r.fields[5], r.number(6, "median_us"), r.number(7, "min_us"), r.number(8, "max_us")};
      if (g.groups <= 0 || g.m <= 0 || g.n <= 0 || g.k <= 0 || g.median_us <= 0) {
        throw InputError(r.where + ": sizes and times must be > 0");
      }
      check_at_most(g.groups, kMaxProfileHeads, r.where, "groups");
      check_at_most(g.m, kMaxProfileTokens, r.where, "m");
      check_at_most(g.n, kMaxProfileWidth, r.where, "N");
      check_at_most(g.k, kMaxProfileWidth, r.where, "K");
      check_time_order(r.where, g.median_us, g.min_us, g.max_us);
      p.grouped_gemm.push_back(g);
    }
  }
  if (present(d / "attention.csv")) {
    for (const auto& r : read_profile_csv((d / "attention.csv").string(),
                                          {"op", "batch", "q_len", "ctx_len", "kv_total", "hq", "hkv", "head_dim", "dtype",
                                           "median_us", "min_us", "max_us"})) {
      AttentionSample a{r.fields[0], r.integer(1, "batch"), r.integer(2, "q_len"), r.integer(3, "ctx_len"),
                        r.integer(4, "kv_total"), r.integer(5, "hq"), r.integer(6, "hkv"), r.integer(7, "head_dim"),
                        r.fields[8], r.number(9, "median_us"), r.number(10, "min_us"), r.number(11, "max_us")};
      if (a.op != "prefill" && a.op != "decode") throw InputError(r.where + ": op must be prefill or decode");
      if (a.batch <= 0 || a.q_len <= 0 || a.kv_total <= 0 || a.hq <= 0 || a.hkv <= 0 || a.head_dim <= 0 ||
          a.median_us <= 0) {
        throw InputError(r.where + ": sizes and times must be > 0");
      }
      if (a.ctx_len < 0) throw InputError(r.where + ": ctx_len must be >= 0");
      check_at_most(a.batch, kMaxProfileBatch, r.where, "batch");
      check_at_most(a.q_len, kMaxProfileTokens, r.where, "q_len");
      check_at_most(a.ctx_len, kMaxProfileTokens, r.where, "ctx_len");
      check_at_most(a.kv_total, kMaxProfileBatch * kMaxProfileTokens, r.where, "kv_total");
      check_at_most(a.hq, kMaxProfileHeads, r.where, "hq");
      check_at_most(a.hkv, kMaxProfileHeads, r.where, "hkv");
      check_at_most(a.head_dim, kMaxProfileWidth, r.where, "head_dim");
      check_time_order(r.where, a.median_us, a.min_us, a.max_us);
      p.attention.push_back(a);
    }
    const MixedBatches mixed = read_mixed_batches((d / "attention.csv").string());
    for (const auto& groups : mixed.mixes) {
      std::int64_t batch = 0, kv_total = 0;
      for (const auto& g : groups) {
        batch += g.sequences;
        kv_total += g.sequences * g.cached_tokens;
      }
      for (auto& a : p.attention) {
        if (a.op == "decode" && a.batch == batch && a.kv_total == kv_total) {
          a.mixed = groups;
          a.mixed_mode = mixed.mode;
        }
      }
    }
  }
  if (present(d / "memory.csv")) {
    for (const auto& r : read_profile_csv((d / "memory.csv").string(), {"op", "bytes", "median_us", "min_us", "max_us"})) {
      const MemorySample m{r.fields[0], r.number(1, "bytes"), r.number(2, "median_us"), r.number(3, "min_us"),
                           r.number(4, "max_us")};
      if (m.bytes < 0 || m.median_us <= 0) throw InputError(r.where + ": bytes must be >= 0 and times > 0");
      check_time_order(r.where, m.median_us, m.min_us, m.max_us);
      p.memory.push_back(m);
    }
  }
  if (present(d / "collectives.csv")) {
    for (const auto& r : read_profile_csv((d / "collectives.csv").string(),
                                          {"collective", "ranks", "bytes", "time_us", "algbw_GBps", "busbw_GBps", "source"})) {
      p.collectives.push_back(CollectiveRow{r.fields[0], r.integer(1, "ranks"), r.number(2, "bytes"),
                                            r.number(3, "time_us"), r.number(4, "algbw_GBps"), r.number(5, "busbw_GBps")});
      check_at_most(p.collectives.back().ranks, kMaxProfileRanks, r.where, "ranks");
    }
  }
  return p;
}

std::string CalibrationProfile::gpu_name() const {
  if (!meta.is_object() || !meta.contains("gpu") || !meta["gpu"].is_string()) return "";
  return meta["gpu"].get<std::string>();
}

std::string profile_gpu_mismatch(const CalibrationProfile& profile, const GpuSpec& gpu, const std::string& label,
                                 const std::string& gpu_key) {
  const std::string measured = profile.gpu_name();
  if (measured.empty()) {
    return "profile " + label + " does not name the GPU it was measured on (profile.json has no \"gpu\"), so it " +
           "cannot be checked against " + gpu_key + " \"" + gpu.name + "\"";
  }
  if (gpu_matches_device(gpu, measured)) return "";
  return "profile " + label + " was measured on \"" + measured + "\" but " + gpu_key + " is \"" + gpu.name + "\"";
}

}  // namespace servesim
