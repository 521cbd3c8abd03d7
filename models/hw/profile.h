// A measured calibration profile (calibrate/data/<gpu>/, schema in calibrate/README.md): GEMM, attention,
// memory and collective timings of one GPU type. Loading checks every row; a bad row throws InputError
// "file:line: ...". Sizes have upper limits far above any benchmark, so that what the calibrated predictor builds
// from a row stays small and its int64 products exact (profile.cpp): GEMM M and attention q_len, ctx_len and a
// mixed batch's cached tokens at most kMaxTokensPerRequest (1e7, models/common/units.h); GEMM N and K and
// head_dim at most 2^30; grouped-GEMM groups at most 2^16, its m as GEMM M; attention batch (a mixed batch's sequences together too), hq and hkv at most 2^16;
// kv_total at most 2^16 x 1e7; collectives ranks at most 2^20 (as nccl-tests logs, models/hw/nccl_ingest.cpp).
// Past one: InputError "file:line: NAME V is past the limit of MAX".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/hw/gpu.h"

namespace servesim {

struct GemmSample {
  std::string op;
  std::int64_t m = 0, n = 0, k = 0;
  std::string dtype;
  double median_us = 0, min_us = 0, max_us = 0;
};

// A grouped GEMM (calibrate/kernels/grouped_gemm_bench.cu): `groups` experts, each with its own weight W[N,K],
// each applied to `m` rows, in one call.
struct GroupedGemmSample {
  std::string op;
  std::int64_t groups = 0, m = 0, n = 0, k = 0;
  std::string dtype;
  double median_us = 0, min_us = 0, max_us = 0;
};

struct AttentionSample {
  std::string op;  // prefill | decode
  std::int64_t batch = 0, q_len = 0, ctx_len = 0, kv_total = 0, hq = 0, hkv = 0, head_dim = 0;
  std::string dtype;
  double median_us = 0, min_us = 0, max_us = 0;
  // A mixed-length decode batch (attn_bench.py --decode-mixed; listed in the file's "# mixed decode batch:"
  // comments and matched to its row by batch and kv_total): (sequences, cached tokens each) per length, and how
  // it was timed, "groups" (one call per length, back to back; attn_bench.py's default) or "pad" (one padded call
  // with a key mask). Empty for a uniform batch.
  struct Group {
    std::int64_t sequences = 0, cached_tokens = 0;
  };
  std::vector<Group> mixed{};
  std::string mixed_mode{};
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
  std::vector<GroupedGemmSample> grouped_gemm;  // grouped_gemm.csv, optional
  std::vector<AttentionSample> attention;
  std::vector<MemorySample> memory;
  std::vector<CollectiveRow> collectives;

  // Reads every file the directory has (profile.json and gemm.csv are required). Files are opened with
  // models/common/input_file.h (regular files only; profile.json at most 256 MiB, CSVs 4 GiB): otherwise
  // InputError "PATH: cannot open ...: REASON"; JSON errors (1e999 too) name PATH:LINE:COL.
  [[nodiscard]] static CalibrationProfile load(const std::string& dir);
  // The GPU the profile was measured on, profile.json's "gpu" (nvidia-smi's name); "" when absent.
  [[nodiscard]] std::string gpu_name() const;
};

// Why the profile cannot stand for `gpu` -- it was measured on another GPU (gpu_matches_device), or names none --
// as a message quoting `label` (the profile as the user gave it) and `gpu_key` (where the GPU was chosen):
// 'profile calibrate/data/h200 was measured on "NVIDIA H200" but hardware.gpu is "h100-sxm"'; "" when it was
// measured on `gpu`. The scenario makes it an error unless [hardware] profile_gpu_mismatch = "allow".
[[nodiscard]] std::string profile_gpu_mismatch(const CalibrationProfile& profile, const GpuSpec& gpu,
                                               const std::string& label, const std::string& gpu_key = "hardware.gpu");

// Reads a profile CSV: '#' comment lines, then a header with exactly `columns`, then rows. Each row's fields
// are returned as strings with the file:line to quote in errors. integer() refuses values beyond +-9e18.
struct CsvRow {
  std::vector<std::string> fields;
  std::string where;
  [[nodiscard]] double number(std::size_t i, const char* name) const;
  [[nodiscard]] std::int64_t integer(std::size_t i, const char* name) const;
};
[[nodiscard]] std::vector<CsvRow> read_profile_csv(const std::string& path, const std::vector<std::string>& columns);

}  // namespace servesim
