#include "tests/fuzz/fuzz_entry.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "models/arch/model_arch.h"
#include "models/common/error.h"
#include "models/cost/calibrated.h"
#include "models/cost/roofline.h"
#include "models/cost/step_model.h"
#include "models/hw/nccl_ingest.h"
#include "models/hw/profile.h"
#include "sim/scenario/scenario.h"
#include "sim/io/measured.h"
#include "sim/io/trace.h"
#include "sim/workload/mooncake_trace.h"

namespace servesim::fuzz {
namespace {

namespace fs = std::filesystem;

// Requests drawn from a scenario's workload: enough to reach every length distribution and a trace's rows.
constexpr int kRequestsDrawn = 64;
// --set lines of a scenario input used, at most (the CLI takes any number; more add nothing for the fuzzer).
constexpr std::size_t kMaxSets = 16;

// This process's directory for the files the readers open; removed when the process exits normally.
class WorkDir {
 public:
  WorkDir() {
    std::string tmpl = (fs::temp_directory_path() / "servesim-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("fuzz: cannot create a temporary directory");
    dir_ = tmpl;
    // What a scenario input may name by a relative path (see fuzz_entry.h).
    const fs::path src = SERVESIM_SOURCE_DIR;
    const std::pair<const char*, fs::path> links[] = {{"scenarios", src / "scenarios"},
                                                      {"models", src / "scenarios" / "models"},
                                                      {"calibrate", src / "calibrate"},
                                                      {"data", src / "tests" / "data"},
                                                      {"fuzz", src / "tests" / "fuzz"}};
    for (const auto& [name, target] : links) fs::create_directory_symlink(target, dir_ / name);
    fs::create_directory(dir_ / "profile");
  }
  ~WorkDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
};

const fs::path& work_dir() {
  static const WorkDir dir;
  return dir.path();
}

// Writes `text` to `name` in the work directory (replacing it) and returns its path.
std::string put(const std::string& name, std::string_view text) {
  const fs::path p = work_dir() / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw std::runtime_error("fuzz: cannot write " + p.string());
  return p.string();
}

// The input split at its NUL bytes.
std::vector<std::string_view> parts(const std::uint8_t* data, std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto nul = all.find('\0', start);
    out.push_back(all.substr(start, nul == std::string_view::npos ? std::string_view::npos : nul - start));
    if (nul == std::string_view::npos) return out;
    start = nul + 1;
  }
}

std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// A GPU with round numbers (the tests' simple_gpu): 1000 TFLOP/s bf16 and fp8, 4 TB/s, 80 GB.
GpuSpec fuzz_gpu() {
  GpuSpec g;
  g.name = "fuzz";
  g.bf16_peak = FlopsPerSec{1000e12};
  g.fp8_peak = FlopsPerSec{1000e12};
  g.memory = Bytes{80e9};
  g.memory_bandwidth = BytesPerSec{4e12};
  g.gemm_efficiency = 0.5;
  g.memory_efficiency = 0.5;
  g.kernel_launch = Seconds{1e-6};
  return g;
}

// Runs `body`; InputError is the expected way to refuse bad input.
template <class F>
Outcome refusing_input_errors(F&& body) {
  try {
    body();
  } catch (const InputError& e) {
    // SERVESIM_FUZZ_VERBOSE=1: why an input was refused (replaying one input; never while fuzzing, which is slow).
    if (std::getenv("SERVESIM_FUZZ_VERBOSE") != nullptr) std::fprintf(stderr, "refused: %s\n", e.what());
    return Outcome::refused;
  }
  return Outcome::read;
}

}  // namespace

Outcome fuzz_scenario(const std::uint8_t* data, std::size_t size) {
  const auto p = parts(data, size);
  const std::string path = put("scenario.toml", p[0]);
  ScenarioOptions opts;
  if (p.size() > 1) {
    for (const auto& line : lines(p[1])) {
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      opts.sets.emplace_back(line.substr(0, eq), line.substr(eq + 1));
      if (opts.sets.size() == kMaxSets) break;
    }
  }
  return refusing_input_errors([&] {
    const ScenarioLoader loader(path, opts);
    (void)loader.make_scheduler();
    const auto workload = loader.make_workload();
    for (int i = 0; i < kRequestsDrawn && workload->next(); ++i) {
    }
  });
}

Outcome fuzz_trace(const std::uint8_t* data, std::size_t size) {
  const std::string path = put("trace.csv", std::string_view(reinterpret_cast<const char*>(data), size));
  Outcome outcome = Outcome::refused;
  for (const auto& format : trace_formats()) {
    if (refusing_input_errors([&] { (void)read_trace(path, format); }) == Outcome::read) outcome = Outcome::read;
  }
  // Mooncake traces (JSONL with hash ids), at 512 tokens a block and at a small block size.
  for (const std::int64_t block : {kMooncakeBlockTokens, std::int64_t{16}}) {
    if (refusing_input_errors([&] { (void)read_mooncake_trace(path, block); }) == Outcome::read) {
      outcome = Outcome::read;
    }
  }
  return outcome;
}

Outcome fuzz_measured(const std::uint8_t* data, std::size_t size) {
  const std::string path = put("run.jsonl", std::string_view(reinterpret_cast<const char*>(data), size));
  return refusing_input_errors([&] {
    const MeasuredRun run = read_measured_run_detailed(path);
    // What servesim does with a run: replay it under a max_model_len, and write requests back as JSONL (which
    // refuses non-finite times with std::invalid_argument: a reader must never return one).
    check_fits_max_model_len(run.requests, 4096, path);
    std::ostringstream out;
    write_measured_jsonl(out, run.requests);
  });
}

Outcome fuzz_nccl(const std::uint8_t* data, std::size_t size) {
  const auto p = parts(data, size);
  const std::string path = put("nccl.log", p[0]);
  const std::string existing = p.size() > 1 ? std::string(p[1]) : std::string();
  // As `servesim ingest nccl`, with and without --collective.
  const std::optional<std::string> collectives[] = {std::nullopt, "all_reduce"};
  Outcome outcome = Outcome::refused;
  for (const auto& collective : collectives) {
    const Outcome o = refusing_input_errors([&] {
      const NcclLog log = read_nccl_tests_log(path, collective);
      (void)busbw_mismatch(log);
      for (const auto& s : log.samples) {
        (void)recomputed_busbw_GBps(s);
        (void)busbw_diff_pct(s);
        (void)busbw_precision_allows(s);
      }
      std::ostringstream rows;
      write_collectives_csv_rows(rows, log);
      (void)merge_collectives_csv(existing, "existing.csv", {log});
    });
    if (o == Outcome::read) outcome = Outcome::read;
  }
  // The existing collectives.csv alone.
  (void)refusing_input_errors([&] { (void)merge_collectives_csv(existing, "existing.csv", {}); });
  return outcome;
}

Outcome fuzz_model_config(const std::uint8_t* data, std::size_t size) {
  const auto p = parts(data, size);
  const std::string path = put("config.json", p[0]);
  const std::vector<std::string> ignore = p.size() > 1 ? lines(p[1]) : std::vector<std::string>{};
  return refusing_input_errors([&] {
    const ModelArch arch = ModelArch::from_hf_config(path, ignore);
    // The sizes that follow from the shape, and one step of the cost model on one GPU.
    (void)arch.params();
    (void)arch.weight_bytes();
    (void)arch.kv_bytes_per_token();
    (void)arch.kv_window();
    (void)arch.sliding_layers(1, 2);
    const GpuSpec gpu = fuzz_gpu();
    const StepModel model(arch, gpu, ParallelConfig{}, std::make_shared<const RooflinePredictor>(gpu), EngineOverhead{},
                          nullptr);
    BatchShape batch;
    batch.window = arch.sliding_window;
    batch.prefills.push_back({.tokens = 128, .context = 0});
    batch.add_decode(4096);
    batch.num_sampled = 2;
    (void)model.step_time(batch);
    (void)model.weight_bytes_per_gpu(0);
    (void)model.kv_bytes_per_token_per_gpu(0);
  });
}

Outcome fuzz_profile(const std::uint8_t* data, std::size_t size) {
  static constexpr std::array<const char*, 5> kFiles = {"profile.json", "gemm.csv", "attention.csv", "memory.csv",
                                                        "collectives.csv"};
  const auto p = parts(data, size);
  for (std::size_t i = 0; i < kFiles.size(); ++i) {
    const std::string name = std::string("profile/") + kFiles[i];
    if (i < p.size()) {
      (void)put(name, p[i]);
    } else {
      fs::remove(work_dir() / name);
    }
  }
  return refusing_input_errors([&] {
    const auto profile = std::make_shared<const CalibrationProfile>(CalibrationProfile::load((work_dir() / "profile").string()));
    const GpuSpec gpu = fuzz_gpu();
    (void)profile_gpu_mismatch(*profile, gpu, "profile");
    // As a scenario with [hardware] profile uses it, and `servesim calibrate report`.
    const CalibratedPredictor predictor(gpu, profile);
    (void)predictor.report();
    (void)predictor.gemm(GemmShape{.op = "qkv_proj", .m = 16, .n = 6144, .k = 4096});
    AttentionShape a;
    a.heads_q = 32;
    a.heads_kv = 8;
    a.head_dim = 128;
    (void)predictor.attention_decode(a, 8, 8 * 1024);
    const PrefillChunk chunk{.tokens = 512, .context = 0};
    (void)predictor.attention_prefill(a, std::span<const PrefillChunk>(&chunk, 1));
    (void)predictor.elementwise(Bytes{1e6}, Flops{1e6});
  });
}

std::span<const Target> targets() {
  static constexpr Target kTargets[] = {{"scenario", fuzz_scenario}, {"trace", fuzz_trace},
                                        {"measured", fuzz_measured}, {"nccl", fuzz_nccl},
                                        {"model_config", fuzz_model_config}, {"profile", fuzz_profile}};
  return kTargets;
}

}  // namespace servesim::fuzz
