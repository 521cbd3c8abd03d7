// Mooncake request traces (kvcache-ai/Mooncake, FAST25-release/traces/*.jsonl; scenarios/traces/README.md): JSONL,
// one request a line,
//   {"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47, ..., 2354]}
// timestamp: arrival in ms since the trace's start (non-decreasing); input_length, output_length: prompt and output
// tokens (> 0, at most kMaxTokensPerRequest); hash_ids: one id per `block_tokens` tokens of the prompt (512 in
// Mooncake's traces; the last block may be partial), remapped prefix-block hashes: equal ids at equal positions are
// the same tokens after the same prefix. Other keys of a line are ignored; blank lines are skipped.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/workload/request.h"

namespace servesim {

inline constexpr std::int64_t kMooncakeBlockTokens = 512;

struct MooncakeRow {
  double arrival_s = 0.0;
  std::int64_t prompt_tokens = 0;
  std::int64_t output_tokens = 0;
  // One span per hash id: block_tokens tokens each, the last input_length - (n - 1) x block_tokens.
  std::shared_ptr<const Content> content;
};

// Reads a Mooncake trace. The file is opened with open_input_file() (models/common/input_file.h: a missing or
// unreadable file, a directory or FIFO, a file over 4 GiB throw InputFileError "PATH: cannot open Mooncake trace:
// REASON"); a bad line throws InputError "PATH:LINE: ..." (not JSON, not an object, a missing key, a negative or
// non-integer count, a length of 0 or past kMaxTokensPerRequest, a timestamp past kMaxSimSeconds or earlier than the
// line before, hash_ids that are not non-negative integers or not ceil(input_length / block_tokens) of them); a
// trace without requests throws "PATH: trace has no rows".
[[nodiscard]] std::vector<MooncakeRow> read_mooncake_trace(const std::string& path,
                                                           std::int64_t block_tokens = kMooncakeBlockTokens);

}  // namespace servesim
