// Issue 10, kinds 2-4: inputs that are not regular files, include cycles, and parser exceptions that escape.
// Every reader opens its file through models/common/input_file.h and parses JSON through
// models/common/json_file.h; the CLI cases end with one line "servesim: error: ...", exit 2, nothing written.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "helpers.h"
#include "models/common/config.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/json_file.h"
#include "models/hw/nccl_ingest.h"
#include "models/hw/profile.h"
#include "models/net/collective_calibration.h"
#include "models/net/topology.h"
#include "sim/io/measured.h"
#include "sim/io/trace.h"

using namespace servesim;
namespace fs = std::filesystem;

namespace {

// Like test::run_cli, under `timeout` so that a reader that blocks (a FIFO) fails the test instead of hanging.
test::CliResult run_cli_bounded(const std::string& args) {
  return test::run_command("timeout 60 " + std::string(SERVESIM_BINARY) + " " + args);
}

// Runs the CLI with `args` (`out` is the output path the command was given) and checks: exit 2, one line
// starting "servesim: error: " holding every fragment, nothing written at `out`.
void expect_cli_error(const std::string& args, const std::vector<std::string>& fragments, const fs::path& out = {}) {
  const auto r = run_cli_bounded(args);
  INFO(args);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
  CHECK(r.output.rfind("servesim: error: ", 0) == 0);
  CHECK(r.output.find("internal error") == std::string::npos);
  for (const auto& f : fragments) CHECK(r.output.find(f) != std::string::npos);
  if (!out.empty()) CHECK_FALSE(fs::exists(out));
}

// `servesim run` on the scenario text, with --out in the same directory.
void expect_run_error(const fs::path& dir, const std::string& scenario_text, const std::vector<std::string>& fragments) {
  const std::string path = test::write_file(dir / "s.toml", scenario_text);
  expect_cli_error("run " + path + " --out " + (dir / "out").string(), fragments, dir / "out");
}

// The InputError `f` throws contains every fragment and is one line.
template <class F>
void expect_input_error(F&& f, const std::vector<std::string>& fragments) {
  const std::string msg = test::input_error(std::forward<F>(f));
  INFO(msg);
  CHECK_FALSE(msg.empty());
  CHECK(msg.find('\n') == std::string::npos);
  CHECK(msg.find("[json.exception") == std::string::npos);
  for (const auto& frag : fragments) CHECK(msg.find(frag) != std::string::npos);
}

std::string make_fifo(const fs::path& p) {
  REQUIRE(::mkfifo(p.c_str(), 0600) == 0);
  return p.string();
}

// A bound UNIX socket at `p` (closed again; the socket file stays).
std::string make_socket(const fs::path& p) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(p.string().size() < sizeof addr.sun_path);
  std::strncpy(addr.sun_path, p.c_str(), sizeof addr.sun_path - 1);
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::close(fd);
  REQUIRE(rc == 0);
  return p.string();
}

std::string trace_scenario(const std::string& trace_path) {
  return test::base_scenario_text() + "[workload.arrival]\nimpl = \"trace\"\npath = \"" + trace_path +
         "\"\nformat = \"csv\"\n";
}

const char* kGemmCsv = "op,M,N,K,dtype,median_us,min_us,max_us\ngemm,128,128,128,bf16,10,9,11\n";

// A profile directory with profile.json `meta` and a valid gemm.csv.
fs::path make_profile(const std::string& tag, const std::string& meta) {
  const auto dir = test::temp_dir(tag) / "prof";
  fs::create_directories(dir);
  test::write_file(dir / "profile.json", meta);
  test::write_file(dir / "gemm.csv", kGemmCsv);
  return dir;
}

}  // namespace

// ---- Kind 2: files that are not regular files ----

TEST_CASE("the input-file opener names what a path is instead of reading it", "[input-files]") {
  const auto dir = test::temp_dir("opener");
  const std::string fifo = make_fifo(dir / "fifo");
  const std::string sock = make_socket(dir / "sock");
  const std::string file = test::write_file(dir / "f.csv", "a,b\n");
  expect_input_error([&] { check_input_file(dir.string(), "trace"); }, {dir.string() + ": cannot open trace: is a directory"});
  expect_input_error([&] { check_input_file(fifo, "trace"); }, {fifo + ": cannot open trace: is not a regular file (a FIFO)"});
  expect_input_error([&] { check_input_file(sock, "trace"); }, {"is not a regular file (a socket)"});
  expect_input_error([&] { check_input_file("/dev/zero", "trace"); }, {"/dev/zero", "is not a regular file (a character device)"});
  expect_input_error([&] { check_input_file((dir / "none.csv").string(), "trace"); }, {"none.csv: cannot open trace: not found"});
  expect_input_error([&] { check_input_file((dir / "f.csv" / "x").string(), "trace"); }, {"not found"});
  expect_input_error([&] { (void)read_input_file(fifo, "JSON file"); }, {"a FIFO"});
  CHECK_NOTHROW(check_input_file(file, "trace"));
  CHECK(read_input_file(file, "trace") == "a,b\n");
  std::string line;
  auto in = open_input_file(file, "trace");
  REQUIRE(std::getline(in, line));
  CHECK(line == "a,b");
}

TEST_CASE("an unreadable input file says permission denied", "[input-files]") {
  if (::geteuid() == 0) {
    WARN("running as root: permissions are not enforced, nothing to check");
    return;
  }
  const auto dir = test::temp_dir("perm");
  const std::string file = test::write_file(dir / "t.csv", "arrival_s,prompt_tokens,output_tokens\n0,1,1\n");
  fs::permissions(file, fs::perms::none);
  expect_input_error([&] { (void)read_trace(file, "csv"); }, {file + ": cannot open trace file: Permission denied"});
  fs::permissions(file, fs::perms::owner_all);
}

TEST_CASE("inputs over the size caps are refused before they are read", "[input-files]") {
  const auto dir = test::temp_dir("cap");
  // Sparse files: no disk space is used.
  const auto big_trace = dir / "big.csv";
  test::write_file(big_trace, "arrival_s,prompt_tokens,output_tokens\n");
  fs::resize_file(big_trace, (std::uintmax_t{5} << 30));
  expect_input_error([&] { (void)read_trace(big_trace.string(), "csv"); },
                     {"big.csv: cannot open trace file", "larger than the 4 GiB limit for line-oriented inputs"});
  const auto big_toml = dir / "big.toml";
  test::write_file(big_toml, "a = 1\n");
  fs::resize_file(big_toml, (std::uintmax_t{300} << 20));
  expect_input_error([&] { (void)Config::from_file(big_toml.string()); },
                     {"big.toml: cannot open TOML file", "larger than the 256 MiB limit for whole-file inputs"});
  expect_input_error([&] { (void)parse_json_file(big_toml.string(), "model config"); }, {"256 MiB limit"});
}

TEST_CASE("a FIFO given as the scenario is refused without hanging", "[input-files]") {
  const auto dir = test::temp_dir("fifo-scenario");
  const std::string fifo = make_fifo(dir / "s.toml");
  expect_cli_error("run " + fifo + " --out " + (dir / "out").string(), {fifo, "is not a regular file (a FIFO)"},
                   dir / "out");
}

TEST_CASE("a directory given as the scenario says is a directory", "[input-files]") {
  const auto dir = test::temp_dir("dir-scenario");
  fs::create_directories(dir / "s.toml");
  expect_cli_error("run " + (dir / "s.toml").string() + " --out " + (dir / "out").string(), {"s.toml", "is a directory"},
                   dir / "out");
}

TEST_CASE("a TOML document that is a FIFO or directory is refused by the loader and by merges", "[input-files]") {
  const auto dir = test::temp_dir("toml-special");
  const std::string fifo = make_fifo(dir / "f.toml");
  expect_input_error([&] { (void)Config::from_file(fifo); }, {"f.toml: cannot open TOML file: is not a regular file (a FIFO)"});
  expect_input_error([&] { (void)Config::from_file(dir.string()); }, {"is a directory"});
  Config c = Config::from_string("a = 1\n", "s.toml");
  expect_input_error([&] { c.merge_file(fifo); }, {"a FIFO"});
  expect_input_error([&] { c.merge_file(dir.string()); }, {"is a directory"});
}

TEST_CASE("dev zero as a trace path is refused, not read", "[input-files]") {
  const auto dir = test::temp_dir("devzero");
  expect_run_error(dir, trace_scenario("/dev/zero"),
                   {"s.toml:7", "workload.arrival.path", "/dev/zero", "is not a regular file (a character device)"});
  expect_input_error([&] { (void)read_trace("/dev/zero", "azure"); }, {"a character device"});
}

TEST_CASE("a directory or FIFO as a trace says what it is", "[input-files]") {
  const auto dir = test::temp_dir("trace-dir");
  fs::create_directories(dir / "traces");
  expect_run_error(dir, trace_scenario((dir / "traces").string()), {"workload.arrival.path", "is a directory"});
  const std::string fifo = make_fifo(dir / "t.csv");
  expect_run_error(dir, trace_scenario(fifo), {"workload.arrival.path", "a FIFO"});
  // Lengths sampled from a trace read through the same opener.
  expect_run_error(dir,
                   test::base_scenario_text() +
                       "[workload]\nnum_requests = 5\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
                       "[workload.prompt_tokens]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"" +
                       (dir / "traces").string() + "\"\n[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 4\n",
                   {"workload.prompt_tokens.path", "is a directory"});
}

TEST_CASE("a directory or FIFO as a measured run says what it is", "[input-files]") {
  const auto dir = test::temp_dir("measured-dir");
  fs::create_directories(dir / "run");
  const std::string fifo = make_fifo(dir / "run.jsonl");
  expect_input_error([&] { (void)read_measured_run((dir / "run").string()); }, {"cannot open measured run: is a directory"});
  expect_input_error([&] { (void)read_measured_run(fifo); }, {"cannot open measured run: is not a regular file (a FIFO)"});
  expect_input_error([&] { (void)read_measured_run("/nonexistent/r.jsonl"); }, {"/nonexistent/r.jsonl: cannot open measured run: not found"});
  // As the scenario's arrivals.
  expect_run_error(dir,
                   test::base_scenario_text() + "[workload.arrival]\nimpl = \"measured\"\npath = \"" + fifo + "\"\n",
                   {"run.jsonl", "a FIFO"});
  // On the command line.
  const std::string scenario = test::scenario_path("quickstart.toml");
  expect_cli_error("validate " + scenario + " --measured " + (dir / "run").string(), {"run: cannot open measured run: is a directory"});
  expect_cli_error("validate " + scenario + " --measured " + fifo, {"a FIFO"});
  expect_cli_error("calibrate trace " + fifo + " --scenario " + scenario + " --out " + (dir / "fit.toml").string(),
                   {"run.jsonl: cannot open measured run: is not a regular file (a FIFO)"}, dir / "fit.toml");
}

TEST_CASE("a directory or FIFO as a profile CSV or profile.json says what it is", "[input-files]") {
  {
    const auto prof = make_profile("prof-gemm", "{\"gpu\": \"NVIDIA H200\"}\n");
    fs::remove(prof / "gemm.csv");
    fs::create_directories(prof / "gemm.csv");
    expect_input_error([&] { (void)CalibrationProfile::load(prof.string()); }, {"gemm.csv: cannot open profile CSV: is a directory"});
    expect_cli_error("calibrate report " + prof.string(), {"gemm.csv", "is a directory"});
  }
  {
    const auto prof = make_profile("prof-attn", "{\"gpu\": \"NVIDIA H200\"}\n");
    make_fifo(prof / "attention.csv");
    expect_input_error([&] { (void)CalibrationProfile::load(prof.string()); }, {"attention.csv: cannot open profile CSV: is not a regular file (a FIFO)"});
  }
  {
    const auto prof = make_profile("prof-json", "");
    fs::remove(prof / "profile.json");
    fs::create_directories(prof / "profile.json");
    expect_input_error([&] { (void)CalibrationProfile::load(prof.string()); }, {"profile.json: cannot open profile.json: is a directory"});
  }
}

TEST_CASE("a directory or FIFO as an nccl-tests log says what it is", "[input-files]") {
  const auto dir = test::temp_dir("nccl-dir");
  fs::create_directories(dir / "logs");
  const std::string fifo = make_fifo(dir / "x.log");
  expect_input_error([&] { (void)read_nccl_tests_log((dir / "logs").string()); }, {"logs: cannot open nccl-tests log: is a directory"});
  expect_input_error([&] { (void)read_nccl_tests_log(fifo); }, {"a FIFO"});
  expect_cli_error("ingest nccl " + (dir / "logs").string() + " --out " + (dir / "c.csv").string(), {"is a directory"},
                   dir / "c.csv");
  expect_cli_error("ingest nccl " + fifo, {"x.log", "a FIFO"});
}

TEST_CASE("a directory or FIFO as a collectives CSV says what it is", "[input-files]") {
  const auto dir = test::temp_dir("coll-csv");
  const std::string fifo = make_fifo(dir / "collectives.csv");
  expect_input_error([&] { (void)read_collectives_csv(fifo); }, {"collectives.csv: cannot open collectives CSV: is not a regular file (a FIFO)"});
  expect_input_error([&] { (void)read_collectives_csv(dir.string()); }, {"is a directory"});
  // --profile DIR reads DIR/collectives.csv.
  expect_cli_error("collective --topology dgx-h100 --ranks 8 --bytes 1MiB --profile " + dir.string(),
                   {"collectives.csv", "a FIFO"});
  expect_cli_error("collective --topology dgx-h100 --ranks 8 --bytes 1MiB --profile " + (dir / "none.csv").string(),
                   {"none.csv", "not found"});
}

TEST_CASE("a directory or FIFO as a topology file says what it is", "[input-files]") {
  const auto dir = test::temp_dir("topo-special");
  fs::create_directories(dir / "t.toml");
  const std::string fifo = make_fifo(dir / "f.toml");
  expect_input_error([&] { (void)load_topology((dir / "t.toml").string(), dir.string()); }, {"t.toml: cannot open topology file: is a directory"});
  expect_input_error([&] { (void)load_topology(fifo, dir.string()); }, {"f.toml: cannot open topology file: is not a regular file (a FIFO)"});
  expect_cli_error("collective --topology " + fifo, {"f.toml", "a FIFO"});
}

// ---- Kind 3: include cycles ----

TEST_CASE("a topology whose node names itself is an include cycle, not a stack overflow", "[input-files]") {
  const auto dir = test::temp_dir("topo-self");
  const std::string a = test::write_file(dir / "a.toml", "name = \"a\"\nnode = \"a.toml\"\nnodes = 2\n");
  expect_input_error([&] { (void)load_topology(a, dir.string()); }, {"include cycle", "a.toml -> " + a});
  expect_cli_error("collective --topology " + a, {"include cycle", "a.toml -> "});
}

TEST_CASE("two topologies that name each other are an include cycle naming the chain", "[input-files]") {
  const auto dir = test::temp_dir("topo-pair");
  const std::string a = test::write_file(dir / "a.toml", "name = \"a\"\nnode = \"b.toml\"\nnodes = 1\n");
  const std::string b = test::write_file(dir / "b.toml", "name = \"b\"\nnode = \"a.toml\"\nnodes = 1\n");
  expect_input_error([&] { (void)load_topology(a, dir.string()); }, {"include cycle: " + a + " -> " + b + " -> " + a});
  // By catalogue name too.
  expect_input_error([&] { (void)load_topology("b", dir.string()); }, {"include cycle", "b.toml -> ", "a.toml -> ", "b.toml"});
}

TEST_CASE("topology files nested deeper than the limit are refused naming the chain", "[input-files]") {
  const auto dir = test::temp_dir("topo-deep");
  for (int i = 0; i < 12; ++i) {
    test::write_file(dir / ("t" + std::to_string(i) + ".toml"), "name = \"t" + std::to_string(i) + "\"\nnode = \"t" +
                                                                     std::to_string(i + 1) + ".toml\"\nnodes = 1\n");
  }
  expect_input_error([&] { (void)load_topology((dir / "t0.toml").string(), dir.string()); },
                     {"nest deeper than 8 levels", "t0.toml -> ", "t7.toml -> ", "t8.toml"});
}

TEST_CASE("a scenario that names itself or a looping file as calibration is refused", "[input-files]") {
  const auto dir = test::temp_dir("cal-cycle");
  expect_run_error(dir, "calibration = \"s.toml\"\n" + test::base_scenario_text(), {"s.toml", "calibration"});
  test::write_file(dir / "c1.toml", "calibration = \"c2.toml\"\n");
  test::write_file(dir / "c2.toml", "calibration = \"c1.toml\"\n");
  expect_run_error(dir, "calibration = \"c1.toml\"\n" + test::base_scenario_text(), {"c1.toml", "calibration"});
  // The loader itself refuses to merge a document over itself.
  const std::string path = test::write_file(dir / "self.toml", "a = 1\n");
  Config c = Config::from_file(path);
  expect_input_error([&] { c.merge_file(path); }, {"include cycle", "self.toml -> "});
}

// ---- Kind 4: parser exceptions that escape ----

TEST_CASE("JSON errors of every kind name the file, line and column", "[input-files]") {
  expect_input_error([] { (void)parse_json_text("{\n  \"a\": 1e999\n}\n", "x.json"); },
                     {"x.json:2:", "number overflow parsing '1e999'"});
  expect_input_error([] { (void)parse_json_text("{\n  \"a\": [1, 2,\n}\n", "y.json"); }, {"y.json:3:1: not valid JSON"});
  expect_input_error([] { (void)parse_json_text("", "e.json"); }, {"e.json:1:1: not valid JSON"});
  expect_input_error([] { (void)parse_json_text("{\"a\": -1e999}", "z.json", 7); }, {"z.json:7:", "number overflow"});
  CHECK(parse_json_text("{\"a\": 2}", "ok.json")["a"] == 2);
}

TEST_CASE("a profile.json holding 1e999 names the file", "[input-files]") {
  const auto prof = make_profile("prof-1e999", "{\n  \"gpu\": \"NVIDIA H200\",\n  \"clock_mhz\": 1e999\n}\n");
  expect_input_error([&] { (void)CalibrationProfile::load(prof.string()); },
                     {"profile.json:3:", "number overflow parsing '1e999'"});
  expect_cli_error("calibrate report " + prof.string(), {"profile.json:3:", "number overflow"});
  const auto dir = prof.parent_path();
  expect_run_error(dir, test::base_scenario_text() + "profile = \"" + prof.string() + "\"\n",
                   {"profile.json:3:", "number overflow"});
}

TEST_CASE("a profile.json with a syntax error names file, line and column", "[input-files]") {
  const auto prof = make_profile("prof-syntax", "{\n  \"gpu\": \"NVIDIA H200\",,\n}\n");
  expect_input_error([&] { (void)CalibrationProfile::load(prof.string()); }, {"profile.json:2:", "not valid JSON"});
}

TEST_CASE("a config.json holding 1e999 names the file", "[input-files]") {
  // Needs models/arch/model_arch.cpp to read config.json with parse_json_file (see the issue 10 report).
  const auto dir = test::temp_dir("config-1e999");
  const std::string cfg = test::write_file(dir / "config.json", "{\n  \"hidden_size\": 1e999\n}\n");
  expect_run_error(dir, "[model]\nconfig = \"" + cfg + "\"\n[hardware]\ngpu = \"h100-sxm\"\n",
                   {"config.json:2:", "number overflow"});
}

TEST_CASE("a measured run holding 1e999 names the file and line", "[input-files]") {
  const auto dir = test::temp_dir("measured-1e999");
  const std::string ok = R"({"arrival_s": 0.5, "prompt_tokens": 32, "output_tokens": 1, "token_times_s": [0.6]})";
  const std::string jsonl =
      test::write_file(dir / "r.jsonl", ok + "\n" + R"({"arrival_s": 1e999, "prompt_tokens": 3, "output_tokens": 1, "token_times_s": [1]})" + "\n");
  expect_input_error([&] { (void)read_measured_run(jsonl); }, {"r.jsonl:2:", "number overflow parsing '1e999'"});
  const std::string first = test::write_file(dir / "f.jsonl", R"({"arrival_s": 1e999, "prompt_tokens": 3, "output_tokens": 1, "token_times_s": [1]})" "\n");
  expect_input_error([&] { (void)read_measured_run(first); }, {"f.jsonl:1:", "number overflow"});
  // A vLLM result (one JSON document over several lines).
  const std::string vllm = test::write_file(dir / "v.json", "{\n  \"input_lens\": [3],\n  \"ttfts\": [1e999]\n}\n");
  expect_input_error([&] { (void)read_measured_run(vllm); }, {"v.json:3:", "number overflow"});
}

TEST_CASE("TOML parse errors name file, line and column for scenarios and merged files", "[input-files]") {
  const auto dir = test::temp_dir("toml-errors");
  const std::string bad = test::write_file(dir / "bad.toml", "a = 1\nb = [1,\n");
  expect_input_error([&] { (void)Config::from_file(bad); }, {"bad.toml:"});
  Config c = Config::from_string("a = 1\n", "s.toml");
  expect_input_error([&] { c.merge_file(bad); }, {"bad.toml:"});
  const std::string huge = test::write_file(dir / "h.toml", "a = 1e999\nb = 99999999999999999999\n");
  expect_input_error([&] { (void)Config::from_file(huge).integer("b"); }, {"h.toml:"});
}

TEST_CASE("profile CSV integers beyond int64 are input errors", "[input-files]") {
  const auto prof = make_profile("prof-int", "{}\n");
  test::write_file(prof / "gemm.csv", "op,M,N,K,dtype,median_us,min_us,max_us\ngemm,1e30,128,128,bf16,10,9,11\n");
  expect_input_error([&] { (void)CalibrationProfile::load(prof.string()); }, {"gemm.csv:2", "M", "out of range"});
}
