// Disaggregated serving (sim/cluster/kv_handoff.h): the hand-off after the prefill's first token, the KV transfer
// on the flow-level network, back-pressure from the decode replica's KV blocks, measured transport profiles, and bad
// pools.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "helpers.h"
#include "models/arch/model_arch.h"
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

// Runs a scenario text with --link-stats every 7 s into `csv`.
RunOutput run_with_links(const std::string& text, const std::string& tag, std::ostringstream& csv) {
  const auto dir = temp_dir(tag);
  const std::string path = write_file(dir / "s.toml", text);
  ScenarioOptions opts;
  opts.allow_pools = true;
  const ScenarioLoader loader(path, opts);
  RunStreams streams;
  streams.link_stats = &csv;
  streams.link_stats_interval = Ns{7'000'000'000};
  return run_scenario(loader, streams);
}

// A --link-stats CSV's header and its rows split at the commas (each checked to have 7 fields).
std::pair<std::string, std::vector<std::vector<std::string>>> link_rows(const std::string& csv) {
  std::istringstream in(csv);
  std::pair<std::string, std::vector<std::vector<std::string>>> out;
  std::getline(in, out.first);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    REQUIRE(f.size() == 7);
    out.second.push_back(std::move(f));
  }
  return out;
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
  // No route at all between the pools (two NVSwitch islands, no NIC): the pools' placement is at fault, not the
  // transport key left at "auto".
  const auto dir = temp_dir("disagg-islands");
  write_file(dir / "islands.toml",
             "name = \"islands\"\n[[vertex]]\nname = \"gpu[0-7]\"\nkind = \"gpu\"\n"
             "[[vertex]]\nname = \"swa\"\nkind = \"nvswitch\"\n[[vertex]]\nname = \"swb\"\nkind = \"nvswitch\"\n"
             "[[link]]\na = \"gpu[0-3]\"\nb = \"swa\"\nbandwidth = \"450GB/s\"\nlatency = \"0.5us\"\n"
             "[[link]]\na = \"gpu[4-7]\"\nb = \"swb\"\nbandwidth = \"450GB/s\"\nlatency = \"0.5us\"\n");
  std::string islands = disagg_text(1, "", w);
  islands.replace(islands.find("\"cluster-2x-dgx-h100\""), 21, "\"" + (dir / "islands.toml").string() + "\"");
  islands.replace(islands.find("gpus = [8]"), 10, "gpus = [4]");
  CHECK_THROWS_WITH(run_text(islands, "disagg-bad3"),
                    Catch::Contains("cluster.pools[1].parallel.gpus: no transport can carry GPU 0"));
}

TEST_CASE("disaggregated: pipeline-parallel pools move each stage's layers from the GPUs that hold them",
          "[disagg]") {
  // Prefill PP 2 on GPUs 0 (layers 0-15) and 1 (layers 16-31); decode PP 2 on GPUs 8 and 9 (the same split).
  // Each request's 2048-token KV (256 MiB) leaves as two halves: 128 MiB from GPU 0 to GPU 8, 128 MiB from GPU 1
  // to GPU 9, and nothing else crosses.
  std::string text = disagg_text(1, "", fixed_workload(40, 0.5, 2048, 16));
  text.replace(text.find("gpus = [0]"), 10, "gpus = [0, 1]\npipeline_parallel_size = 2");
  text.replace(text.find("gpus = [8]"), 10, "gpus = [8, 9]\npipeline_parallel_size = 2");
  std::ostringstream csv;
  const RunOutput out = run_with_links(text, "disagg-pp", csv);
  const auto rs = records_of(out);
  REQUIRE(rs.size() == 40);
  for (const auto& r : rs) {
    CHECK(r.prefill_replica == 0);
    CHECK(r.replica == 1);
    CHECK(r.kv_transfer.v > 0);
  }
  std::map<std::string, double> from;  // bytes leaving each GPU
  for (const auto& f : link_rows(csv.str()).second) {
    if (f[3].find(".gpu") != std::string::npos && f[4].find(".gpu") == std::string::npos) from[f[3]] += std::stod(f[5]);
  }
  CHECK(from["n0.gpu0"] == Approx(40.0 * 134217728.0).epsilon(1e-9));
  CHECK(from["n0.gpu1"] == Approx(40.0 * 134217728.0).epsilon(1e-9));
  CHECK(from.count("n1.gpu0") == 0);
  // A decode pool of one stage gathers both halves on GPU 8.
  std::string one = disagg_text(1, "", fixed_workload(10, 0.5, 2048, 16));
  one.replace(one.find("gpus = [0]"), 10, "gpus = [0, 1]\npipeline_parallel_size = 2");
  const auto rs1 = records_of(run_text(one, "disagg-pp1"));
  REQUIRE(rs1.size() == 10);
  for (const auto& r : rs1) CHECK(r.replica == 1);
}

TEST_CASE("disaggregated: sliding-window layers move only the blocks they still hold", "[disagg][hybrid-kv]") {
  // gpt-oss-20b: 24 layers, 12 of them sliding (window 128), 8 KV heads x 64 x 2 B x (K, V) = 2,048 B per token and
  // layer. A 2,048-token prompt in blocks of 16: a sliding layer still holds 2048 - floor(1921 / 16) x 16 = 128
  // tokens, a full layer all 2,048.
  CHECK(sliding_held_tokens(2048, 128, 16) == 128);
  CHECK(sliding_held_tokens(144, 128, 16) == 128);
  CHECK(sliding_held_tokens(150, 128, 16) == 134);  // the block holding token 22 is still read
  CHECK(sliding_held_tokens(100, 128, 16) == 100);
  CHECK(sliding_held_tokens(2048, 0, 16) == 2048);
  const ModelArch oss = ModelArch::from_hf_config(scenario_path("models/gpt-oss-20b.json"));
  const double per_request = 2048.0 * (12.0 * 2048.0 + 12.0 * 128.0);
  CHECK(per_request == 53477376.0);
  double sum = 0.0;
  for (const KvShard& k : kv_transfer_pairs(oss, 2048, KvLayout{}, KvLayout{}, 128, 16)) sum += k.bytes.v;
  CHECK(sum == Approx(per_request).epsilon(1e-12));
  // Two pipeline stages of 12 layers, 6 sliding each: half each.
  for (const KvShard& k : kv_transfer_pairs(oss, 2048, KvLayout{1, 2, 1}, KvLayout{}, 128, 16)) {
    CHECK(k.bytes.v == Approx(per_request / 2.0).epsilon(1e-12));
  }
  // Without a window (the hybrid manager off: sliding layers held as full attention) every layer moves all tokens.
  sum = 0.0;
  for (const KvShard& k : kv_transfer_pairs(oss, 2048, KvLayout{}, KvLayout{})) sum += k.bytes.v;
  CHECK(sum == 2048.0 * 24.0 * 2048.0);

  // In a run: 40 prompts of 2,048 tokens from GPU 0 to GPU 8, with the hybrid manager (vLLM's default, and its NIXL
  // connector's since it supports it) and without.
  std::string text = disagg_text(1, "", fixed_workload(40, 0.5, 2048, 16));
  text.replace(text.find("llama-3-8b.json"), 15, "gpt-oss-20b.json");
  for (const bool hybrid : {true, false}) {
    INFO("hybrid " << hybrid);
    std::string t = text;
    if (!hybrid) t += "[engine]\ndisable_hybrid_kv_cache_manager = true\n";
    std::ostringstream csv;
    const RunOutput out = run_with_links(t, hybrid ? "oss-hybrid" : "oss-full", csv);
    REQUIRE(records_of(out).size() == 40);
    double bytes = 0;
    for (const auto& f : link_rows(csv.str()).second) {
      if (f[3] == "n0.gpu0" && f[4] == "n0.pcie0") bytes += std::stod(f[5]);
    }
    CHECK(bytes == Approx(40.0 * (hybrid ? per_request : 2048.0 * 24.0 * 2048.0)).epsilon(1e-9));
  }
}

TEST_CASE("disaggregated: --link-stats adds up to the bytes moved and changes nothing else", "[disagg]") {
  const std::string text = disagg_text(1, "", fixed_workload(40, 0.5, 2048, 16));
  std::ostringstream csv;
  const RunOutput with = run_with_links(text, "disagg-links", csv);
  const RunOutput without = run_text(text, "disagg-links-without");
  nlohmann::ordered_json a = with.summary;
  nlohmann::ordered_json b = without.summary;
  a["servesim"].erase("run");  // its scenario paths differ
  b["servesim"].erase("run");
  CHECK(a == b);
  // Every request's 256 MiB crosses each link of GPU 0 -> GPU 8 once: 40 x 268,435,456 B on n0.gpu0 -> n0.pcie0.
  const auto [header, rows] = link_rows(csv.str());
  CHECK(header == "start_s,end_s,link,from,to,bytes,utilisation");
  double bytes = 0;
  double last_end = 0;
  for (const auto& f : rows) {
    CHECK(std::stod(f[0]) >= last_end - 7.0 - 1e-9);
    last_end = std::max(last_end, std::stod(f[1]));
    CHECK(std::stod(f[6]) <= 1.0 + 1e-9);
    if (f[3] == "n0.gpu0" && f[4] == "n0.pcie0") bytes += std::stod(f[5]);
  }
  CHECK(!rows.empty());
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

TEST_CASE("disaggregated: a transport profile twice as slow as the default doubles an uncontended transfer",
          "[disagg]") {
  // One request, 2,048 prompt tokens of Llama-3-8B: 268,435,456 B of KV from GPU 0 to GPU 8 over GPUDirect RDMA
  // (forced: auto would pick host-staged RDMA once GPUDirect is this slow).
  // Default: setup 5.28 us + 1 message x 3.11 us + 268,435,456 B / 48 GB/s = 8.39 us + 5,592,405.33 ns
  //   = 5,600,795.33 ns.
  // The profile measures twice that at every size, 2 x (8.39 us + B / 48 GB/s) = 16.78 us + B / 24 GB/s, at 1, 16
  // and 256 MiB (one message each: setup and per_message cannot be told apart, so the fit keeps the default 3.11 us
  // per message and fits setup = 13.67 us, rate = 24 GB/s, below every link of the route). The transfer:
  //   16.78 us + 268,435,456 B / 24 GB/s = 16,780 ns + 11,184,810.67 ns = 11,201,590.67 ns.
  const auto dir = temp_dir("disagg-profile");
  write_file(dir / "slow.csv",
             "transport,bytes,time_us,mode,source\n"
             "gpudirect_rdma,1MiB,60.4706666667,single,twice the default\n"
             "gpudirect_rdma,16MiB,715.8306666667,single,twice the default\n"
             "gpudirect_rdma,256MiB,11201.5906666667,single,twice the default\n");
  const std::string w = fixed_workload(1, 1.0, 2048, 16);
  const std::string forced = "transport = \"gpudirect_rdma\"\n";
  ScenarioOptions opts;
  opts.allow_pools = true;
  const auto run_one = [&](const std::string& transfer, const char* name) {
    const std::string path = write_file(dir / name, disagg_text(1, "", w, transfer));
    const auto rs = records_of(run_scenario(ScenarioLoader(path, opts), RunStreams{}));
    REQUIRE(rs.size() == 1);
    return rs.front().kv_transfer.v;
  };
  const std::int64_t plain = run_one(forced, "plain.toml");
  const std::int64_t slow = run_one(forced + "profile = \"slow.csv\"\n", "slow.toml");
  CHECK(std::abs(plain - 5'600'795) <= 2);
  CHECK(std::abs(slow - 11'201'591) <= 2);
  CHECK(std::abs(slow - 2 * plain) <= 4);

  // The same fit as `servesim transfer --profile` prints for the file.
  const auto r = run_cli("transfer --topology cluster-2x-dgx-h100 --from 0 --to 8 --bytes 256MiB --transport "
                         "gpudirect_rdma --profile " + (dir / "slow.csv").string() + " --json");
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.output);
  CHECK(j["time_us"].get<double>() == Approx(double(slow) * 1e-3).epsilon(1e-6));
}

TEST_CASE("disaggregated: a bad transport profile is one line naming the key and the profile's line", "[disagg]") {
  const auto dir = temp_dir("disagg-profile-bad");
  write_file(dir / "bad.csv",
             "transport,bytes,time_us,mode,source\n"
             "gpudirect_rdma,1MiB,60.5,single,ok\n"
             "gpudirect_rdma,16MiB,fast,single,not a number\n");
  const std::string w = fixed_workload(1, 1.0, 128, 4);
  ScenarioOptions opts;
  opts.allow_pools = true;
  const auto load = [&](const std::string& transfer, const char* name) {
    const std::string path = write_file(dir / name, disagg_text(1, "", w, transfer));
    return input_error([&] { (void)ScenarioLoader(path, opts); });
  };
  const std::string bad = load("profile = \"bad.csv\"\n", "bad.toml");
  CHECK_THAT(bad, Catch::Contains("cluster.kv_transfer.profile") &&
                      Catch::Contains((dir / "bad.csv").string() + ":3: time_us: 'fast' is not a number"));
  CHECK_THAT(load("profile = \"missing.csv\"\n", "missing.toml"),
             Catch::Contains("cluster.kv_transfer.profile") && Catch::Contains("missing.csv: cannot open") &&
                 Catch::Contains("not found"));
  // Without prefill and decode pools the key is refused like the rest of [cluster.kv_transfer].
  const std::string agg = write_file(dir / "agg.toml", base_scenario_text() + "[cluster.kv_transfer]\nprofile = "
                                                                              "\"bad.csv\"\n" + w);
  CHECK_THAT(input_error([&] { (void)ScenarioLoader(agg, opts); }), Catch::Contains("kv_transfer"));
}

TEST_CASE("disaggregated: a prefill engine full of requests waiting for decode blocks idles until one leaves",
          "[disagg]") {
  // The prefill replica has 640 usable blocks of 16 tokens: five parked prompts of 2,048 tokens (128 blocks each)
  // fill it. The decode replica holds two requests at a time (300 usable blocks; 2,048 + 64 tokens = 132 blocks
  // each). Twenty arrive together: the prefill engine's waiting prompts cannot start until a parked one leaves,
  // which it must wait for instead of failing; every request finishes.
  std::string text = disagg_text(1, "num_gpu_blocks_override = 301\nmax_model_len = 4096\n",
                                 fixed_workload(20, 1000.0, 2048, 64));
  text.replace(text.find("gpus = [0]"), 10, "gpus = [0]\n[cluster.pools.engine]\nnum_gpu_blocks_override = 641");
  const auto rs = records_of(run_text(text, "disagg-parked"));
  REQUIRE(rs.size() == 20);
  std::int64_t waited = 0, queued = 0;
  for (const auto& r : rs) {
    CHECK(r.output_tokens == 64);
    waited += r.decode_wait.v > 0 ? 1 : 0;
    queued += r.queue().v > 0 ? 1 : 0;
  }
  CHECK(waited >= 15);
  CHECK(queued >= 14);  // at most five prompts fit the prefill engine before the first leaves
}

TEST_CASE("disaggregated: a decode replica lets the requests received behind a recompute that cannot fit run",
          "[disagg]") {
  // The decode replica has 300 usable blocks; each request reserves 64 (1,024 prompt tokens) and grows to 128
  // (1,024 output tokens): running requests preempt each other, and a preempted one, first in the FCFS queue, needs
  // its whole KV back while the requests received after it hold the free blocks. vLLM would wait forever there;
  // the engine lets those behind it run first. Every request finishes.
  const RunOutput out = run_text(disagg_text(1, "num_gpu_blocks_override = 301\nmax_model_len = 4096\n",
                                             fixed_workload(40, 20.0, 1024, 1024)),
                                 "disagg-hol");
  const auto rs = records_of(out);
  REQUIRE(rs.size() == 40);
  for (const auto& r : rs) CHECK(r.output_tokens == 1024);
  CHECK(out.summary["servesim"]["preemptions"].get<std::int64_t>() > 0);
  CHECK(out.summary["servesim"]["disaggregation"]["decode_wait_ms"]["max"].get<double>() > 0.0);
}

TEST_CASE("disaggregated: data-parallel pools hand each prompt's KV from its prefill rank's GPU to a decode rank's",
          "[disagg][dp-attention]") {
  // DeepSeek-V3 EP 16 with data-parallel attention on each side (GPUs 0-15 prefill, 16-31 decode): every request is
  // prefilled on one rank and its MLA latent, (512 + 64) x 61 layers x 2 B = 70,272 B per token, leaves that rank's
  // GPU through its own PCIe switch to its NIC.
  ScenarioOptions opts;
  opts.allow_pools = true;
  // Without the replicas' own collectives on the network, the links carry the KV transfers alone.
  opts.sets = {{"workload.num_requests", "200"}, {"sim.network_contention", "false"}};
  const ScenarioLoader loader(scenario_path("disagg/deepseek-v3-ep16-1p1d-4x-dgx-h100.toml"), opts);
  std::ostringstream csv;
  RunStreams streams;
  streams.link_stats = &csv;
  streams.link_stats_interval = Ns{7'000'000'000};
  const RunOutput out = run_scenario(loader, streams);
  const auto records = records_of(out);
  REQUIRE(records.size() == 200);
  double expected = 0;
  for (const RequestRecord& r : records) {
    CHECK(r.prefill_replica == 0);
    CHECK(r.replica == 1);
    expected += 70272.0 * double(r.prompt_tokens);
  }
  std::map<std::string, double> by_gpu;  // bytes leaving each prefill GPU towards its NIC
  for (const auto& f : link_rows(csv.str()).second) {
    const bool prefill_gpu = f[3].rfind("n0.gpu", 0) == 0 || f[3].rfind("n1.gpu", 0) == 0;
    if (prefill_gpu && f[4].find("pcie") != std::string::npos) by_gpu[f[3]] += std::stod(f[5]);
  }
  double total = 0;
  for (const auto& [gpu, bytes] : by_gpu) total += bytes;
  CHECK(total == Approx(expected).epsilon(1e-9));
  // vLLM's DP load balancing sends a request to the lowest-index idle rank, so the prefills (one step each) gather
  // on the first ranks, spilling over to the next ones within a 100 ms stats interval: several ranks' GPUs send.
  CHECK(by_gpu.size() > 4);
  CHECK(by_gpu.count("n0.gpu0") == 1);
  CHECK(out.summary["servesim"]["config"]["pools"][1]["data_parallel_size"] == 16);
}

TEST_CASE("disaggregated: a horizon that cuts a layer-streamed transfer of a prefill still running balances the books",
          "[disagg]") {
  // A transfer that starts with the prompt's last prefill step is not a hand-off until that step ends; the run's
  // end-of-run accounting (check_run_accounting) must not count it as one.
  ScenarioOptions opts;
  opts.allow_pools = true;
  opts.sets = {{"sim.horizon", "\"5s\""}, {"cluster.kv_transfer.mode", "\"layer_streamed\""}};
  const ScenarioLoader loader(scenario_path("disagg/explain-decode-starved.toml"), opts);
  RunOutput out;
  REQUIRE_NOTHROW(out = run_scenario(loader, RunStreams{}));
  CHECK(out.summary["servesim"]["unfinished"].get<std::int64_t>() > 0);
}
