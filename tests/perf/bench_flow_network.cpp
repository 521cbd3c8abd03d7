// Benchmark of the event-driven flow network (sim/network/flow_network.h): 10,000 concurrent flows between GPUs
// on different nodes of a 64-node cluster (the catalogue's dgx-h100 node on the leaf/spine fabric of
// scenarios/topologies/cluster-4x-dgx-h100.toml with `nodes = 64`: 512 GPUs, 5,264 directed links), run to
// completion with max-min fair rates re-solved at every start and end.
//   BM_FlowNetwork/N   N flows: uniformly random (source, destination) GPU pairs on different nodes, sizes
//                      uniform in [1, 256] MiB, starts uniform over the first millisecond (at ~20 flows per NIC
//                      they last tens of milliseconds, so nearly all are in flight together: `peak_flows`). No rate
//                      caps: each flow is held by the 400 Gb/s NICs it shares. Counters: flows/s (flows simulated
//                      per second of wall time), rate_changes (flows whose rate a start or an end changed, summed:
//                      the re-solves' work), sim_ms (simulated time to the last completion).
// Target: 10,000 flows in seconds, not minutes.
// Run: /usr/bin/time -v build/servesim_perf --benchmark_filter=Flow   (one N: --benchmark_filter='Flow.*/10000/')
// Measured (Release, gcc 12, one iteration each, on 2 cores shared with another build: load average 2.8; times
// are the benchmark's timed loop, which excludes building the topology and routes; with the memory shared, CPU
// time varies by about +-20% from run to run):
//        N                      1,000      3,000       10,000
//   wall time                 0.010 s    0.072 s    10.0-10.8 s
//   CPU time                  0.010 s    0.072 s     9.5-10.2 s
//   flows/s                   104,000     41,600        1,000
//   rate_changes                4,651     98,212   14,554,853   (~730 per start or end at N = 10,000)
// With no other work on the machine (load average 1.7 from before): N = 10,000 in 7.94 s of wall time, 7.93 s CPU.
// The previous version, run alternately with this one at the same load, took 0.102 s (N = 3,000) and 19.1 s of
// CPU time (N = 10,000); the results (every completion time, every rate) are bit-identical. At N = 10,000 the
// cost is ~0.65 us per rate change, most of it cache misses over the flows the change reaches: the re-fill's
// hot data is kept in dense per-slot and per-link arrays (flow_table.h), a link has one queued saturation event,
// a finish time that only moves later leaves the finish queue alone (flow_network.h), and a link's clean-rate
// list is rescanned only when flows on it became dirty. Still left: the leaf/spine links here (3.2 TB/s, a
// few hundred flows each) never saturate, yet are tracked in every re-fill because no single narrower link
// covers all of their flows (LinkStates::dominated); leaving them out was worth ~10% in an experiment. Their
// flows' NICs sum to exactly their capacity (64 x 50 GB/s, a non-blocking fabric), so only a rule "narrower
// links summing to at most the capacity" would leave them out, and such a link can be full: a flow it freezes
// must then still have a recorded holder (a first try without that failed the random-flow test).
// The work is the rate changes themselves: once the NICs' flows are dense enough that their bottlenecks form one
// connected web (about 20 flows per NIC here), max-min fairness passes each start or end on from the flows of
// one NIC to the other NICs they use, and an exact re-solve must touch every flow whose rate moves (cutting
// changes below 1e-6 relative removes only ~10% of them at N = 6,000). The first version, which re-solved the
// whole connected component at every event with models/net/flow_rates.h's solver, took 226 s of wall time for
// N = 10,000 on the same machine; the incremental re-fill (sim/network/max_min_refill.h) does only the changes.
#include <algorithm>
#include <benchmark/benchmark.h>
#include <boost/random/uniform_int_distribution.hpp>
#include <boost/random/uniform_real_distribution.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "models/net/topology.h"
#include "sim/core/random.h"
#include "sim/core/simulator.h"
#include "sim/network/flow_network.h"

using namespace servesim;

namespace {

const std::string kSource = SERVESIM_SOURCE_DIR;

// The 64-node cluster, written to a temp folder and loaded.
Topology cluster(int nodes) {
  const auto dir = std::filesystem::temp_directory_path() / ("servesim-flows-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "cluster.toml";
  std::ofstream(file) << "name = \"cluster-" << nodes << "x-dgx-h100\"\n"
                      << "node = \"" << kSource << "/scenarios/topologies/dgx-h100.toml\"\n"
                      << "nodes = " << nodes << "\n"
                      << "[fabric]\nkind = \"leaf_spine\"\nleaves = 8\nspines = 4\nrail_optimized = true\n"
                      << "link_bandwidth = \"400Gb/s\"\nlink_latency = \"0.5us\"\nuplink_latency = \"0.3us\"\n";
  Topology topo = load_topology(file.string(), kSource + "/scenarios/topologies");
  std::filesystem::remove_all(dir);
  return topo;
}

struct Workload {
  std::vector<FlowDemand> demands;
  std::vector<Bytes> bytes;
  std::vector<Ns> starts;
};

Workload make_workload(const Topology& topo, std::int64_t count) {
  RandomEngine rng = make_stream(2024, "bench_flow_network");
  boost::random::uniform_int_distribution<int> gpu(0, topo.gpu_count() - 1);
  boost::random::uniform_real_distribution<double> mib(1.0, 256.0);
  boost::random::uniform_int_distribution<std::int64_t> start_ns(0, 1'000'000);
  std::vector<int> gpu_vertices;
  for (int g = 0; g < topo.gpu_count(); ++g) gpu_vertices.push_back(topo.gpu_vertex(g));
  std::vector<std::vector<std::optional<Route>>> routes(static_cast<std::size_t>(topo.gpu_count()));
  Workload w;
  for (std::int64_t i = 0; i < count; ++i) {
    const int a = gpu(rng);
    int b = gpu(rng);
    while (topo.node_of_gpu(b) == topo.node_of_gpu(a)) b = gpu(rng);
    auto& from_a = routes[static_cast<std::size_t>(a)];
    if (from_a.empty()) from_a = topo.routes_to(gpu_vertices[static_cast<std::size_t>(a)], gpu_vertices);
    w.demands.push_back(FlowDemand{from_a[static_cast<std::size_t>(b)]->links});
    w.bytes.emplace_back(mib(rng) * kMiB);
    w.starts.push_back(Ns{start_ns(rng)});
  }
  return w;
}

// Starts the workload's flows at their times; counts completions and the peak of flows in flight.
class Starter final : public EventTarget, public FlowHandler {
 public:
  Starter(FlowNetwork& net, const Workload& w) : net_(net), w_(w) {}
  void on_event(Simulator& sim, std::uint64_t arg) override {
    net_.start(sim, w_.demands[arg], w_.bytes[arg], this, arg);
    peak = std::max(peak, net_.active_flows());
  }
  void flow_done(Simulator&, std::uint64_t) override { ++done; }
  std::size_t peak = 0;
  std::size_t done = 0;

 private:
  FlowNetwork& net_;
  const Workload& w_;
};

void BM_FlowNetwork(benchmark::State& state) {
  const std::int64_t count = state.range(0);
  const Topology topo = cluster(64);
  const Workload w = make_workload(topo, count);
  std::size_t peak = 0;
  std::uint64_t changes = 0;
  double sim_ms = 0;
  for (auto _ : state) {
    FlowNetwork net(topo);
    Simulator sim;
    Starter starter(net, w);
    for (std::size_t i = 0; i < w.starts.size(); ++i) sim.schedule(w.starts[i], Priority::arrival, &starter, i);
    sim.run();
    if (starter.done != w.starts.size()) state.SkipWithError("not every flow finished");
    peak = starter.peak;
    changes = net.rate_changes();
    sim_ms = ns_to_ms(sim.now());
  }
  state.counters["flows/s"] = benchmark::Counter(static_cast<double>(count), benchmark::Counter::kIsRate);
  state.counters["peak_flows"] = static_cast<double>(peak);
  state.counters["rate_changes"] = static_cast<double>(changes);
  state.counters["sim_ms"] = sim_ms;
}
BENCHMARK(BM_FlowNetwork)->Arg(1000)->Arg(3000)->Arg(10000)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
