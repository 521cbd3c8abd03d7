// Ingest of nccl-tests logs (the stdout of all_reduce_perf, all_gather_perf, reduce_scatter_perf, alltoall_perf,
// broadcast_perf, reduce_perf, sendrecv_perf, gather_perf, scatter_perf) into collective samples, and the writer
// of the calibration profile's collectives.csv (schema in calibrate/README.md).
//
// Parsing.
//   Columns come from the column-header line: a line starting with '#' whose words include `size` and `count`
//   (`# size count type redop root time algbw busbw #wrong time algbw busbw #wrong`, in any nccl-tests
//   version: older logs lack `root`, write `error` for `#wrong`, or leave `redop` blank in the rows; newer ones
//   may add per-iteration columns or a trailing timestamp). The first `time algbw busbw #wrong` group is the
//   out-of-place result, the second the in-place one. A header with `cputime` instead of `time` (-C) is
//   rejected: ingest needs the collective's time.
//   Data rows are the non-comment lines after that header whose every field parses: integer size and count,
//   a non-numeric type, an integer root, finite time > 0, finite algbw and busbw >= 0, and #wrong a number or
//   N/A. Anything else (NCCL INFO/WARN lines, launcher noise, truncated rows, nan/inf, `1290.5x`) is skipped
//   and counted in skipped_lines (non-blank lines that are neither '#' comments nor data rows).
//   Ranks: the number of distinct `#  Rank N Group G ...` device lines (`#  Rank N Pid P ...` in old versions;
//   nccl-tests' nranks = processes x threads x GPUs); without them, the largest `nranks N` of the NCCL INFO lines.
//   Collective: the caller's name if given, else the `# Collective test starting: NAME_perf` line, else a
//   NAME_perf command in the log, else an unambiguous collective name in the source's file name
//   (`...-allreduce.log`). A caller's name that contradicts the log is an error.
//   Errors (InputError): "SOURCE: no nccl-tests data rows found", "SOURCE: cannot tell which collective ...",
//   "SOURCE: cannot tell the number of ranks ...", "SOURCE:LINE: ..." for contradictions.
//
// Bandwidths (nccl-tests doc/PERFORMANCE.md): algbw = bytes / time with GB = 1e9; busbw = algbw x
//   all_reduce 2(n-1)/n; all_gather, reduce_scatter, alltoall, gather, scatter (n-1)/n; broadcast, reduce,
//   sendrecv 1. The log prints time with 3-5 significant digits and bandwidths with 2 decimals, so the
//   recomputed busbw matches the printed one within 0.5 % only where busbw >= 1 GB/s (the printed value's
//   rounding alone is up to 0.005 GB/s); below that it matches within 0.005 GB/s plus 0.5 %.
#pragma once
#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace servesim {

struct CollectiveSample {
  std::string collective;  // canonical name: all_reduce, all_gather, reduce_scatter, alltoall, ...
  int ranks = 0;
  double bytes = 0;        // the nccl-tests size column
  double time_us = 0;
  double algbw_GBps = 0;   // as printed in the log
  double busbw_GBps = 0;   // as printed in the log
  bool in_place = false;
};

struct NcclLog {
  std::string collective;
  int ranks = 0;
  std::vector<CollectiveSample> samples;  // in log order; per data row the out-of-place sample, then in-place
  std::size_t skipped_lines = 0;
  std::string source;                     // the source name given to the parser
};

[[nodiscard]] NcclLog parse_nccl_tests_log(std::istream& in, const std::string& source_name,
                                           std::optional<std::string> collective = {});
// Opens `path` with open_input_file() (models/common/input_file.h: regular files of at most 4 GiB; otherwise
// InputError "PATH: cannot open nccl-tests log: REASON") and parses it with the path as source name.
[[nodiscard]] NcclLog read_nccl_tests_log(const std::string& path, std::optional<std::string> collective = {});

// "all_reduce", "all_reduce_perf", "AllReduce", "allreduce", "all-reduce" -> "all_reduce"; nullopt if unknown.
[[nodiscard]] std::optional<std::string> canonical_nccl_collective(std::string_view name);
[[nodiscard]] std::string nccl_collective_names();  // "all_reduce, all_gather, ..."

// Throws InputError for an unknown collective or ranks < 1.
[[nodiscard]] double nccl_busbw_factor(const std::string& collective, int ranks);
[[nodiscard]] double nccl_algbw_GBps(double bytes, double time_us);
[[nodiscard]] double nccl_busbw_GBps(const std::string& collective, int ranks, double bytes, double time_us);

// busbw recomputed from the sample's size and time (what the writer stores).
[[nodiscard]] double recomputed_busbw_GBps(const CollectiveSample& s);
// 100 (recomputed - printed) / printed; nullopt when the printed busbw is 0.
[[nodiscard]] std::optional<double> busbw_diff_pct(const CollectiveSample& s);
// Whether the printed busbw has enough digits for a 0.5 % comparison (>= 1 GB/s, see above).
[[nodiscard]] bool busbw_precision_allows(const CollectiveSample& s);
// A one-line message when the log's busbw column disagrees with the collective's factor for its rank count by
// more than 1 % on a row where the precision allows it (wrong --collective or rank count), else nullopt.
[[nodiscard]] std::optional<std::string> busbw_mismatch(const NcclLog& log);

inline constexpr const char* kCollectivesCsvHeader = "collective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source";

// The source column for a log: its file name without directories, commas and control characters.
[[nodiscard]] std::string collectives_csv_source(const std::string& source_name);
// Writes the out-of-place samples of `log` (size > 0) as collectives.csv rows, without the header: the log's
// time, algbw and busbw recomputed from size and time. InputError if the log has fewer than 2 ranks.
void write_collectives_csv_rows(std::ostream& out, const NcclLog& log);
// The text of a collectives.csv holding `existing` (the current file's text, "" for a new file; its '#' lines
// and rows are kept) plus the rows of `logs`. Existing rows with the same collective, ranks and source as an
// ingested log are replaced, so ingesting a log twice does not duplicate it. InputError
// "EXISTING_NAME:LINE: ..." if the existing text is not a collectives.csv.
[[nodiscard]] std::string merge_collectives_csv(const std::string& existing, const std::string& existing_name,
                                                const std::vector<NcclLog>& logs);

}  // namespace servesim
