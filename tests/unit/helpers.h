// Shared helpers for the tests: paths into the source tree, temporary scenario files, running the CLI.
#pragma once
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include "models/common/error.h"
#include "models/hw/gpu.h"

namespace servesim::test {

inline std::string source_dir() { return SERVESIM_SOURCE_DIR; }
inline std::string scenario_path(const std::string& name) { return source_dir() + "/scenarios/" + name; }

// A fresh directory under the system temp dir, unique per call.
inline std::filesystem::path temp_dir(const std::string& tag) {
  static int counter = 0;
  auto p = std::filesystem::temp_directory_path() /
           ("servesim-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

inline std::string write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
  return p.string();
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A GPU with round numbers for exact-value tests: 1000 TFLOP/s bf16 peak (500 achieved), 4 TB/s (2 achieved),
// 1 us launch, 80 GB; fp8_tflops as given (0 = none).
inline GpuSpec simple_gpu(double fp8_tflops = 0.0) {
  GpuSpec g;
  g.name = "test";
  g.bf16_peak = FlopsPerSec{1000e12};
  g.fp8_peak = FlopsPerSec{fp8_tflops * 1e12};
  g.memory = Bytes{80e9};
  g.memory_bandwidth = BytesPerSec{4e12};
  g.gemm_efficiency = 0.5;
  g.memory_efficiency = 0.5;
  g.kernel_launch = Seconds{1e-6};
  return g;
}

// A scenario for Llama-3-8B on one H100 that tests modify through the text `extra` (appended tables).
inline std::string base_scenario_text() {
  return "[model]\nconfig = \"" + source_dir() + "/scenarios/models/llama-3-8b.json\"\n"
         "[hardware]\ngpu = \"h100-sxm\"\n";
}

struct CliResult {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, stdout and stderr together.
inline CliResult run_command(const std::string& command_line) {
  const std::string cmd = command_line + " 2>&1";
  CliResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline CliResult run_cli(const std::string& args) { return run_command(std::string(SERVESIM_BINARY) + " " + args); }

inline std::size_t count_lines(const std::string& s) {
  std::size_t n = 0;
  for (const char c : s) n += c == '\n';
  return n;
}

// Message of the InputError `f` throws ("" when it throws nothing).
template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace servesim::test
