// Entry functions of the fuzz harnesses: one per kind of input servesim reads. Each takes one fuzz input (any
// bytes), writes it where the reader expects a file (a private temporary directory of this process), runs the
// reader and what the program does with its result, and returns whether the input was read or refused with
// InputError (models/common/error.h: bad input, the expected outcome). Any other exception escapes: the harness
// (tests/fuzz/fuzz_main.cpp) then aborts, which libFuzzer records as a finding, and the regression test
// (tests/unit/test_fuzz_regressions.cpp) fails. Crashes, leaks and undefined behaviour are found by the
// sanitizers of the build the function runs in.
//
// Inputs that hold several parts separate them with NUL bytes (none of the text formats has one):
//   scenario      TOML scenario [\0 --set lines, PATH=VALUE one a line]
//   trace         a trace file, read as every format read_trace() knows (azure, csv) and as a Mooncake trace
//                 (read_mooncake_trace, sim/workload/mooncake_trace.h)
//   measured      a measured run (JSONL or vLLM bench JSON; read_measured_run_detailed() detects the format)
//   nccl          an nccl-tests log [\0 an existing collectives.csv to merge the log's rows into]
//   model_config  a config.json [\0 ignore_config_keys, one a line]
//   profile       profile.json \0 gemm.csv [\0 attention.csv [\0 memory.csv [\0 collectives.csv]]]; an absent
//                 part is an absent file
// Scenario inputs see, next to the scenario file, `scenarios/`, `models/` (scenarios/models, as for the scenarios
// there), `calibrate/`, `data/` (tests/data) and `fuzz/` (tests/fuzz: the corpus and scenario-files/, a
// calibration file) of the source tree, so that seeds can name its traces, runs and profiles by relative path.
// SERVESIM_FUZZ_VERBOSE=1 prints why an input was refused.
//
// Every entry is deterministic: the same input gives the same result.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace servesim::fuzz {

// read: the reader (trace: one of its formats; nccl: the log) accepted the input; refused: InputError.
enum class Outcome { read, refused };

Outcome fuzz_scenario(const std::uint8_t* data, std::size_t size);
Outcome fuzz_trace(const std::uint8_t* data, std::size_t size);
Outcome fuzz_measured(const std::uint8_t* data, std::size_t size);
Outcome fuzz_nccl(const std::uint8_t* data, std::size_t size);
Outcome fuzz_model_config(const std::uint8_t* data, std::size_t size);
Outcome fuzz_profile(const std::uint8_t* data, std::size_t size);

struct Target {
  std::string_view name;  // the harness (fuzz_<name>) and the folders tests/fuzz/corpus/<name>,
                          // tests/data/fuzz-regressions/<name>
  Outcome (*entry)(const std::uint8_t*, std::size_t);
};
// Every target above, in this order.
[[nodiscard]] std::span<const Target> targets();

}  // namespace servesim::fuzz
