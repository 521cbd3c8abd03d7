// A measured calibration profile (calibrate/data/<gpu>/, schema in calibrate/README.md): GEMM, attention,
// memory and collective timings of one GPU type. Loading checks every row; a bad row throws InputError
// "file:line: ...".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace servesim {

struct GemmSample {
  std::string op;
  std::int64_t m = 0, n = 0, k = 0;
  std::string dtype;
  double median_us = 0, min_us = 0, max_us = 0;
};

struct AttentionSample {
  std::string op;  // prefill | decode
  std::int64_t batch = 0, q_len = 0, ctx_len = 0, kv_total = 0, hq = 0, hkv = 0, head_dim = 0;
  std::string dtype;
  double median_us = 0, min_us = 0, max_us = 0;
};

struct MemorySample {
  std::string op;  // d2d | h2d_pinned | d2h_pinned | launch | launch_host
  double bytes = 0;
  double median_us = 0, min_us = 0, max_us = 0;
};

struct CollectiveRow {
  std::string collective;
  std::int64_t ranks = 0;
  double bytes = 0, time_us = 0, algbw_GBps = 0, busbw_GBps = 0;
};

struct CalibrationProfile {
  std::string dir;
  nlohmann::json meta;  // profile.json
  std::vector<GemmSample> gemm;
  std::vector<AttentionSample> attention;
  std::vector<MemorySample> memory;
  std::vector<CollectiveRow> collectives;

  // Reads every file the directory has (profile.json and gemm.csv are required).
  [[nodiscard]] static CalibrationProfile load(const std::string& dir);
};

// Reads a profile CSV: '#' comment lines, then a header with exactly `columns`, then rows. Each row's fields
// are returned as strings with the file:line to quote in errors.
struct CsvRow {
  std::vector<std::string> fields;
  std::string where;
  [[nodiscard]] double number(std::size_t i, const char* name) const;
  [[nodiscard]] std::int64_t integer(std::size_t i, const char* name) const;
};
[[nodiscard]] std::vector<CsvRow> read_profile_csv(const std::string& path, const std::vector<std::string>& columns);

}  // namespace servesim
