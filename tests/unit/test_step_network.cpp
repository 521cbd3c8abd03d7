// Replicas whose communication crosses nodes on the shared flow-level network: which GPU pairs a step loads and by
// how much (models/net/step_traffic.h, by hand), that alone they keep the step model's times to the byte, and that
// KV transfers and a prefill replica's all-reduces through the same NICs slow each other
// (sim/cluster/step_network.h).
#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "helpers.h"
#include "models/arch/model_arch.h"
#include "models/net/step_traffic.h"
#include "models/net/topology.h"
#include "sim/cli/run.h"
#include "sim/scenario/scenario.h"

using namespace servesim;

namespace {

const std::string kCatalog = test::source_dir() + "/scenarios/topologies";

ModelArch model(const std::string& name) {
  return ModelArch::from_hf_config(test::source_dir() + "/scenarios/models/" + name + ".json");
}

std::vector<int> range(int from, int to) {
  std::vector<int> v;
  for (int g = from; g < to; ++g) v.push_back(g);
  return v;
}

StepOp op(const char* name, double bytes, double seconds) {
  return StepOp{name, Flops{0.0}, Bytes{bytes}, Seconds{seconds}, Bound::communication};
}

// (src GPU, dst GPU) -> bytes of a load.
std::map<std::pair<int, int>, double> by_pair(const StepTraffic& t, const StepTraffic::Load& load) {
  std::map<std::pair<int, int>, double> out;
  for (std::size_t k = 0; k < t.pairs().size(); ++k) out[{t.pairs()[k].src_gpu, t.pairs()[k].dst_gpu}] = load.bytes[k];
  return out;
}

RunOutput run_with(const std::string& path, std::vector<std::pair<std::string, std::string>> sets,
                   std::ostream* csv = nullptr, std::ostream* links = nullptr) {
  ScenarioOptions opts;
  opts.allow_pools = true;
  opts.sets = std::move(sets);
  const ScenarioLoader loader(path, opts);
  RunStreams streams;
  streams.requests_csv = csv;
  streams.link_stats = links;
  return run_scenario(loader, streams);
}

}  // namespace

TEST_CASE("step traffic: pipeline stages on two nodes send between their first GPUs, their all-reduces stay inside",
          "[step_network]") {
  const Topology topo = load_topology("cluster-2x-dgx-h100", kCatalog);
  ParallelConfig par;
  par.tensor = 8;
  par.pipeline = 2;
  const StepTraffic t(topo, range(0, 16), par, model("llama-3-70b"));
  REQUIRE(t.spans_nodes());
  REQUIRE(t.pairs().size() == 1);
  CHECK(t.pairs()[0].src_gpu == 0);
  CHECK(t.pairs()[0].dst_gpu == 8);
  CHECK(t.pairs()[0].links == topo.gpu_route(0, 8).links);
  // The send's bytes and time count whole; the all-reduces (inside each node) and a GEMM not at all.
  const auto load = t.of({op("pp_send_recv", 1.0e6, 2e-5), op("tp_all_reduce_attn", 3.0e8, 1e-3),
                          op("tp_gather_logits", 5.0e5, 1e-5), op("qkv", 7.0e8, 2e-3)});
  CHECK(load.bytes == std::vector<double>{1.0e6});
  CHECK(load.time.value() == 2e-5);
  // One node: nothing crosses.
  ParallelConfig tp8;
  tp8.tensor = 8;
  CHECK_FALSE(StepTraffic(topo, range(8, 16), tp8, model("llama-3-70b")).spans_nodes());
}

TEST_CASE("step traffic: a TP-16 all-reduce over two nodes loads the rail pairs as NCCL's rings do", "[step_network]") {
  const Topology topo = load_topology("cluster-2x-dgx-h100", kCatalog);
  ParallelConfig par;
  par.tensor = 16;
  const StepTraffic t(topo, range(0, 16), par, model("llama-3-70b"));
  // 8 rail-aligned rings and their reverses (16 channels), each crossing between the nodes twice: ring c leaves
  // node 0 at local rank c + 1 and node 1 at local rank c. Each channel carries 2 x 15 / 16 / 16 = 0.1171875 of
  // the message per edge, and each directed rail pair (i -> 8 + i, 8 + i -> i) is an edge of two channels:
  // 0.234375 of the message. The logits gather sends 1/16 of its bytes from each of GPUs 8-15 to GPU 0.
  const double m = 1.6e9;
  const double g = 3.2e6;
  const auto load = t.of({op("tp_all_reduce_attn", m / 2, 1e-3), op("tp_all_reduce_mlp", m / 2, 1e-3),
                          op("tp_gather_logits", g, 5e-5)});
  const auto bytes = by_pair(t, load);
  CHECK(bytes.size() == 16 + 7);
  for (int i = 0; i < 8; ++i) {
    CHECK(bytes.at({i, 8 + i}) == Approx(0.234375 * m).epsilon(1e-15));
    const double gather = i == 0 ? g / 16 : 0.0;
    CHECK(bytes.at({8 + i, i}) == Approx(0.234375 * m + gather).epsilon(1e-15));
  }
  for (int i = 9; i < 16; ++i) CHECK(bytes.at({i, 0}) == g / 16);  // off the rails: the gather alone
  CHECK(load.time.value() == Approx(2e-3 + 5e-5).epsilon(1e-15));
}

TEST_CASE("step network: replicas that cross nodes on separate rails keep the step model's times to the byte",
          "[step_network]") {
  // Two TP 1 x PP 2 replicas: GPU 0 -> GPU 8 (rail 0) and GPU 1 -> GPU 9 (rail 1). Both on the network, neither
  // shares a link with the other: every flow gets its cap, every step its time alone.
  const auto dir = test::temp_dir("step-network-alone");
  const std::string path = test::write_file(
      dir / "s.toml", test::base_scenario_text() +
                          "[parallel]\ntopology = \"cluster-2x-dgx-h100\"\npipeline_parallel_size = 2\n"
                          "gpus = [0, 8, 1, 9]\n[cluster]\nreplicas = 2\n"
                          "[workload]\nnum_requests = 200\n[workload.arrival]\nimpl = \"poisson\"\nrate = 20.0\n"
                          "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 1024\n"
                          "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 64\n");
  std::ostringstream on_csv;
  std::ostringstream off_csv;
  std::ostringstream links;
  RunOutput on = run_with(path, {}, &on_csv, &links);
  RunOutput off = run_with(path, {{"sim.network_contention", "false"}}, &off_csv);
  REQUIRE(on.summary["servesim"].contains("network"));
  const auto net = on.summary["servesim"]["network"];
  CHECK(net["replicas_on_network"] == 2);
  CHECK(net["steps"].get<std::int64_t>() > 0);
  CHECK(net["flows"].get<std::int64_t>() == net["steps"].get<std::int64_t>());  // one send per step
  CHECK(net["steps_slowed"] == 0);
  CHECK(net["added_communication_ms"] == 0.0);
  CHECK_FALSE(off.summary["servesim"].contains("network"));
  CHECK(on_csv.str() == off_csv.str());
  on.summary["servesim"].erase("network");
  for (auto* j : {&on.summary, &off.summary}) {
    (*j)["servesim"].erase("run");     // its sets differ
    (*j)["servesim"].erase("events");  // the flows' completions are events too, and every step is scheduled
  }
  CHECK(on.summary == off.summary);
  // --link-stats sees the sends on rail 0 (n0.gpu0's first hop).
  double sent = 0;
  std::istringstream in(links.str());
  std::string line;
  std::getline(in, line);
  CHECK(line == "start_s,end_s,link,from,to,bytes,utilisation");
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    REQUIRE(f.size() == 7);
    if (f[3] == "n0.gpu0" && f[4] == "n0.pcie0") sent += std::stod(f[5]);
  }
  CHECK(sent > 0);
}

TEST_CASE("step network: KV transfers and a prefill replica's all-reduces through the same NICs slow each other",
          "[step_network]") {
  // TP-16 prefill on nodes 0 and 1, TP-8 decode on node 2: the KV leaves through the NICs the prefill's
  // all-reduces cross. A step is slowed only when a KV transfer is still under way as the next prefill step's
  // all-reduces start: a few steps of a run (2 of 355 here).
  const std::string path = test::source_dir() + "/scenarios/disagg/llama70b-tp16-prefill-4x-dgx-h100.toml";
  const std::vector<std::pair<std::string, std::string>> load{{"workload.num_requests", "600"},
                                                              {"workload.arrival.rate", "24"}};
  auto with_off = load;
  with_off.emplace_back("sim.network_contention", "false");
  const RunOutput on = run_with(path, load);
  const RunOutput off = run_with(path, with_off);
  const auto& kv_on = on.summary["servesim"]["disaggregation"]["kv_transfer_ms"];
  const auto& kv_off = off.summary["servesim"]["disaggregation"]["kv_transfer_ms"];
  CHECK(kv_on["p99"].get<double>() > 1.2 * kv_off["p99"].get<double>());
  CHECK(kv_on["mean"].get<double>() > kv_off["mean"].get<double>());
  const auto& net = on.summary["servesim"]["network"];
  CHECK(net["replicas_on_network"] == 1);
  CHECK(net["steps_slowed"].get<std::int64_t>() > 0);
  CHECK(net["added_communication_ms"].get<double>() > 0.0);
}

TEST_CASE("step network: a bad network_contention value is one line naming the key", "[step_network]") {
  const std::string path = test::source_dir() + "/scenarios/disagg/llama70b-tp16-prefill-4x-dgx-h100.toml";
  CHECK_THROWS_WITH(run_with(path, {{"sim.network_contention", "3"}}), Catch::Contains("network_contention"));
}
