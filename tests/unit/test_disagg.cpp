// Disaggregated serving (sim/cluster/kv_handoff.h): the hand-off after the prefill's first token, the KV transfer
// on the flow-level network, back-pressure from the decode replica's KV blocks, and bad pools.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "helpers.h"
#include "models/common/error.h"
#include "models/cost/kv_transfer.h"
#include "models/net/transport.h"
#include "sim/cli/run.h"

using namespace servesim;
using namespace servesim::test;

namespace {

// Llama-3-8B (32 layers x 8 KV heads x 128 x 2 B x 2 = 131,072 B of KV per token) on the two-node DGX H100
// cluster: `prefill` TP-1 prefill replicas on node 0's GPUs 0.., one TP-1 decode replica on node 1's GPU 8.
std::string disagg_text(int prefill, const std::string& decode_engine, const std::string& workload,
                        const std::string& transfer = "", int decode = 1, const std::string& decode_router = "") {
  std::string gpus;
  for (int g = 0; g < prefill; ++g) gpus += (g ? ", " : "") + std::to_string(g);
  std::string decode_gpus;
  for (int g = 0; g < decode; ++g) decode_gpus += (g ? ", " : "") + std::to_string(8 + g);
  return base_scenario_text() +
         "[parallel]\ntopology = \"cluster-2x-dgx-h100\"\n"
         "[cluster]\n" + decode_router +
         "\n[cluster.kv_transfer]\n" + transfer +
         "\n[[cluster.pools]]\nrole = \"prefill\"\nnum_replicas = " + std::to_string(prefill) +
         "\n[cluster.pools.parallel]\ngpus = [" + gpus + "]\n"
         "[[cluster.pools]]\nrole = \"decode\"\nnum_replicas = " + std::to_string(decode) +
         "\n[cluster.pools.parallel]\ngpus = [" + decode_gpus + "]\n"
         "[cluster.pools.engine]\n" + decode_engine + "\n" + workload;
}

std::string fixed_workload(int n, double rate, int prompt, int output) {
  return "[workload]\nnum_requests = " + std::to_string(n) + "\n[workload.arrival]\nimpl = \"poisson\"\nrate = " +
         std::to_string(rate) + "\n[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = " + std::to_string(prompt) +
         "\n[workload.output_tokens]\nimpl = \"fixed\"\nvalue = " + std::to_string(output) + "\n";
}

RunOutput run_text(const std::string& text, const std::string& tag) {
  const auto dir = temp_dir(tag);
  const std::string path = write_file(dir / "s.toml", text);
  ScenarioOptions opts;
  opts.allow_pools = true;
  const ScenarioLoader loader(path, opts);
  return run_scenario(loader, RunStreams{});
}

std::vector<RequestRecord> records_of(const RunOutput& out) {
  std::vector<RequestRecord> v;
  for (std::size_t i = 0; i < out.recorder.records().size(); ++i) v.push_back(out.recorder.records()[i]);
  return v;
}

Ns p99_transfer(const std::vector<RequestRecord>& rs) {
  std::vector<std::int64_t> t;
  for (const auto& r : rs) t.push_back(r.kv_transfer.v);
  std::sort(t.begin(), t.end());
  return Ns{t[static_cast<std::size_t>(0.99 * double(t.size() - 1))]};
}

// Checks that a decode engine's KV blocks in use never exceed its pool, at every step.
class KvBoundSink final : public RunSink {
 public:
  void step_started(const StepEvent& s) override {
    ++steps;
    if (s.kv_used_blocks > s.kv_blocks || s.kv_used_blocks < 0) ++violations;
  }
  std::int64_t steps = 0;
  std::int64_t violations = 0;
};

}  // namespace

TEST_CASE("disaggregated: the prefill samples the first token, the KV moves, the decode finishes", "[disagg]") {
  const RunOutput out = run_text(disagg_text(1, "", fixed_workload(40, 0.5, 2048, 16)), "disagg-basic");
  const auto rs = records_of(out);
  REQUIRE(rs.size() == 40);
  // KV of one request: 2,048 x 131,072 B = 268,435,456 B (256 MiB), one pair GPU 0 -> GPU 8.
  const Topology& topo = *ScenarioLoader(scenario_path("disagg/llama70b-1p1d-2x-dgx-h100.toml"),
                                         ScenarioOptions{{}, {}, std::nullopt, true})
                              .scenario()
                              .topo;
  const TransportChoice c = select_transport(topo, 0, 8, Bytes{268435456.0});
  CHECK(c.path.transport == "gpudirect_rdma");
  // Alone (2 s apart on average, 16 tokens each: transfers never overlap in this run): setup + one message +
  // bytes at the transport's rate, within the network's rounding to whole nanoseconds.
  const std::int64_t alone = to_ns(c.time).v;
  for (const auto& r : rs) {
    CHECK(r.prefill_replica == 0);
    CHECK(r.replica == 1);
    CHECK(std::abs(r.kv_transfer.v - alone) <= 2);
    CHECK(r.decode_wait.v == 0);
    CHECK(r.decode_stall().v >= 0);
    CHECK(r.first_token > r.arrival);
  }
  const auto& d = out.summary["servesim"]["disaggregation"];
  CHECK(d["handed_off"].get<std::int64_t>() == 40);
  CHECK(d["received"].get<std::int64_t>() == 40);
  CHECK(d["kv_transfer_ms"]["p50"].get<double>() == Approx(double(alone) * 1e-6).epsilon(1e-6));
}

TEST_CASE("disaggregated: transfers sharing one NIC slow each other down", "[disagg]") {
  // Four prefill GPUs on node 0 send to one decode GPU on node 1: every transfer ends on GPU 8's NIC. Long
  // prompts arriving together (1000 req/s) overlap there; the same prompts 5 s apart do not.
  const std::string decode = "max_num_seqs = 256\n";
  const RunOutput burst = run_text(disagg_text(4, decode, fixed_workload(64, 1000.0, 4096, 8)), "disagg-burst");
  const RunOutput spaced = run_text(disagg_text(4, decode, fixed_workload(64, 0.2, 4096, 8)), "disagg-spaced");
  const Ns contended = p99_transfer(records_of(burst));
  const Ns alone = p99_transfer(records_of(spaced));
  // Alone: 4,096 x 131,072 B = 512 MiB at 48 GB/s ~ 11.2 ms. Together: at least two share the NIC.
  CHECK(alone.v > 11'000'000);
  CHECK(alone.v < 11'400'000);
  CHECK(double(contended.v) > 1.8 * double(alone.v));
}

TEST_CASE("disaggregated: too few decode blocks make requests wait, none is lost, none over-commits", "[disagg]") {
  // The decode replica has 1,024 usable blocks of 16 tokens (16,384 tokens); each request needs 4,096 / 16 = 256
  // blocks for its prompt and grows to 4,096 + 63 tokens: at most 3 fit at once; 32 arrive together.
  KvBoundSink bound;
  const auto dir = temp_dir("disagg-bp");
  const std::string path = write_file(
      dir / "s.toml", disagg_text(2, "num_gpu_blocks_override = 1025\n", fixed_workload(32, 1000.0, 4096, 64)));
  ScenarioOptions opts;
  opts.allow_pools = true;
  const ScenarioLoader loader(path, opts);
  RunStreams streams;
  streams.sinks.push_back(&bound);
  const RunOutput out = run_scenario(loader, streams);
  const auto rs = records_of(out);
  REQUIRE(rs.size() == 32);
  std::set<std::uint64_t> ids;
  std::int64_t waited = 0;
  for (const auto& r : rs) {
    ids.insert(r.id);
    CHECK(r.output_tokens == 64);
    if (r.decode_wait.v > 0) ++waited;
    CHECK(r.decode_stall().v >= 0);
  }
  CHECK(ids.size() == 32);  // each request finished once, at the decode replica
  CHECK(waited >= 20);
  CHECK(bound.steps > 0);
  CHECK(bound.violations == 0);
  const auto& d = out.summary["servesim"]["disaggregation"];
  CHECK(d["handed_off"].get<std::int64_t>() == 32);
  CHECK(d["received"].get<std::int64_t>() == 32);
  CHECK(d["decode_wait_ms"]["max"].get<double>() > 0.0);
}

TEST_CASE("disaggregated: a layer-streamed transfer leaves less after the first token", "[disagg]") {
  const std::string w = fixed_workload(40, 0.5, 4096, 16);
  const auto after = records_of(run_text(disagg_text(1, "", w, "mode = \"after_prefill\"\n"), "disagg-after"));
  const auto streamed = records_of(run_text(disagg_text(1, "", w, "mode = \"layer_streamed\"\n"), "disagg-stream"));
  REQUIRE(after.size() == streamed.size());
  std::map<std::uint64_t, RequestRecord> a;
  for (const auto& r : after) a[r.id] = r;
  for (const auto& r : streamed) {
    const RequestRecord& x = a.at(r.id);
    CHECK(r.first_token == x.first_token);  // the prefill is the same
    CHECK(r.kv_transfer < x.kv_transfer);
    // Only the last layer's share is left (32 layers): about 1/32 of the transfer, at least.
    CHECK(r.kv_transfer.v >= x.kv_transfer.v / 32 - 20'000);
  }
}

TEST_CASE("disaggregated: bad pools are refused with one line naming the key", "[disagg]") {
  const std::string w = fixed_workload(4, 1.0, 128, 4);
  // NVLink cannot leave node 0.
  CHECK_THROWS_WITH(run_text(disagg_text(1, "", w, "transport = \"nvlink\"\n"), "disagg-bad1"),
                    Catch::Contains("cluster.kv_transfer.transport") && Catch::Contains("cannot carry"));
  // Pipeline parallelism in a prefill pool.
  std::string pp = disagg_text(1, "", w);
  pp.replace(pp.find("gpus = [0]"), 10, "gpus = [0, 1]\npipeline_parallel_size = 2");
  CHECK_THROWS_WITH(run_text(pp, "disagg-bad2"), Catch::Contains("pipeline_parallel_size"));
}

TEST_CASE("disaggregated: --link-stats adds up to the bytes moved and changes nothing else", "[disagg]") {
  const auto dir = temp_dir("disagg-links");
  const std::string path = write_file(dir / "s.toml", disagg_text(1, "", fixed_workload(40, 0.5, 2048, 16)));
  ScenarioOptions opts;
  opts.allow_pools = true;
  const ScenarioLoader loader(path, opts);
  std::ostringstream csv;
  RunStreams streams;
  streams.link_stats = &csv;
  streams.link_stats_interval = Ns{7'000'000'000};
  const RunOutput with = run_scenario(loader, streams);
  const RunOutput without = run_scenario(loader, RunStreams{});
  CHECK(with.summary == without.summary);
  // Every request's 256 MiB crosses each link of GPU 0 -> GPU 8 once: 40 x 268,435,456 B on n0.gpu0 -> n0.pcie0.
  std::istringstream in(csv.str());
  std::string line;
  std::getline(in, line);
  CHECK(line == "start_s,end_s,link,from,to,bytes,utilisation");
  double bytes = 0;
  double last_end = 0;
  int rows = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    REQUIRE(f.size() == 7);
    CHECK(std::stod(f[0]) >= last_end - 7.0 - 1e-9);
    last_end = std::max(last_end, std::stod(f[1]));
    CHECK(std::stod(f[6]) <= 1.0 + 1e-9);
    if (f[3] == "n0.gpu0" && f[4] == "n0.pcie0") bytes += std::stod(f[5]);
    ++rows;
  }
  CHECK(rows > 0);
  CHECK(bytes == Approx(40.0 * 268435456.0).epsilon(1e-9));
}

TEST_CASE("disaggregated: the least-KV-usage decode router sends a hand-off where the fewest blocks are in use",
          "[disagg]") {
  // Two decode replicas (GPUs 8 and 9, replicas 1 and 2); six requests arrive together, 256 output tokens each.
  // The first hand-off goes to replica 1 (a tie: both empty); replica 1 then holds its blocks, so the next goes to
  // replica 2 (the other five share one prefill step: they are handed over in id order at one instant).
  const auto rs = records_of(run_text(disagg_text(1, "", fixed_workload(6, 1000.0, 1024, 256), "", 2,
                                                  "decode_router = \"least_kv_usage\"\n"),
                                      "disagg-kvrouter"));
  REQUIRE(rs.size() == 6);
  std::vector<RequestRecord> by_first(rs.begin(), rs.end());
  std::sort(by_first.begin(), by_first.end(),
            [](const RequestRecord& a, const RequestRecord& b) {
              return a.first_token != b.first_token ? a.first_token < b.first_token : a.id < b.id;
            });
  CHECK(by_first[0].replica == 1);
  CHECK(by_first[1].replica == 2);
  std::set<std::int32_t> used;
  for (const auto& r : rs) used.insert(r.replica);
  CHECK(used == std::set<std::int32_t>{1, 2});
}
