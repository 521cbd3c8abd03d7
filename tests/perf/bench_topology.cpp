// Benchmarks of loading a fleet: a leaf/spine cluster of N DGX H100 nodes (the catalogue's dgx-h100 node, the
// fabric of scenarios/topologies/cluster-4x-dgx-h100.toml with `nodes = N`) filled with tensor-parallel-8
// replicas, one per node, as a scenario with that many replicas places them.
//   BM_FleetTopology/N   load the topology file, then build every replica's communication model (TopologyComm:
//                        its CommGroup, routes among its 8 GPUs, NCCL inputs), as sim/scenario/placement.cpp does.
//   BM_FleetScenario/N   the whole scenario load (ScenarioLoader: topology, placement, comm groups, a step model
//                        per replica, KV sizing, workload) of Llama-3-70B at TP 8 with `replicas = N`.
// Target: 1,024 nodes load in under 5 s; 4,096 nodes (the topology limit, kMaxNodes) in seconds.
// Run: build/servesim_perf --benchmark_filter='BM_Fleet'
// Measured (Release, 2 cores shared with other builds, wall time of one iteration):
//        N                     64       256      1024     4096
//   BM_FleetTopology         0.02 s   0.06 s   0.26 s   0.91 s
//   BM_FleetScenario         0.02 s   0.14 s   0.30 s   0.97 s
// with derive_nccl_inputs reading each GPU's own links (Topology::out_links) and its node's vertices
// (Topology::node_vertices); scanning every link of the cluster per group instead costs 2.4 s at 1,024 nodes and
// 99 s at 4,096. Before routes were searched per group (one whole-graph Dijkstra per route, the graph rebuilt
// each time) the 64-node scenario took 40 s through `servesim run`.
#include <benchmark/benchmark.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "models/net/topology_comm.h"
#include "sim/scenario/scenario.h"

using namespace servesim;

namespace {

const std::string kSource = SERVESIM_SOURCE_DIR;

// A fresh folder holding cluster.toml (N nodes) and scenario.toml (N TP-8 replicas on it).
std::filesystem::path write_fleet(std::int64_t nodes) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("servesim-fleet-" + std::to_string(::getpid()) + "-" + std::to_string(nodes));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "cluster.toml") << "name = \"cluster-" << nodes << "x-dgx-h100\"\n"
                                      << "node = \"" << kSource << "/scenarios/topologies/dgx-h100.toml\"\n"
                                      << "nodes = " << nodes << "\n"
                                      << "[fabric]\nkind = \"leaf_spine\"\nleaves = 8\nspines = 4\n"
                                      << "rail_optimized = true\nlink_bandwidth = \"400Gb/s\"\n"
                                      << "link_latency = \"0.5us\"\nuplink_latency = \"0.3us\"\n";
  std::ofstream(dir / "scenario.toml")
      << "[model]\nconfig = \"llama-3-70b\"\n[hardware]\ngpu = \"h100-sxm\"\n"
      << "[parallel]\ntensor_parallel_size = 8\ntopology = \"cluster.toml\"\n"
      << "[cluster]\nreplicas = " << nodes << "\n"
      << "[workload]\nnum_requests = 100\n[workload.arrival]\nimpl = \"poisson\"\nrate = 4.0\n"
      << "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 1024\n"
      << "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 128\n";
  return dir;
}

void BM_FleetTopology(benchmark::State& state) {
  const std::int64_t nodes = state.range(0);
  const auto dir = write_fleet(nodes);
  ParallelConfig parallel;
  parallel.tensor = 8;
  std::size_t links = 0;
  for (auto _ : state) {
    const auto topo = std::make_shared<const Topology>(
        load_topology((dir / "cluster.toml").string(), kSource + "/scenarios/topologies"));
    std::vector<std::shared_ptr<const TopologyComm>> comms;
    for (int r = 0; r < nodes; ++r) {
      std::vector<int> gpus;
      for (int i = 0; i < 8; ++i) gpus.push_back(r * 8 + i);
      comms.push_back(std::make_shared<const TopologyComm>(topo, gpus, parallel, "auto", nullptr));
    }
    links = topo->links().size();
    benchmark::DoNotOptimize(comms.back()->all_reduce(Bytes{1 << 20}));
  }
  state.counters["links"] = double(links);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_FleetTopology)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Iterations(1)->Unit(benchmark::kSecond)
    ->UseRealTime();

void BM_FleetScenario(benchmark::State& state) {
  const std::int64_t nodes = state.range(0);
  const auto dir = write_fleet(nodes);
  // The scenario lives in a temp folder: the catalogues are found through SERVESIM_HOME (unless already set).
  ::setenv("SERVESIM_HOME", SERVESIM_SOURCE_DIR, 0);
  for (auto _ : state) {
    const ScenarioLoader loader((dir / "scenario.toml").string(), ScenarioOptions{});
    benchmark::DoNotOptimize(loader.scenario().step_models.size());
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_FleetScenario)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Iterations(1)->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace
