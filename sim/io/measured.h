// Readers of measured serving runs: per-request arrival, lengths and the time of every output token, to compare
// with a simulation. read_measured_run() detects the format:
//
//   (a) JSONL, one request per line (blank lines ignored; other keys are ignored):
//         {"arrival_s": 0.5, "prompt_tokens": 128, "output_tokens": 3, "token_times_s": [0.61, 0.63, 0.66]}
//       token_times_s are absolute times in seconds on the same clock as arrival_s, non-decreasing, the first
//       (the first token) not before arrival_s; their number equals output_tokens (>= 1); prompt_tokens >= 1.
//       Errors name "file:line".
//   (b) a vLLM `bench serve` result JSON saved with per-request details: arrays input_lens, output_lens, ttfts (s,
//       null for failed requests), itls (s, one list per request), optional errors (strings) and optional
//       start_times (s, relative or absolute: the time each request was sent). Arrivals are start_times; without
//       them only a run with request_rate "inf" and no max_concurrency can be read (every request sent at t = 0);
//       any other file lacks the send times and must be converted to JSONL. Token times: start + ttft, then
//       cumulative itls; each must be a finite number (a sum that overflows is an error naming the key). Skipped
//       and counted: requests with a non-empty errors entry or a null ttft (failed), and requests whose
//       1 + len(itls) differs from output_lens (a stream chunk carried several tokens, whose times are unknown).
//       Errors name the file and the key ("run.json: ttfts[3]: ...").
//
// Token counts are at most kMaxTokensPerRequest (models/common/units.h, 1e7); past it is an InputError naming
// file:line (JSONL) or the key. Times keep the file's origin (nothing is shifted). Requests are returned sorted by arrival (stable).
#pragma once
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace servesim {

struct MeasuredRequest {
  double arrival_s = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t output_tokens = 0;
  std::vector<double> token_times_s;  // absolute times of every output token, first = first token
};

struct MeasuredRun {
  std::string format;  // "jsonl" or "vllm"
  std::vector<MeasuredRequest> requests;
  std::size_t skipped_failed = 0;          // vLLM: error entry or null ttft
  std::size_t skipped_token_mismatch = 0;  // vLLM: 1 + len(itls) != output_lens
};

// The file is read whole with read_input_file() (models/common/input_file.h; at most 4 GiB, regular files only):
// otherwise InputError "PATH: cannot open measured run: REASON". JSON errors name PATH:LINE (and the column).
[[nodiscard]] MeasuredRun read_measured_run_detailed(const std::string& path);
[[nodiscard]] std::vector<MeasuredRequest> read_measured_run(const std::string& path);

// Throws InputError "PATH: the request arriving at T s has P prompt + O output tokens, more than
// engine.max_model_len M ..." for the first request an engine with that max_model_len would reject (prompt + output
// > max_model_len; max_model_len <= 0: no limit). A replay must not drop requests the measured server served.
void check_fits_max_model_len(const std::vector<MeasuredRequest>& requests, std::int64_t max_model_len,
                              const std::string& path);

// Writes the requests as JSONL (format (a)), one line per request in the given order, keys in the order above,
// numbers in their shortest exact (round-trip) form, so the same input always gives the same bytes.
// Throws std::invalid_argument for a non-finite time.
void write_measured_jsonl(std::ostream& out, const std::vector<MeasuredRequest>& requests);

}  // namespace servesim
