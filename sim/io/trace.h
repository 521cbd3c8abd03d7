// Request traces on disk.
//   azure: the Azure LLM inference trace (TIMESTAMP,ContextTokens,GeneratedTokens); TIMESTAMP is
//          "YYYY-MM-DD HH:MM:SS.fffffff"; arrival = seconds since the first row.
//   csv:   arrival_s,prompt_tokens,output_tokens (header row required).
// A malformed row throws InputError "file:line: ...": among them a length past kMaxTokensPerRequest (1e7), an
// arrival past kMaxSimSeconds (1e7 s; azure: after the first row), an Azure date that does not exist
// (2023-02-30) or a year outside 1970-2100. A UTF-8 byte-order mark before the header is skipped.
#pragma once
#include <string>
#include <vector>

#include <cstdint>

namespace servesim {

struct TraceRow {
  double arrival_s = 0.0;
  std::int64_t prompt_tokens = 0;
  std::int64_t output_tokens = 0;
};

// Opened with open_input_file() (models/common/input_file.h): a missing or unreadable file, a directory, FIFO or
// device, or a file over 4 GiB throws InputError "PATH: cannot open trace: REASON"; a bad row "PATH:LINE: ...".
[[nodiscard]] std::vector<TraceRow> read_trace(const std::string& path, const std::string& format);
[[nodiscard]] std::vector<std::string> trace_formats();

}  // namespace servesim
