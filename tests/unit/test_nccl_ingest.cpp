// nccl-tests log ingest: parsing of old and new layouts, garbage, busbw recomputation, the collectives.csv writer
// and `servesim ingest nccl` (run in-process).
#include <catch2/catch.hpp>

#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "models/common/error.h"
#include "models/hw/nccl_ingest.h"
#include "models/hw/profile.h"

namespace servesim {
void add_ingest_command(CLI::App& app);
}

using namespace servesim;

namespace {

std::string nccl_fixture(const std::string& name) { return std::string(SERVESIM_SOURCE_DIR) + "/tests/data/nccl/" + name; }

NcclLog parse_text(const std::string& text, const std::string& name = "t.log",
                   std::optional<std::string> collective = {}) {
  std::istringstream in(text);
  return parse_nccl_tests_log(in, name, std::move(collective));
}

// Checks that parsing `text` throws an InputError whose message contains every fragment.
void expect_parse_error(const std::string& text, const std::vector<std::string>& fragments,
                        std::optional<std::string> collective = {}, const std::string& name = "t.log") {
  try {
    (void)parse_text(text, name, std::move(collective));
    FAIL("no InputError");
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find('\n') == std::string::npos);
    for (const auto& f : fragments) CHECK(msg.find(f) != std::string::npos);
  }
}

std::string ranks_block(int n, bool with_group = true) {
  std::string s = "# Using devices\n";
  for (int r = 0; r < n; ++r) {
    s += "#  Rank " + std::to_string(r) + (with_group ? " Group  0" : "") + " Pid  1234 on node-0 device " +
         std::to_string(r) + " [0x1" + std::to_string(r) + "] NVIDIA H100 80GB HBM3\n";
  }
  return s + "#\n";
}

// nccl-tests 2.13+ layout: version line, "Collective test starting", `none` redop, N/A #wrong.
std::string new_layout_log() {
  return "# nccl-tests version 2.13.8 nccl-headers=21903 nccl-library=21903\n"
         "# Collective test starting: all_gather_perf\n"
         "# nThread 1 nGpus 8 minBytes 1048576 maxBytes 268435456 step: 16(factor) warmup iters: 5 iters: 20 agg "
         "iters: 1 validation: 0 graph: 0 unalign: 0\n"
         "#\n" +
         ranks_block(8) +
         "#                                                              out-of-place                       in-place\n"
         "#       size         count      type   redop    root     time   algbw   busbw  #wrong     time   algbw   busbw  #wrong\n"
         "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)             (us)  (GB/s)  (GB/s)\n"
         "     1048576         32768     float    none      -1    41.27   25.41   22.23     N/A    41.68   25.16   22.01     N/A\n"
         "    16777216        524288     float    none      -1   212.50   78.95   69.08     N/A   214.62   78.17   68.40     N/A\n"
         "   268435456       8388608     float    none      -1  2783.40   96.44   84.39     N/A  2811.23   95.49   83.55     N/A\n"
         "# Out of bounds values : 0 OK\n"
         "# Avg bus bandwidth    : 58.9495\n"
         "#\n"
         "# Collective test concluded: all_gather_perf\n";
}

// An old layout: no root column, `error` for #wrong, a blank redop in the rows, `#   Rank N Pid` device lines
// absent (ranks from NCCL INFO nranks), the collective named by the command line.
std::string old_layout_log() {
  return "+ mpirun -np 8 /opt/nccl-tests/build/alltoall_perf -b 1M -e 32M -f 32\n"
         "# nThread 1 nGpus 1 minBytes 1048576 maxBytes 33554432 step: 32(factor) warmup iters: 5 iters: 20 "
         "validation: 1\n"
         "#\n"
         "node-0:100:100 [0] NCCL INFO comm 0x55 rank 0 nranks 8 cudaDev 0 busId 18000 - Init COMPLETE\n"
         "#                                                 out-of-place                    in-place\n"
         "#       size         count    type   redop     time   algbw   busbw  error     time   algbw   busbw  error\n"
         "#        (B)    (elements)                    (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)\n"
         "     1048576        262144   float            30.52   34.36   30.06  0e+00    30.52   34.36   30.06    N/A\n"
         "    33554432       8388608   float           390.10   86.01   75.26  0e+00   390.10   86.01   75.26    N/A\n"
         "# Out of bounds values : 0 OK\n";
}

// Redirects std::cout and std::cerr while alive.
struct Capture {
  std::ostringstream out, err;
  std::streambuf* old_out;
  std::streambuf* old_err;
  Capture() : old_out(std::cout.rdbuf(out.rdbuf())), old_err(std::cerr.rdbuf(err.rdbuf())) {}
  ~Capture() {
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
};

struct IngestResult {
  int code = 0;  // 0, or 2 for InputError / CLI parse errors, as main() maps them
  std::string out, err;
};

// Runs `servesim ingest ARGS...` in-process, mapping errors the way main() does.
IngestResult run_ingest(std::vector<std::string> args) {
  CLI::App app{"servesim"};
  app.require_subcommand(1);
  add_ingest_command(app);
  args.insert(args.begin(), {"servesim", "ingest"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  IngestResult r;
  Capture cap;
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    r.code = 2;
    std::cerr << "servesim: error: " << e.what() << "\n";
  } catch (const InputError& e) {
    r.code = 2;
    std::cerr << "servesim: error: " << e.what() << "\n";
  }
  r.out = cap.out.str();
  r.err = cap.err.str();
  return r;
}

}  // namespace

TEST_CASE("nccl ingest: the published A3 Mega all-reduce log", "[ingest]") {
  const NcclLog log = read_nccl_tests_log(nccl_fixture("a3mega-2x8-h100-allreduce.log"));
  CHECK(log.collective == "all_reduce");  // from the file name: the log itself does not say
  CHECK(log.ranks == 16);
  CHECK(log.skipped_lines == 0);
  REQUIRE(log.samples.size() == 16);
  const std::vector<double> sizes{8, 1024, 65536, 1048576, 16777216, 268435456, 1073741824, 8589934592.0};
  const std::vector<double> times{135.8, 147.1, 159.4, 203.2, 977.6, 2360.9, 6759.0, 47535};
  const std::vector<double> busbw{0.00, 0.01, 0.77, 9.68, 32.18, 213.19, 297.86, 338.82};
  std::size_t precise = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    const auto& out = log.samples[2 * i];
    const auto& in = log.samples[2 * i + 1];
    CHECK_FALSE(out.in_place);
    CHECK(in.in_place);
    CHECK(out.bytes == sizes[i]);
    CHECK(out.time_us == times[i]);
    CHECK(out.busbw_GBps == busbw[i]);
    CHECK(out.collective == "all_reduce");
    CHECK(out.ranks == 16);
    CHECK(in.bytes == out.bytes);  // the fixture's in-place columns copy the out-of-place ones
    CHECK(in.time_us == out.time_us);
    CHECK(in.busbw_GBps == out.busbw_GBps);
    // busbw recomputed from size, time and 2(n-1)/n reproduces the printed column. The log prints busbw with
    // 2 decimals (and time with 4-5 digits), so the 0.5 % check applies where busbw >= 1 GB/s (rounding <= 0.5 %);
    // below, the printed 0.00 / 0.01 / 0.77 agree to half a unit of the last digit plus 0.5 %.
    for (const auto* s : {&out, &in}) {
      const double calc = recomputed_busbw_GBps(*s);
      CHECK(calc == Approx(nccl_algbw_GBps(s->bytes, s->time_us) * 2.0 * 15.0 / 16.0));
      CHECK(std::fabs(calc - s->busbw_GBps) <= 0.005 + 0.005 * s->busbw_GBps);
      CHECK(std::fabs(nccl_algbw_GBps(s->bytes, s->time_us) - s->algbw_GBps) <= 0.005 + 0.005 * s->algbw_GBps);
      if (busbw_precision_allows(*s)) {
        ++precise;
        CHECK(std::fabs(*busbw_diff_pct(*s)) < 0.5);
      }
    }
  }
  CHECK(precise == 10);  // 1 MiB ... 8 GiB, out-of-place and in-place
  CHECK_FALSE(busbw_diff_pct(log.samples[0]).has_value());  // printed 0.00
  CHECK_FALSE(busbw_mismatch(log).has_value());
}

TEST_CASE("nccl ingest: garbage lines are skipped and give the same rows as the clean log", "[ingest]") {
  const NcclLog clean = read_nccl_tests_log(nccl_fixture("a3mega-2x8-h100-allreduce.log"));
  const NcclLog dirty = read_nccl_tests_log(nccl_fixture("garbage.log"), "all_reduce");
  CHECK(dirty.ranks == 16);
  CHECK(dirty.collective == "all_reduce");
  // 7 launcher/NCCL lines before the header, the header without '#', 2 truncated rows, nan, non-numeric, 1290.5x,
  // 4 NCCL lines and "Killed by signal 15." among the rows, NCCL Destroy after the trailer.
  CHECK(dirty.skipped_lines == 17);
  REQUIRE(dirty.samples.size() == clean.samples.size());
  for (std::size_t i = 0; i < clean.samples.size(); ++i) {
    const auto& a = clean.samples[i];
    const auto& b = dirty.samples[i];
    CHECK(a.bytes == b.bytes);
    CHECK(a.time_us == b.time_us);
    CHECK(a.algbw_GBps == b.algbw_GBps);
    CHECK(a.busbw_GBps == b.busbw_GBps);
    CHECK(a.in_place == b.in_place);
  }
}

TEST_CASE("nccl ingest: a log without data rows is a clear error", "[ingest]") {
  try {
    (void)read_nccl_tests_log(nccl_fixture("empty.log"), "all_reduce");
    FAIL("no InputError");
  } catch (const InputError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("empty.log: no nccl-tests data rows found") != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
  expect_parse_error("", {"t.log: no nccl-tests data rows found", "no '# size count ...' column header"});
  expect_parse_error("just some text\n1 2 3\n", {"t.log: no nccl-tests data rows found"});
  CHECK_THROWS_WITH(read_nccl_tests_log("/nonexistent/x.log"), Catch::Contains("/nonexistent/x.log: cannot open"));
}

TEST_CASE("nccl ingest: new layout with version line, Collective test starting and N/A", "[ingest]") {
  const NcclLog log = parse_text(new_layout_log());
  CHECK(log.collective == "all_gather");
  CHECK(log.ranks == 8);
  CHECK(log.skipped_lines == 0);
  REQUIRE(log.samples.size() == 6);
  CHECK(log.samples[0].bytes == 1048576);
  CHECK(log.samples[0].time_us == 41.27);
  CHECK(log.samples[1].in_place);
  CHECK(log.samples[1].time_us == 41.68);
  CHECK(log.samples[5].busbw_GBps == 83.55);
  for (const auto& s : log.samples) {
    CHECK(nccl_busbw_factor(s.collective, s.ranks) == 7.0 / 8.0);
    CHECK(std::fabs(*busbw_diff_pct(s)) < 0.5);
  }
  // The caller may name it too; a contradiction is an error naming the line.
  CHECK(parse_text(new_layout_log(), "t.log", "AllGather").collective == "all_gather");
  expect_parse_error(new_layout_log(), {"t.log:2:", "the log is from all_gather_perf, not all_reduce"}, "all_reduce");
}

TEST_CASE("nccl ingest: old layout, blank redop, error column, nranks, command line", "[ingest]") {
  const NcclLog log = parse_text(old_layout_log());
  CHECK(log.collective == "alltoall");  // from "/opt/nccl-tests/build/alltoall_perf"
  CHECK(log.ranks == 8);                // from "nranks 8"
  CHECK(log.skipped_lines == 2);        // the command line and the NCCL INFO line
  REQUIRE(log.samples.size() == 4);
  CHECK(log.samples[2].bytes == 33554432);
  CHECK(log.samples[2].time_us == 390.10);
  CHECK(log.samples[2].algbw_GBps == 86.01);
  CHECK(log.samples[2].busbw_GBps == 75.26);
  for (const auto& s : log.samples) CHECK(std::fabs(*busbw_diff_pct(s)) < 0.5);

  // Old device lines "#   Rank  N Pid ..." (no Group) are counted too.
  std::string with_pid = old_layout_log();
  with_pid.insert(with_pid.find("#\n") + 2, ranks_block(4, false));
  CHECK(parse_text(with_pid).ranks == 4);
}

TEST_CASE("nccl ingest: timestamp and per-iteration columns", "[ingest]") {
  const std::string log_text =
      "# Collective test starting: reduce_scatter_perf\n" + ranks_block(2) +
      "#       size         count      type   redop    root     time   algbw   busbw  #wrong    i_min    i_max    "
      "i_p99    i_cv%     time   algbw   busbw  #wrong    i_min    i_max    i_p99    i_cv%  timestamp\n"
      "     1048576        131072     float     sum      -1    20.00   52.43   26.21       0    19.50    21.00    "
      "20.90     1.20    20.00   52.43   26.21       0    19.40    21.10    21.00     1.30  2025-01-01 12:00:00\n"
      "     1048576        131072     float     sum      -1    20.00   52.43   26.21       0    19.50    21.00    "
      "20.90     1.20    20.00   52.43   26.21       0    19.40    21.10    21.00     1.30\n";  // no timestamp: skipped
  const NcclLog log = parse_text(log_text);
  CHECK(log.collective == "reduce_scatter");
  CHECK(log.ranks == 2);
  CHECK(log.skipped_lines == 1);
  REQUIRE(log.samples.size() == 2);
  CHECK(log.samples[0].time_us == 20.0);
  CHECK(log.samples[1].busbw_GBps == 26.21);
  CHECK(std::fabs(*busbw_diff_pct(log.samples[0])) < 0.5);
}

TEST_CASE("nccl ingest: malformed logs", "[ingest]") {
  const std::string rows =
      "#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n"
      "     1048576        262144     float     sum      -1    203.2    5.16    9.68      0    203.2    5.16    9.68      0\n";
  SECTION("no collective anywhere") {
    expect_parse_error(ranks_block(16) + rows, {"t.log: cannot tell which collective", "all_reduce, all_gather"});
    // an ambiguous file name does not decide either
    expect_parse_error(ranks_block(16) + rows, {"cannot tell which collective"}, std::nullopt,
                       "allreduce-vs-allgather.log");
  }
  SECTION("unknown collective given") {
    expect_parse_error(ranks_block(16) + rows, {"collective 'allreduc' is unknown", "valid: all_reduce"}, "allreduc");
  }
  SECTION("unsupported collective test") {
    expect_parse_error("# Collective test starting: hypercube_perf\n" + ranks_block(4) + rows,
                       {"t.log:1:", "'hypercube_perf' is not supported"});
  }
  SECTION("two collectives in one log") {
    expect_parse_error("# Collective test starting: all_reduce_perf\n" + ranks_block(4) + rows +
                           "# Collective test starting: all_gather_perf\n" + rows,
                       {"t.log:10:", "a second collective test (all_gather_perf)", "split the log"});
  }
  SECTION("no ranks") {
    expect_parse_error(rows, {"t.log: cannot tell the number of ranks", "Rank N Group"}, "all_reduce");
  }
  SECTION("cputime") {
    std::string cpu = rows;
    cpu.replace(cpu.find("time"), 4, "cputime");
    expect_parse_error(ranks_block(2) + cpu, {"t.log:5:", "cputime"}, "all_reduce");
  }
  SECTION("a row cut short, nan, junk and inf are dropped") {
    const std::string bad =
        "     2097152        524288     float     sum      -1    312.4    6.71   12\n"
        "     2097152        524288     float     sum      -1      inf    6.71   12.58      0    312.4    6.71   12.58      0\n"
        "     2097152        524288     float     sum      -1    312.4    6.71   12.58      0    312.4    6.71  12.58x      0\n"
        "     2097152        524288     float     sum      -1    312.4    6.71   12.58      X    312.4    6.71   12.58      0\n"
        "    -2097152        524288     float     sum      -1    312.4    6.71   12.58      0    312.4    6.71   12.58      0\n"
        "     2097152        524288     float     sum      -1    312.4    6.71   12.58      0    312.4    6.71   12.58\n"
        "     2097152        524288     float     sum      -1    312.4    6.71   12.58      0    312.4    6.71   12.58      0  9\n"
        "     2097152        524288         7     sum      -1    312.4    6.71   12.58      0    312.4    6.71   12.58      0\n"
        "     2097152        524288     float     sum     abc    312.4    6.71   12.58      0    312.4    6.71   12.58      0\n"
        "     2097152        524288     float     sum      -1        0    6.71   12.58      0    312.4    6.71   12.58      0\n";
    const NcclLog log = parse_text(ranks_block(16) + rows + bad, "t.log", "all_reduce");
    CHECK(log.samples.size() == 2);
    CHECK(log.skipped_lines == 10);
  }
}

TEST_CASE("nccl ingest: collective names and busbw factors", "[ingest]") {
  CHECK(canonical_nccl_collective("all_reduce_perf") == "all_reduce");
  CHECK(canonical_nccl_collective("./build/all_reduce_perf") == "all_reduce");
  CHECK(canonical_nccl_collective("AllReduce") == "all_reduce");
  CHECK(canonical_nccl_collective("all-gather") == "all_gather");
  CHECK(canonical_nccl_collective("reduce_scatter_perf_mpi") == "reduce_scatter");
  CHECK(canonical_nccl_collective("all_to_all") == "alltoall");
  CHECK(canonical_nccl_collective("send_recv") == "sendrecv");
  CHECK(canonical_nccl_collective("reduce") == "reduce");
  CHECK_FALSE(canonical_nccl_collective("hypercube").has_value());
  CHECK_FALSE(canonical_nccl_collective("").has_value());
  const int n = 8;
  CHECK(nccl_busbw_factor("all_reduce", n) == 2.0 * 7.0 / 8.0);
  for (const char* c : {"all_gather", "reduce_scatter", "alltoall", "gather", "scatter"}) {
    CHECK(nccl_busbw_factor(c, n) == 7.0 / 8.0);
  }
  for (const char* c : {"broadcast", "reduce", "sendrecv"}) CHECK(nccl_busbw_factor(c, n) == 1.0);
  CHECK(nccl_busbw_factor("all_reduce", 1) == 0.0);
  CHECK_THROWS_AS(nccl_busbw_factor("allreduce", n), InputError);  // canonical names only
  CHECK_THROWS_AS(nccl_busbw_factor("all_reduce", 0), InputError);
  CHECK(nccl_algbw_GBps(1e9, 1e6) == 1.0);  // 1 GB in 1 s
  CHECK(nccl_busbw_GBps("all_reduce", 16, 8589934592.0, 47535) == Approx(338.8267).epsilon(1e-6));
}

TEST_CASE("nccl ingest: a busbw column that contradicts the collective is reported", "[ingest]") {
  const NcclLog wrong = read_nccl_tests_log(nccl_fixture("a3mega-2x8-h100-allreduce.log"), "all_gather");
  const auto m = busbw_mismatch(wrong);
  REQUIRE(m.has_value());
  CHECK(m->find("a3mega-2x8-h100-allreduce.log: the log's busbw column differs by 50.0 % from all_gather over 16 ranks") !=
        std::string::npos);
}

TEST_CASE("nccl ingest: collectives.csv writer", "[ingest]") {
  const NcclLog log = read_nccl_tests_log(nccl_fixture("a3mega-2x8-h100-allreduce.log"));
  std::ostringstream rows;
  write_collectives_csv_rows(rows, log);
  const std::string text = rows.str();
  CHECK(test::count_lines(text) == 8);  // out-of-place only
  CHECK(text.rfind("all_reduce,16,8,135.8,", 0) == 0);
  CHECK(text.find("all_reduce,16,8589934592,47535,180.708,338.827,a3mega-2x8-h100-allreduce.log\n") !=
        std::string::npos);

  // The profile loader's CSV reader accepts the result.
  const auto dir = test::temp_dir("nccl-csv");
  const std::string path = test::write_file(dir / "collectives.csv", merge_collectives_csv("", "x", {log}));
  const auto parsed = read_profile_csv(path, {"collective", "ranks", "bytes", "time_us", "algbw_GBps", "busbw_GBps",
                                              "source"});
  REQUIRE(parsed.size() == 8);
  CHECK(parsed[7].number(2, "bytes") == 8589934592.0);
  CHECK(parsed[7].number(5, "busbw_GBps") == Approx(338.82).epsilon(0.001));
  CHECK(parsed[7].fields[6] == "a3mega-2x8-h100-allreduce.log");

  // The source column is the file name without directories and commas.
  CHECK(collectives_csv_source("/some/dir/run,1.log") == "run_1.log");

  // Fewer than 2 ranks cannot go into the profile.
  NcclLog one = log;
  one.ranks = 1;
  std::ostringstream sink;
  CHECK_THROWS_WITH(write_collectives_csv_rows(sink, one), Catch::Contains("needs measurements over at least 2 ranks"));
}

TEST_CASE("nccl ingest: merging into an existing collectives.csv", "[ingest]") {
  const NcclLog log = read_nccl_tests_log(nccl_fixture("a3mega-2x8-h100-allreduce.log"));
  const std::string existing =
      "# source: hand-written\n"
      "collective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source\n"
      "all_reduce,8,1048576,20,52.4288,91.7504,other.log\n"
      "all_reduce,16,1048576,999,1,1,a3mega-2x8-h100-allreduce.log\n";
  const std::string merged = merge_collectives_csv(existing, "c.csv", {log});
  CHECK(merged.rfind("# source: hand-written\ncollective,ranks,", 0) == 0);
  CHECK(merged.find("other.log") != std::string::npos);  // another source: kept
  CHECK(merged.find(",999,") == std::string::npos);       // the same log's old rows: replaced
  CHECK(test::count_lines(merged) == 2 + 1 + 8);
  CHECK(merge_collectives_csv(merged, "c.csv", {log}) == merged);  // idempotent

  CHECK_THROWS_WITH(merge_collectives_csv("# c\ncollective,ranks,bytes\n", "c.csv", {log}),
                    Catch::Contains("c.csv:2: expected the collectives.csv header"));
  CHECK_THROWS_WITH(merge_collectives_csv(existing + "all_reduce,8\n", "c.csv", {log}),
                    Catch::Contains("c.csv:5: expected 7 comma-separated fields"));
}

TEST_CASE("servesim ingest nccl: table, JSON and --out", "[ingest]") {
  const std::string clean = nccl_fixture("a3mega-2x8-h100-allreduce.log");
  SECTION("table") {
    const auto r = run_ingest({"nccl", clean});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("all_reduce over 16 ranks, 16 samples, 0 lines skipped") != std::string::npos);
    CHECK(r.out.find("    8589934592  out        47535    180.71    338.82    338.8267    +0.00") != std::string::npos);
    CHECK(r.out.find("+30.52~") != std::string::npos);  // 1 KiB: printed busbw 0.01, too few digits
    CHECK(r.err.empty());
  }
  SECTION("json") {
    const auto r = run_ingest({"nccl", clean, nccl_fixture("garbage.log"), "--collective", "all_reduce", "--json"});
    REQUIRE(r.code == 0);
    const auto j = nlohmann::json::parse(r.out);
    REQUIRE(j["logs"].size() == 2);
    CHECK(j["logs"][1]["skipped_lines"] == 17);
    CHECK(j["logs"][0]["samples"].size() == 16);
    CHECK(j["logs"][0]["samples"][0]["diff_pct"].is_null());
    CHECK(j["logs"][0]["samples"][15]["busbw_recomputed_GBps"].get<double>() == Approx(338.8267).epsilon(1e-6));
    CHECK_FALSE(j.contains("out"));
  }
  SECTION("--out creates, then replaces the same log's rows") {
    const auto dir = test::temp_dir("ingest-out");
    const std::string out = (dir / "collectives.csv").string();
    auto r = run_ingest({"nccl", clean, "--out", out});
    REQUIRE(r.code == 0);
    CHECK(r.out.find("wrote 8 out-of-place rows to " + out) != std::string::npos);
    const std::string first = test::read_file(out);
    CHECK(test::count_lines(first) == 9);
    r = run_ingest({"nccl", clean, nccl_fixture("garbage.log"), "--collective", "all_reduce", "--out", out, "--json"});
    REQUIRE(r.code == 0);
    CHECK(nlohmann::json::parse(r.out)["out"]["rows"] == 16);
    CHECK(test::count_lines(test::read_file(out)) == 17);
    CHECK_FALSE(std::filesystem::exists(dir / ".collectives.csv.tmp"));
  }
  SECTION("bad input: one-line error, nothing written") {
    const auto dir = test::temp_dir("ingest-bad");
    const std::string out = (dir / "collectives.csv").string();
    auto r = run_ingest({"nccl", clean, nccl_fixture("empty.log"), "--out", out});
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(test::count_lines(r.err) == 1);
    CHECK(r.err.find("servesim: error: ") == 0);
    CHECK(r.err.find("empty.log: no nccl-tests data rows found") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));

    // An existing file stays as it was.
    test::write_file(out, "collective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source\n");
    r = run_ingest({"nccl", clean, "--collective", "all_gather", "--out", out});
    CHECK(r.code == 2);
    CHECK(r.err.find("differs by 50.0 % from all_gather over 16 ranks") != std::string::npos);
    CHECK(r.err.find("(nothing written)") != std::string::npos);
    CHECK(test::read_file(out) == "collective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source\n");

    test::write_file(out, "op,M,N\n");
    r = run_ingest({"nccl", clean, "--out", out});
    CHECK(r.code == 2);
    CHECK(r.err.find(out + ":1: expected the collectives.csv header") != std::string::npos);
    CHECK(test::read_file(out) == "op,M,N\n");

    r = run_ingest({"nccl", (dir / "missing.log").string()});
    CHECK(r.code == 2);
    CHECK(r.err.find("missing.log: cannot open nccl-tests log") != std::string::npos);

    r = run_ingest({"nccl", clean, "--collective", "allreduc"});
    CHECK(r.code == 2);
    CHECK(r.err.find("collective 'allreduc' is unknown") != std::string::npos);
  }
  SECTION("a contradicting busbw column is a warning without --out") {
    const auto r = run_ingest({"nccl", clean, "--collective", "all_gather"});
    CHECK(r.code == 0);
    CHECK(r.err.find("servesim: warning: ") == 0);
    CHECK(r.err.find("is the collective or the rank count wrong?") != std::string::npos);
  }
}
