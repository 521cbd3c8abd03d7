// Multi-GPU replicas end to end: tensor parallelism over NVLink, PCIe and two nodes; bad parallel setups.
#include <catch2/catch.hpp>

#include "helpers.h"
#include "sim/cli/run.h"
#include "sim/engine/pipeline.h"

using namespace servesim;

namespace {

const std::string kScenario = "llama70b-tp8-dgx-h100.toml";

StepCost decode_step(const std::vector<std::pair<std::string, std::string>>& sets) {
  ScenarioOptions o;
  o.sets = sets;
  const ScenarioLoader loader(test::scenario_path(kScenario), o);
  BatchShape b;
  b.num_decodes = 32;
  b.decode_context_tokens = 32 * 1025;
  b.num_sampled = 32;
  return loader.scenario().step_model->breakdown(b);
}

double comm_share(const StepCost& c) {
  Seconds comm{0.0};
  for (const auto& o : c.ops) {
    if (o.bound == Bound::communication) comm += o.time;
  }
  return comm / c.total();
}

double mean_tpot(const std::vector<std::pair<std::string, std::string>>& sets) {
  ScenarioOptions o;
  o.sets = sets;
  o.sets.emplace_back("workload.num_requests", "100");
  const ScenarioLoader loader(test::scenario_path(kScenario), o);
  return run_scenario(loader).summary["mean_tpot_ms"].get<double>();
}

}  // namespace

TEST_CASE("Llama-3-70B TP 8: NVLink, then two nodes, then PCIe links", "[parallel]") {
  const auto nvlink = decode_step({});
  const auto two_nodes = decode_step({{"parallel.topology", "\"cluster-2x-dgx-h100\""},
                                      {"parallel.gpus", "[0,1,2,3,8,9,10,11]"}});
  const auto pcie = decode_step({{"parallel.topology", "\"pcie-8x-l40s\""}});
  // The all-reduces are ops of their own in the breakdown.
  bool has_comm = false;
  for (const auto& o : nvlink.ops) has_comm = has_comm || o.name == "tp_all_reduce_mlp";
  CHECK(has_comm);
  CHECK(comm_share(nvlink) < comm_share(two_nodes));
  CHECK(comm_share(two_nodes) < comm_share(pcie));
  CHECK(nvlink.total() < two_nodes.total());
  CHECK(two_nodes.total() < pcie.total());

  const double tpot_nvlink = mean_tpot({});
  const double tpot_two = mean_tpot({{"parallel.topology", "\"cluster-2x-dgx-h100\""}, {"parallel.gpus", "[0,1,2,3,8,9,10,11]"}});
  const double tpot_pcie = mean_tpot({{"parallel.topology", "\"pcie-8x-l40s\""}});
  INFO("TPOT ms: nvlink " << tpot_nvlink << ", two nodes " << tpot_two << ", pcie " << tpot_pcie);
  CHECK(tpot_nvlink < tpot_two);
  CHECK(tpot_two < tpot_pcie);
}

TEST_CASE("tensor parallelism splits weights and KV: TP 8 holds an eighth of the layers per GPU", "[parallel]") {
  const ScenarioLoader tp8(test::scenario_path(kScenario), {});
  const auto& m = *tp8.scenario().step_model;
  CHECK(m.kv_bytes_per_token_per_gpu().v == 80.0 * 1 * 128 * 2 * 2);  // 8 KV heads / 8 = 1 per GPU
  CHECK(m.weight_bytes_per_gpu().v < 20e9);
}

TEST_CASE("pipeline parallelism adds stage sends and keeps the layers split", "[parallel]") {
  ScenarioOptions o;
  o.sets = {{"parallel.tensor_parallel_size", "4"}, {"parallel.pipeline_parallel_size", "2"}};
  const ScenarioLoader loader(test::scenario_path(kScenario), o);
  BatchShape b;
  b.num_decodes = 8;
  b.decode_context_tokens = 8 * 513;
  b.num_sampled = 8;
  const auto c = loader.scenario().step_model->breakdown(b);
  bool send = false;
  for (const auto& op : c.ops) send = send || op.name == "pp_send_recv";
  CHECK(send);
  CHECK(c.stage < c.gpu);
}

TEST_CASE("bad parallel setups: one line, exit 2", "[parallel][bad-input]") {
  const std::string s = test::scenario_path(kScenario);
  const auto dir = test::temp_dir("badpar");
  auto check = [&](const std::string& args, const std::vector<std::string>& expect) {
    const auto r = test::run_cli(args);
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(test::count_lines(r.output) == 1);
    for (const auto& e : expect) CHECK(r.output.find(e) != std::string::npos);
  };
  // Heads not divisible by TP.
  check("step " + s + " --decode 1x10 --set parallel.tensor_parallel_size=3",
        {"--set parallel.tensor_parallel_size", "do not divide by tensor_parallel_size 3"});
  // More ranks than GPUs.
  check("step " + s + " --decode 1x10 --set parallel.tensor_parallel_size=16",
        {"tensor_parallel_size", "has 8"});
  check("collective --topology dgx-h100 --ranks 9", {"--ranks 9", "only 8 GPUs"});
  // Placement on GPUs the topology does not have.
  check("step " + s + " --decode 1x10 --set 'parallel.gpus=[0,1,2,3,4,5,6,99]'", {"parallel.gpus"});
  // Topology files: a GPU with no route, zero and negative bandwidth.
  const std::string data = test::source_dir() + "/tests/data/topologies/";
  check("collective --topology " + data + "bad_no_route.toml --ranks 4", {"bad_no_route.toml", "gpu3"});
  check("collective --topology " + data + "bad_zero_bandwidth.toml --ranks 2", {"bad_zero_bandwidth.toml:"});
  check("collective --topology " + data + "bad_negative_bandwidth.toml --ranks 2", {"bad_negative_bandwidth.toml:"});
  // A multi-GPU replica without a topology.
  const std::string text = test::read_file(s);
  std::string no_topo = text;
  no_topo.replace(no_topo.find("topology = \"dgx-h100\""), 21, "");
  no_topo.replace(no_topo.find("models/llama-3-70b.json"), 23, test::source_dir() + "/scenarios/models/llama-3-70b.json");
  check("step " + test::write_file(dir / "t.toml", no_topo) + " --decode 1x10", {"needs [parallel] topology"});
}

TEST_CASE("servesim collective prints time, algbw, busbw, the algorithm and the protocol", "[parallel]") {
  // NCCL's tuner picks NVLS/Simple from about 1.1 MiB on 8 NVSwitch-connected H100s (ring/LL below).
  const auto r = test::run_cli("collective --topology dgx-h100 --op all_reduce --ranks 8 --bytes 2MiB --json");
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.output);
  CHECK(j["time_us"].get<double>() > 0);
  // busbw = algbw x 2(n-1)/n for all-reduce
  CHECK(j["busbw_GBps"].get<double>() == Approx(j["algbw_GBps"].get<double>() * 1.75));
  CHECK(j["algo"] == "nvls");
  CHECK(j["protocol"] == "Simple");
  const auto ring = test::run_cli("collective --topology dgx-h100 --ranks 8 --bytes 1GiB --algo ring --json");
  REQUIRE(ring.code == 0);
  CHECK(nlohmann::json::parse(ring.output)["algo"] == "ring");
}

TEST_CASE("pipeline stages each get their own tensor-parallel group, placement is checked", "[parallel]") {
  const std::string s = test::scenario_path(kScenario);
  auto step_ms = [&](const std::string& gpus) {
    const auto r = test::run_cli("step " + s + " --decode 32x1024 --json --set 'parallel.topology=\"cluster-2x-dgx-h100\"'" +
                                 " --set parallel.tensor_parallel_size=4 --set parallel.pipeline_parallel_size=2" +
                                 " --set 'parallel.gpus=" + gpus + "'");
    INFO(r.output);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.output)["total_ms"].get<double>();
  };
  // Stage 1 split across the two nodes is slower than both stages inside node 0.
  CHECK(step_ms("[0,1,2,3,4,5,6,7]") < step_ms("[0,1,2,3,4,5,12,13]"));
  const auto dup = test::run_cli("step " + s + " --decode 1x10 --set 'parallel.gpus=[0,1,2,3,4,5,6,6]'");
  CHECK(dup.code == 2);
  CHECK(dup.output.find("listed twice") != std::string::npos);
}

TEST_CASE("TP: the LM head's vocab shards are gathered for sampling, over the group's links", "[parallel]") {
  const auto nvlink = decode_step({});
  const auto pcie = decode_step({{"parallel.topology", "\"pcie-8x-l40s\""}});
  auto gather = [](const StepCost& c) {
    for (const auto& o : c.ops) {
      if (o.name == "tp_gather_logits") return o;
    }
    FAIL("no tp_gather_logits op");
    return StepOp{};
  };
  // 32 sampled rows x 16032 vocab rows per rank (128256 / 8) x 2 bytes on each of 8 ranks.
  CHECK(gather(nvlink).bytes.v == 32.0 * 16032 * 2 * 8);
  CHECK(gather(nvlink).bound == Bound::communication);
  CHECK(gather(nvlink).time.v > 0);
  CHECK(gather(pcie).time.v > gather(nvlink).time.v);
}

TEST_CASE("pipeline stages: micro-batches pass in turn, a large one holds the ones behind it", "[parallel][pipeline]") {
  PipelineStages p(2);
  // Alone: stage 0 [0, 10], send 1, stage 1 [11, 21].
  CHECK(p.pass(Ns{0}, Ns{10}, Ns{1}) == Ns{21});
  // A second micro-batch ready at 0 waits for stage 0 until 10, then stage 1 is free again at 21.
  CHECK(p.pass(Ns{0}, Ns{10}, Ns{1}) == Ns{31});
  // A large one (100 per stage) ready at 5: stage 0 [20, 120], stage 1 [121, 221].
  CHECK(p.pass(Ns{5}, Ns{100}, Ns{1}) == Ns{221});
  // A small one behind it: stage 0 [120, 130], then it waits for stage 1 until 221.
  CHECK(p.pass(Ns{0}, Ns{10}, Ns{1}) == Ns{231});
  CHECK(p.stages() == 2);
}

TEST_CASE("pipeline parallelism: a long prefill on one micro-batch engine stalls the other's decodes",
          "[parallel][pipeline]") {
  const auto dir = test::temp_dir("ppstall");
  auto max_gap_ms = [&](const std::string& rows) {
    test::write_file(dir / "t.csv", "arrival_s,prompt_tokens,output_tokens\n" + rows);
    const std::string path = test::write_file(dir / "s.toml", test::base_scenario_text() +
                                                                  "[parallel]\npipeline_parallel_size = 2\ntopology = \"dgx-h100\"\n"
                                                                  "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"" +
                                                                  (dir / "t.csv").string() + "\"\n");
    const ScenarioLoader loader(path, {});
    const RunOutput out = run_scenario(loader, true);
    const auto& times = out.recorder.token_log().at(0).times;  // request 0: the decoding one
    Ns gap{0};
    for (std::size_t k = 1; k < times.size(); ++k) gap = std::max(gap, times[k] - times[k - 1]);
    return ns_to_ms(gap);
  };
  // Request 0 decodes 300 tokens on engine 0; request 1 (round robin: engine 1) has an 8000-token prompt.
  const double alone = max_gap_ms("0,16,300\n");
  const double stalled = max_gap_ms("0,16,300\n0.6,8000,1\n");
  INFO("max inter-token gap: alone " << alone << " ms, beside an 8000-token prefill " << stalled << " ms");
  // Half of the prefill's GPU time is one stage: the decode micro-batch waits behind it on each stage.
  const ScenarioLoader one(test::write_file(dir / "one.toml", test::base_scenario_text() +
                                                                  "[parallel]\npipeline_parallel_size = 2\ntopology = \"dgx-h100\"\n"
                                                                  "[workload]\nnum_requests = 1\n[workload.arrival]\nimpl = \"poisson\"\n"
                                                                  "rate = 1.0\n[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 8\n"
                                                                  "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 8\n"),
                           {});
  BatchShape prefill;
  prefill.prefills.push_back({8000, 0});
  prefill.num_sampled = 1;
  const double prefill_stage_ms = one.scenario().step_model->breakdown(prefill).gpu.v * 1e3 / 2.0;
  CHECK(stalled > alone + 0.5 * prefill_stage_ms);
}

TEST_CASE("replicas get GPUs of their own: placement, capacity and a replica that spans machines", "[parallel]") {
  auto loader_with = [](const std::vector<std::pair<std::string, std::string>>& sets) {
    ScenarioOptions o;
    o.sets = sets;
    return ScenarioLoader(test::scenario_path(kScenario), o);
  };
  BatchShape b;
  b.num_decodes = 32;
  b.decode_context_tokens = 32 * 1025;
  b.num_sampled = 32;
  // Two TP-8 replicas on two DGX nodes: one node each, the same step.
  const ScenarioLoader two = loader_with({{"parallel.topology", "\"cluster-2x-dgx-h100\""}, {"cluster.replicas", "2"}});
  REQUIRE(two.scenario().step_models.size() == 2);
  CHECK(two.scenario().step_models[0]->step_time(b).v == two.scenario().step_models[1]->step_time(b).v);
  // Replica 1 placed across both nodes: its all-reduces cross the network, its steps are longer.
  const ScenarioLoader split = loader_with({{"parallel.topology", "\"cluster-2x-dgx-h100\""},
                                            {"cluster.replicas", "2"},
                                            {"parallel.gpus", "[0,1,2,3,4,5,6,7, 8,9,10,11,12,13,14,15]"}});
  CHECK(split.scenario().step_models[1]->step_time(b).v == two.scenario().step_models[1]->step_time(b).v);
  const ScenarioLoader spans = loader_with({{"parallel.topology", "\"cluster-2x-dgx-h100\""},
                                            {"cluster.replicas", "2"},
                                            {"parallel.gpus", "[0,1,2,3,8,9,10,11, 4,5,6,7,12,13,14,15]"}});
  CHECK(spans.scenario().step_models[0]->step_time(b).v > 1.2 * two.scenario().step_models[0]->step_time(b).v);

  // More replicas than the topology holds, or a placement list of the wrong length: one line naming the key.
  const auto dir = test::temp_dir("replicas");
  const std::string s = test::scenario_path(kScenario);
  const auto too_many = test::run_cli("run " + s + " --set cluster.replicas=2 --out " + (dir / "a").string());
  CHECK(too_many.code == 2);
  CHECK(test::count_lines(too_many.output) == 1);
  CHECK(too_many.output.find("cluster.replicas") != std::string::npos);
  CHECK(too_many.output.find("2 replicas of 8 GPUs need 16 GPUs but topology dgx-h100 has 8") != std::string::npos);
  const auto short_list = test::run_cli("run " + s + " --set parallel.topology='\"cluster-2x-dgx-h100\"'" +
                                        " --set cluster.replicas=2 --set 'parallel.gpus=[0,1,2,3,4,5,6,7]' --out " +
                                        (dir / "b").string());
  CHECK(short_list.code == 2);
  CHECK(short_list.output.find("lists 8 GPUs for replicas x tensor x pipeline = 16") != std::string::npos);
  const auto fleet = test::run_cli("run " + test::scenario_path("quickstart.toml") + " --set cluster.replicas=5000");
  CHECK(fleet.code == 2);
  CHECK(fleet.output.find("cluster.replicas: at most 4096 replicas") != std::string::npos);
}
