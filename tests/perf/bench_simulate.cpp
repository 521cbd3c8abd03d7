// Benchmarks of whole simulations (Google Benchmark). The headline: one million requests of
// Azure-conversation-like load on one Llama-3-8B / H100 replica (scenarios/perf/azure-conv-1m.toml).
// Run: build/servesim_perf   (counters: events/s, requests/s of wall time, simulated steps)
#include <benchmark/benchmark.h>

#include "sim/cli/run.h"

using namespace servesim;

namespace {

void run_scenario_bench(benchmark::State& state, const std::string& file, std::int64_t requests) {
  ScenarioOptions opts;
  opts.sets.emplace_back("workload.num_requests", std::to_string(requests));
  const ScenarioLoader loader(std::string(SERVESIM_SOURCE_DIR) + "/" + file, opts);
  std::uint64_t events = 0;
  std::int64_t steps = 0;
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
}

void BM_AzureConv1M(benchmark::State& state) {
  run_scenario_bench(state, "scenarios/perf/azure-conv-1m.toml", 1000000);
}
BENCHMARK(BM_AzureConv1M)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

void BM_Quickstart(benchmark::State& state) { run_scenario_bench(state, "scenarios/quickstart.toml", 2000); }
BENCHMARK(BM_Quickstart)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
