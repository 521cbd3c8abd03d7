// Benchmarks of whole simulations (Google Benchmark). The headlines: 100,000 requests of Vidur's own configuration
// (Llama-2-7B on one A100, Poisson 4 req/s, 512 prompt / 128 output tokens; scenarios/perf/vidur-llama2-7b-a100.toml)
// and one million requests of Azure-conversation-like load on one Llama-3-8B / H100 replica
// (scenarios/perf/azure-conv-1m.toml).
// Run: build/servesim_perf   (counters: events/s, requests/s of wall time, simulated steps, peak_rss_mb)
// The median of five: build/servesim_perf --benchmark_filter='Vidur|Azure' --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <filesystem>
#include <fstream>
#include <malloc.h>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

#include "sim/cli/run.h"

using namespace servesim;

namespace {

// The process's peak resident set since the last reset_peak_rss(), in MB: Linux's VmHWM, which writing "5" to
// /proc/self/clear_refs resets to the current resident set (proc(5)); so each benchmark reports its own peak (memory
// its predecessors freed is first handed back with malloc_trim). getrusage's whole-process peak where that fails.
void reset_peak_rss() {
  ::malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
}
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void run_scenario_bench(benchmark::State& state, const std::string& file, std::int64_t requests) {
  ScenarioOptions opts;
  opts.sets.emplace_back("workload.num_requests", std::to_string(requests));
  const ScenarioLoader loader(std::string(SERVESIM_SOURCE_DIR) + "/" + file, opts);
  std::uint64_t events = 0;
  std::int64_t steps = 0;
  reset_peak_rss();
  for (auto _ : state) {
    const RunOutput out = run_scenario(loader);
    events = out.events;
    steps = out.summary["servesim"]["steps"].get<std::int64_t>();
    benchmark::DoNotOptimize(out.summary);
  }
  state.counters["events"] = double(events);
  state.counters["steps"] = double(steps);
  state.counters["events_per_s"] = benchmark::Counter(double(events) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["requests_per_s"] =
      benchmark::Counter(double(requests) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["peak_rss_mb"] = peak_rss_mb();
}

// Vidur's anchor: its simulator takes ~205 s of loop for these 100,000 requests on the build machine's kind.
void BM_Vidur100k(benchmark::State& state) {
  run_scenario_bench(state, "scenarios/perf/vidur-llama2-7b-a100.toml", 100000);
}
BENCHMARK(BM_Vidur100k)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

void BM_AzureConv1M(benchmark::State& state) {
  run_scenario_bench(state, "scenarios/perf/azure-conv-1m.toml", 1000000);
}
BENCHMARK(BM_AzureConv1M)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

void BM_Quickstart(benchmark::State& state) { run_scenario_bench(state, "scenarios/quickstart.toml", 2000); }
BENCHMARK(BM_Quickstart)->Unit(benchmark::kMillisecond)->UseRealTime();

// Peak memory of `servesim run` on the benchmark load with N requests (requests.csv and summary.json written
// through run_to_files, as the CLI does; requests.csv streamed as requests finish). The counter peak_rss_mb is the
// process's peak resident set (getrusage), so run one size per process, alone:
//   build/servesim_perf --benchmark_filter='BM_RunPeakRss/10000000/'   (target: under 1.5 GB; ~10-15 min)
//   build/servesim_perf --benchmark_filter='BM_RunPeakRss/1000000/'
// The same through the CLI: /usr/bin/time -v build/servesim run scenarios/perf/azure-conv-1m.toml
//   --set workload.num_requests=10000000 --out /tmp/rss   ("Maximum resident set size").
// Measured that way (Release build): 1 M requests 99 MB, 10 M 841 MB (61.1 M steps; each record with its time
// breakdown, ~41 B packed; the gap runs sorted at the end through a scratch copy of the largest bucket). Before that
// copy: 80 MB and 733 MB; before the breakdown: 60 MB and 538 MB; before the recorder packed its records and gap
// runs (sim/metrics/recorder.h) 204 MB and 1.90 GB.
void BM_RunPeakRss(benchmark::State& state) {
  const std::int64_t requests = state.range(0);
  ScenarioOptions opts;
  opts.sets.emplace_back("workload.num_requests", std::to_string(requests));
  const ScenarioLoader loader(std::string(SERVESIM_SOURCE_DIR) + "/scenarios/perf/azure-conv-1m.toml", opts);
  const std::string dir = (std::filesystem::temp_directory_path() / ("servesim-rss-" + std::to_string(::getpid()))).string();
  for (auto _ : state) {
    OutputFiles files;
    expect_run_outputs(files, dir);
    const RunOutput out = run_to_files(loader, files, dir, "");
    files.commit();
    benchmark::DoNotOptimize(out.summary);
  }
  std::filesystem::remove_all(dir);
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  state.counters["peak_rss_mb"] = double(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}
BENCHMARK(BM_RunPeakRss)->Arg(1000000)->Arg(10000000)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
