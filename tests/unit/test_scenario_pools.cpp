// Pools in the scenario (issue 11, part 1: schema and loading): [[cluster.pools]] with roles, per-pool GPU,
// parallel and engine overrides and GPU placement on the shared topology; [cluster.kv_transfer] and
// [cluster] decode_router.
#include <catch2/catch.hpp>

#include <numeric>

#include "helpers.h"
#include "models/net/transport.h"
#include "sim/cli/run.h"
#include "sim/cluster/router.h"
#include "sim/scenario/scenario.h"

using namespace servesim;

namespace {

const std::string kDisagg = "disagg/llama70b-1p1d-2x-dgx-h100.toml";
const std::string kAggTwin = "disagg/llama70b-agg-2x-dgx-h100.toml";

ScenarioOptions pools_allowed() {
  ScenarioOptions o;
  o.allow_pools = true;
  return o;
}

std::vector<int> range(int from, int to) {
  std::vector<int> v(static_cast<std::size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

// Llama-3-70B on cluster-2x-dgx-h100 at TP 8 ([parallel], [engine] as the example), `cluster` appended after the
// shared tables (its first line is line 11), then a workload of 10 short requests.
std::string pools_scenario(const std::filesystem::path& dir, const std::string& cluster) {
  return test::write_file(
      dir / "s.toml",
      "[model]\nconfig = \"" + test::scenario_path("models/llama-3-70b.json") +
          "\"\n[hardware]\ngpu = \"h100-sxm\"\n[parallel]\ntopology = \"cluster-2x-dgx-h100\"\n"
          "tensor_parallel_size = 8\n[engine]\nmax_num_seqs = 256\nmax_num_batched_tokens = 8192\n" +
          cluster +
          "\n[workload]\nnum_requests = 10\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
          "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 100\n[workload.output_tokens]\nimpl = \"fixed\"\n"
          "value = 10\n");
}

std::string pool(const std::string& name, const std::string& role, const std::string& extra = "") {
  return "[[cluster.pools]]\nname = \"" + name + "\"\nrole = \"" + role + "\"\n" + extra;
}

// The one-line message of loading `cluster` (with pools allowed).
std::string load_error(const std::string& cluster) {
  const auto dir = test::temp_dir("pools-bad");
  const std::string path = pools_scenario(dir, cluster);
  const std::string msg = test::input_error([&] { const ScenarioLoader l(path, pools_allowed()); });
  INFO(msg);
  CHECK(msg.find('\n') == std::string::npos);
  CHECK(msg.rfind(path + ":", 0) == 0);  // names the file (and line)
  return msg;
}

}  // namespace

TEST_CASE("a scenario without pools is one aggregated pool equal to its fields", "[pools]") {
  for (const char* file : {"quickstart.toml", "llama70b-tp8-dgx-h100.toml", "qwen3-moe-8x-h100.toml"}) {
    INFO(file);
    const ScenarioLoader l(test::scenario_path(file), {});
    const Scenario& s = l.scenario();
    REQUIRE(s.pools.size() == 1);
    const PoolSpec& p = s.pools.front();
    CHECK_FALSE(s.has_pools);
    CHECK_FALSE(s.disaggregated());
    CHECK(p.role == PoolRole::aggregated);
    CHECK(p.name == "aggregated");
    CHECK(p.key.empty());
    CHECK(p.num_replicas == s.num_replicas);
    CHECK(p.gpu.name == s.gpu.name);
    CHECK(p.arch.name == s.arch.name);
    CHECK(p.arch.kv_bytes_per_element == s.arch.kv_bytes_per_element);
    CHECK(p.parallel.tensor == s.parallel.tensor);
    CHECK(p.parallel.pipeline == s.parallel.pipeline);
    CHECK(p.parallel.expert == s.parallel.expert);
    CHECK(p.parallel.data == s.parallel.data);
    CHECK(p.engine.num_kv_blocks == s.replica.num_kv_blocks);
    CHECK(p.engine.max_model_len == s.replica.max_model_len);
    CHECK(p.engine.block_size == s.replica.block_size);
    CHECK(p.engine.limits.max_num_seqs == s.replica.limits.max_num_seqs);
    CHECK(p.engine.limits.max_num_batched_tokens == s.replica.limits.max_num_batched_tokens);
    CHECK(p.kv.num_blocks() == s.kv.num_blocks());
    CHECK(p.step_models == s.step_models);
    CHECK(p.gpu_memory_utilization == s.gpu_memory_utilization);
    CHECK(p.kv_cache_dtype == s.kv_cache_dtype);
    CHECK(p.scheduler_impl == s.scheduler_impl);
    CHECK(p.predictor_impl == s.predictor_impl);
    CHECK(s.decode_router == "least_loaded");
    CHECK(s.kv_transfer.mode == KvTransferMode::after_prefill);
    CHECK(s.kv_transfer.transport == "auto");
    // Where its keys come from: the scenario's own tables.
    CHECK(p.place("engine.max_num_seqs").key == "engine.max_num_seqs");
    CHECK(p.place("parallel.tensor_parallel_size").key == "parallel.tensor_parallel_size");
    CHECK(p.place("num_replicas").key == "cluster.replicas");
    CHECK(p.place("gpu").key == "hardware.gpu");
    CHECK(p.place("gpu").line.has_value());
  }
  const ScenarioLoader l70(test::scenario_path("llama70b-tp8-dgx-h100.toml"), {});
  CHECK(l70.scenario().pools.front().replica_gpus == std::vector<std::vector<int>>{range(0, 8)});
  const ScenarioLoader quick(test::scenario_path("quickstart.toml"), {});
  CHECK(quick.scenario().pools.front().replica_gpus.empty());  // no topology: one GPU of its own
}

TEST_CASE("one aggregated pool written as cluster.pools runs as the scenario without pools", "[pools]") {
  const auto a = test::temp_dir("pools-legacy");
  const auto b = test::temp_dir("pools-pool");
  const std::string plain = pools_scenario(a, "[cluster]\nreplicas = 2\n");
  const std::string pooled = pools_scenario(b, pool("all", "aggregated", "num_replicas = 2\n"));
  const ScenarioLoader lp(plain, {});
  const ScenarioLoader lq(pooled, {});  // a single aggregated pool needs no allow_pools
  const Scenario& p = lp.scenario();
  const Scenario& q = lq.scenario();
  CHECK(q.has_pools);
  CHECK(q.pools.front().name == "all");
  CHECK(q.num_replicas == 2);
  CHECK(q.pools.front().replica_gpus == p.pools.front().replica_gpus);
  CHECK(q.pools.front().replica_gpus == std::vector<std::vector<int>>{range(0, 8), range(8, 16)});
  CHECK(q.replica.num_kv_blocks == p.replica.num_kv_blocks);
  CHECK(q.pools.front().place("num_replicas").key == "cluster.pools[0].num_replicas");
  RunOutput rp = run_scenario(lp);
  RunOutput rq = run_scenario(lq);
  // Everything equal but the scenario's file name.
  REQUIRE(rq.summary["servesim"]["run"]["scenario"] == pooled);
  rq.summary["servesim"]["run"]["scenario"] = plain;
  CHECK(rp.summary.dump() == rq.summary.dump());
  CHECK(rp.recorder.records().size() == 10);
}

TEST_CASE("the disaggregated example loads: prefill on node 0, decode on node 1, with its own engine keys",
          "[pools]") {
  const std::string path = test::scenario_path(kDisagg);
  const ScenarioLoader l(path, pools_allowed());
  const Scenario& s = l.scenario();
  REQUIRE(s.pools.size() == 2);
  const PoolSpec& pre = s.pools[0];
  const PoolSpec& dec = s.pools[1];
  CHECK(s.has_pools);
  CHECK(s.disaggregated());
  CHECK(pre.name == "prefill");
  CHECK(pre.role == PoolRole::prefill);
  CHECK(dec.name == "decode");
  CHECK(dec.role == PoolRole::decode);
  CHECK(pre.key == "cluster.pools[0]");
  CHECK(dec.key == "cluster.pools[1]");
  CHECK(pre.replica_gpus == std::vector<std::vector<int>>{range(0, 8)});
  CHECK(dec.replica_gpus == std::vector<std::vector<int>>{range(8, 16)});
  CHECK(pre.parallel.tensor == 8);
  CHECK(dec.parallel.tensor == 8);
  CHECK(pre.step_models.size() == 1);
  CHECK(dec.step_models.size() == 1);
  // The decode pool's engine.max_num_seqs overrides [engine]'s; the other keys are the scenario's.
  CHECK(pre.engine.limits.max_num_seqs == 256);
  CHECK(dec.engine.limits.max_num_seqs == 512);
  CHECK(dec.engine.limits.max_num_batched_tokens == 8192);
  CHECK(pre.place("engine.max_num_seqs").key == "engine.max_num_seqs");
  const ErrorPlace own = dec.place("engine.max_num_seqs");
  CHECK(own.key == "cluster.pools[1].engine.max_num_seqs");
  CHECK(own.file == path);
  CHECK(own.line.has_value());
  CHECK(dec.place("parallel.gpus").key == "cluster.pools[1].parallel.gpus");
  CHECK(dec.place("parallel.tensor_parallel_size").key == "parallel.tensor_parallel_size");
  // The fields of before are pool 0's.
  CHECK(s.num_replicas == 1);
  CHECK(s.replica.limits.max_num_seqs == 256);
  CHECK(s.step_models == pre.step_models);
  CHECK(s.decode_router == "least_loaded");
  CHECK(s.kv_transfer.mode == KvTransferMode::after_prefill);
  CHECK(s.kv_transfer.transport == "auto");
  CHECK(s.kv_transfer.transport_place.key == "cluster.kv_transfer.transport");
  CHECK(s.output_throughput_bound() > 0.0);

  const ScenarioLoader twin(test::scenario_path(kAggTwin), {});
  REQUIRE(twin.scenario().pools.size() == 1);
  CHECK(twin.scenario().pools.front().replica_gpus == std::vector<std::vector<int>>{range(0, 8), range(8, 16)});
  CHECK(twin.scenario().output_throughput_bound() == Approx(s.output_throughput_bound()));
}

TEST_CASE("each pool has its own GPU type, parallel layout, KV dtype and GPUs", "[pools]") {
  const auto dir = test::temp_dir("pools-over");
  const std::string path = pools_scenario(
      dir, "[cluster]\ndecode_router = \"round_robin\"\n[cluster.kv_transfer]\nmode = \"layer_streamed\"\n"
           "transport = \"gpudirect_rdma\"\n" +
               pool("p", "prefill", "num_replicas = 1\n") +
               pool("d", "decode", "num_replicas = 2\ngpu = \"h200\"\n[cluster.pools.parallel]\n"
                                   "tensor_parallel_size = 4\n[cluster.pools.engine]\nkv_cache_dtype = \"fp8\"\n"));
  const ScenarioLoader l(path, pools_allowed());
  const Scenario& s = l.scenario();
  REQUIRE(s.pools.size() == 2);
  const PoolSpec& p = s.pools[0];
  const PoolSpec& d = s.pools[1];
  CHECK(p.gpu.name == "h100-sxm");
  CHECK(d.gpu.name == "h200");
  CHECK(p.parallel.tensor == 8);
  CHECK(d.parallel.tensor == 4);
  // Without gpus lists, the pools take the next GPUs in order.
  CHECK(p.replica_gpus == std::vector<std::vector<int>>{range(0, 8)});
  CHECK(d.replica_gpus == std::vector<std::vector<int>>{range(8, 12), range(12, 16)});
  CHECK(d.step_models.size() == 2);
  CHECK(d.step_models[0] != d.step_models[1]);
  CHECK(p.kv_cache_dtype == "auto");
  CHECK(d.kv_cache_dtype == "fp8");
  CHECK(p.arch.kv_bytes_per_element == 2.0);
  CHECK(d.arch.kv_bytes_per_element == 1.0);
  CHECK(d.engine.num_kv_blocks != p.engine.num_kv_blocks);
  CHECK(d.place("gpu").key == "cluster.pools[1].gpu");
  CHECK(p.place("gpu").key == "hardware.gpu");
  CHECK(s.decode_router == "round_robin");
  CHECK(s.kv_transfer.mode == KvTransferMode::layer_streamed);
  CHECK(s.kv_transfer.transport == "gpudirect_rdma");
  CHECK(s.gpu.name == "h100-sxm");  // pool 0's

  // A pool that lists its GPUs keeps them; one without takes the lowest GPUs left.
  const auto dir2 = test::temp_dir("pools-mix");
  const ScenarioLoader mix(pools_scenario(dir2, pool("p", "prefill") + pool("d", "decode",
                                                                              "[cluster.pools.parallel]\n"
                                                                              "gpus = [0, 1, 2, 3, 4, 5, 6, 7]\n")),
                           pools_allowed());
  CHECK(mix.scenario().pools[0].replica_gpus == std::vector<std::vector<int>>{range(8, 16)});
  CHECK(mix.scenario().pools[1].replica_gpus == std::vector<std::vector<int>>{range(0, 8)});
  // Aggregated pools may join a prefill/decode split; names default to the role.
  const auto dir3 = test::temp_dir("pools-three");
  const ScenarioLoader three(
      pools_scenario(dir3, "[[cluster.pools]]\nrole = \"prefill\"\n[cluster.pools.parallel]\ntensor_parallel_size = 4\n"
                           "[[cluster.pools]]\nrole = \"decode\"\n[cluster.pools.parallel]\ntensor_parallel_size = 4\n"
                           "[[cluster.pools]]\nrole = \"aggregated\"\n"),
      pools_allowed());
  REQUIRE(three.scenario().pools.size() == 3);
  CHECK(three.scenario().pools[0].name == "prefill");
  CHECK(three.scenario().pools[2].name == "aggregated");
  CHECK(three.scenario().pools[2].replica_gpus == std::vector<std::vector<int>>{range(8, 16)});
}

TEST_CASE("a shared [parallel] key that every pool overrides is their default, not an unknown key", "[pools]") {
  const auto dir = test::temp_dir("pools-all-over");
  const std::string tp4 = "[cluster.pools.parallel]\ntensor_parallel_size = 4\n";
  const std::string path = pools_scenario(dir, pool("p", "prefill", "num_replicas = 1\n" + tp4) +
                                                   pool("d", "decode", "num_replicas = 1\n" + tp4));
  const ScenarioLoader l(path, pools_allowed());
  REQUIRE(l.scenario().pools.size() == 2);
  for (const PoolSpec& p : l.scenario().pools) CHECK(p.parallel.tensor == 4);
}

TEST_CASE("a loader refuses several pools in one line unless its caller simulates them", "[pools]") {
  const std::string path = test::scenario_path(kDisagg);
  const std::string msg = test::input_error([&] { const ScenarioLoader l(path, {}); });
  CHECK(msg.find('\n') == std::string::npos);
  CHECK_THAT(msg, Catch::StartsWith(path + ":"));
  CHECK_THAT(msg, Catch::Contains(": cluster.pools: 2 pools: prefill (prefill, 1 replica), decode (decode, 1 "
                                  "replica); this command takes one pool only (servesim run simulates several)"));
  CHECK_NOTHROW(ScenarioLoader(path, pools_allowed()));
}

TEST_CASE("bad pools fail with one line naming the key", "[pools]") {
  const std::string pre = pool("prefill", "prefill", "[cluster.pools.parallel]\ngpus = [0, 1, 2, 3, 4, 5, 6, 7]\n");
  SECTION("a decode pool on GPUs the topology does not have") {
    const std::string msg = load_error(pre + pool("decode", "decode", "[cluster.pools.parallel]\n"
                                                                      "gpus = [16, 17, 18, 19, 20, 21, 22, 23]\n"));
    CHECK_THAT(msg, Catch::Contains(": cluster.pools[1].parallel.gpus: GPU 16 is not on topology "
                                    "cluster-2x-dgx-h100 (it has 16 GPUs)"));
  }
  SECTION("two pools on the same GPUs") {
    const std::string msg = load_error(pre + pool("decode", "decode", "[cluster.pools.parallel]\n"
                                                                      "gpus = [4, 5, 6, 7, 8, 9, 10, 11]\n"));
    CHECK_THAT(msg, Catch::Contains(": cluster.pools[1].parallel.gpus: GPU 4 is also listed by pool 'prefill' "
                                    "(cluster.pools[0].parallel.gpus)"));
  }
  SECTION("a pool needing more GPUs than the topology has") {
    const std::string msg = load_error(pool("prefill", "prefill") + pool("decode", "decode", "num_replicas = 3\n"));
    CHECK_THAT(msg, Catch::Contains(": cluster.pools[1].num_replicas: 3 replicas of 8 GPUs need 24 GPUs but "
                                    "topology cluster-2x-dgx-h100 has 16"));
  }
  SECTION("a pool needing more GPUs than the other pools leave") {
    const std::string msg = load_error(pre + pool("decode", "decode", "num_replicas = 2\n"));
    CHECK_THAT(msg, Catch::Contains(": cluster.pools[1].num_replicas: 2 replicas of 8 GPUs need 16 GPUs but only 8 "
                                    "of topology cluster-2x-dgx-h100's 16 are not taken by the other pools"));
  }
  SECTION("a GPU listed twice within a pool, or a list of the wrong length") {
    CHECK_THAT(load_error(pool("a", "aggregated", "[cluster.pools.parallel]\ngpus = [0, 1, 2, 3, 4, 5, 6, 6]\n")),
               Catch::Contains(": cluster.pools[0].parallel.gpus: GPU 6 is listed twice"));
    CHECK_THAT(load_error(pool("a", "aggregated", "[cluster.pools.parallel]\ngpus = [0, 1]\n")),
               Catch::Contains(": cluster.pools[0].parallel.gpus: lists 2 GPUs for tensor x pipeline = 8"));
  }
  SECTION("an unknown role") {
    const std::string msg = load_error(pre + pool("decode", "dekode"));
    CHECK_THAT(msg, Catch::Contains(":18: cluster.pools[1].role: unknown pool role 'dekode' (valid: aggregated, "
                                    "decode, prefill)"));
  }
  SECTION("a missing role") {
    CHECK_THAT(load_error("[[cluster.pools]]\nname = \"x\"\n"),
               Catch::Contains("missing required key 'cluster.pools[0].role'"));
  }
  SECTION("prefill without decode, decode without prefill") {
    CHECK_THAT(load_error(pre), Catch::Contains(":13: cluster.pools[0].role: a prefill pool hands its requests to a "
                                                "decode pool, and the scenario has none"));
    CHECK_THAT(load_error(pool("a", "aggregated") + pool("d", "decode")),
               Catch::Contains(": cluster.pools[1].role: a decode pool takes its requests from a prefill pool"));
  }
  SECTION("prefill and decode pools without a topology") {
    const auto dir = test::temp_dir("pools-notopo");
    const std::string path = test::write_file(
        dir / "s.toml",
        test::base_scenario_text() + pool("p", "prefill") + pool("d", "decode") + "[workload]\nnum_requests = 1\n");
    const std::string msg = test::input_error([&] { const ScenarioLoader l(path, pools_allowed()); });
    CHECK(msg == path + ":10: cluster.pools[1].role: prefill and decode pools need [parallel] topology: the KV cache "
                        "goes from one to the other over its links");
  }
  SECTION("two pools of one name") {
    CHECK_THAT(load_error(pool("x", "prefill") + pool("x", "decode")),
               Catch::Contains(": cluster.pools[1].name: pool name 'x' is also the name of cluster.pools[0]"));
  }
  SECTION("an unknown decode_router lists the valid ones") {
    const std::string msg = load_error("[cluster]\ndecode_router = \"fastest\"\n" + pre + pool("decode", "decode"));
    CHECK_THAT(msg, Catch::EndsWith(":12: cluster.decode_router: unknown router 'fastest' (valid: " +
                                    router_registry().names() + ")"));
    CHECK_THAT(router_registry().names(), Catch::Contains("least_loaded") && Catch::Contains("round_robin"));
  }
  SECTION("an unknown KV-transfer mode") {
    CHECK_THAT(load_error("[cluster.kv_transfer]\nmode = \"eventually\"\n" + pre + pool("decode", "decode")),
               Catch::Contains(": cluster.kv_transfer.mode: unknown KV-transfer mode 'eventually' (valid: "
                               "after_prefill, layer_streamed)"));
  }
  SECTION("an unknown transport lists the valid ones") {
    CHECK_THAT(load_error("[cluster.kv_transfer]\ntransport = \"pigeon\"\n" + pre + pool("decode", "decode")),
               Catch::EndsWith(":12: cluster.kv_transfer.transport: unknown transport 'pigeon' (valid: auto, " +
                               transport_names_text() + ")"));
  }
  SECTION("decode_router and kv_transfer without prefill and decode pools") {
    CHECK_THAT(load_error("[cluster]\ndecode_router = \"round_robin\"\n"),
               Catch::Contains(": cluster.decode_router: applies to a cluster with prefill and decode pools"));
    CHECK_THAT(load_error("[cluster.kv_transfer]\nmode = \"layer_streamed\"\n" + pool("a", "aggregated")),
               Catch::Contains(": cluster.kv_transfer: applies to a cluster with prefill and decode pools"));
  }
  SECTION("keys each pool gives for itself") {
    CHECK_THAT(load_error("[cluster]\nreplicas = 2\n" + pool("a", "aggregated")),
               Catch::Contains(": cluster.replicas: with [[cluster.pools]], each pool gives its own num_replicas"));
    CHECK_THAT(load_error(pool("a", "aggregated", "[cluster.pools.parallel]\ntopology = \"dgx-h100\"\n")),
               Catch::Contains(": cluster.pools[0].parallel.topology: the pools share [parallel] topology"));
  }
  SECTION("a pool's engine key is checked as the scenario's") {
    CHECK_THAT(load_error(pre + pool("decode", "decode", "[cluster.pools.engine]\nmax_num_seqs = 0\n")),
               Catch::Contains(": cluster.pools[1].engine.max_num_seqs: must be a positive integer (got 0)"));
    CHECK_THAT(load_error(pre + pool("decode", "decode", "[cluster.pools.engine]\nmax_num_seq = 10\n")),
               Catch::Contains("unknown key 'cluster.pools[1].engine.max_num_seq'"));
    CHECK_THAT(load_error(pre + pool("decode", "decode", "gpu = \"tpu\"\n")),
               Catch::Contains(": cluster.pools[1].gpu: unknown gpu 'tpu' (valid: "));
  }
  SECTION("a pool's parallel layout the model does not divide into") {
    CHECK_THAT(load_error(pre + pool("decode", "decode", "[cluster.pools.parallel]\ntensor_parallel_size = 3\n")),
               Catch::Contains(": cluster.pools[1].parallel.tensor_parallel_size: 64 attention heads of llama-3-70b "
                               "do not divide by tensor_parallel_size 3"));
  }
}
