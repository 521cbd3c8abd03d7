// Ingest of point-to-point transfer benchmarks into transport profiles (the CSV of
// models/net/transport_calibration.h): ucx_perftest (UCX's src/tools/perf) and nixlbench (NIXL's
// benchmark/nixlbench) logs, as those tools print them.
//
// ucx_perftest (perftest_run.c print_header / print_progress): a box of test parameters
//     | Test:         tag match bandwidth          |
//     | Send memory:  cuda                         |   (newer versions)
//     | Message size: 4194304                      |
// and a table whose header names the time column `latency (usec)` (ping-pong tests: one-way latency, half the
// round trip) or `overhead (usec)` (bandwidth tests: time per message with a window of messages in flight), then
// result rows of 8 numbers - iterations, percentile (or "typical"), average and overall time in us, average and
// overall bandwidth in MB/s (UCX divides by 2^20), average and overall message rate - prefixed by "Final:" for the
// final row, "[thread N]" for progress rows, or a test name (-f in batch mode); a multi-threaded final row has 4
// numbers (iterations, overall time, bandwidth, message rate). One sample per test: its Final row, else its last
// row. A latency test gives a `single` sample of the overall one-way latency; a bandwidth test a `stream` sample
// of the overall overhead. The overall bandwidth must agree with message size / time within 1 % (2 % below
// 10 MB/s, where the 2 printed decimals weigh): else the message size does not belong to the rows (InputError
// SOURCE:LINE). CSV output (-v) is not read. UCX log lines ("[1704982673.83] [host:pid:0] ...") are skipped.
//
// nixlbench (utils.cpp printStatsHeader / printStats): option lines "Backend (--backend=...)   : UCX", "Initiator
// seg type (...) : VRAM", "Target seg type", "Op type", "Scheme", "Num threads", "Pipeline depth", "Num initiator
// dev", then a header naming the columns (separated by 2 or more spaces) - "Block Size (B)", "Batch Size",
// "B/W (GB/Sec)", "Avg Lat. (us)", ... in the column order of the nixlbench version (older versions print
// "Avg Lat. (us)" first and add "B/W (MiB/Sec)" / "B/W (GiB/Sec)") - and one row per block and batch size. One sample
// per row: a transfer of block x batch bytes in (block x batch) / B/W (GB = 1e9; "Avg Lat. (us)" x batch when
// the log has no B/W column), `single` with one transfer in flight (one thread, pipeline depth 1), `stream`
// otherwise. A scheme other than pairwise, or more than one initiator device, is an InputError (a profile is one
// pair's).
//
// Errors (InputError): "SOURCE: no ucx_perftest results found ..." / "SOURCE: no nixlbench result rows found",
// "SOURCE:LINE: ..." for contradictions (no message size before a result row, a bandwidth that contradicts it).
#pragma once
#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

namespace servesim {

struct TransportLogSample {
  double bytes = 0;           // one transfer
  double time_us = 0;         // its time (single) or its time per transfer back to back (stream)
  bool stream = false;
  double bandwidth_GBps = 0;  // as printed, converted to GB/s (1e9 B/s)
  std::size_t line = 0;       // line of the row in the log
};

struct TransportLog {
  std::string tool;    // "ucx_perftest" | "nixlbench"
  std::string source;  // the source name given to the parser
  std::string test;    // "tag match bandwidth"; "UCX WRITE" (nixlbench backend and op)
  std::string memory;  // "cuda -> cuda", "VRAM -> VRAM"; "" when the log does not say
  std::vector<TransportLogSample> samples;
  std::size_t skipped_lines = 0;  // non-blank lines that are neither parameters nor results
};

[[nodiscard]] TransportLog parse_ucx_perftest_log(std::istream& in, const std::string& source_name);
[[nodiscard]] TransportLog parse_nixlbench_log(std::istream& in, const std::string& source_name);
// open_input_file() (regular files of at most 4 GiB) + the parser, with the path as source name.
[[nodiscard]] TransportLog read_ucx_perftest_log(const std::string& path);
[[nodiscard]] TransportLog read_nixlbench_log(const std::string& path);

// Whether the log's memory is GPU memory on both sides (cuda / VRAM), or says nothing about it.
[[nodiscard]] bool gpu_memory_both_sides(const TransportLog& log);

// The source column for a log: its file name without directories, commas and control characters.
[[nodiscard]] std::string transport_csv_source(const std::string& source_name);
// The text of a transport profile holding `existing` (the current file's text, "" for a new file; its '#' lines
// and rows are kept) plus the samples of `logs` as rows of `transport`. Existing rows with the same transport and
// source as an ingested log are replaced, so ingesting a log twice does not duplicate it. InputError
// "EXISTING_NAME:LINE: ..." if the existing text is not a transport profile.
[[nodiscard]] std::string merge_transport_csv(const std::string& existing, const std::string& existing_name,
                                              const std::vector<TransportLog>& logs, const std::string& transport);

}  // namespace servesim
