// servesim explain on disaggregated runs (sim/metrics/explain.h): decode wait and KV transfer as causes of the TPOT
// tail with their levers (more decode replicas on free GPUs, fp8 KV on the decode pool, the auto transport,
// layer-streamed transfers), hand-computed on synthetic runs and verified on the two planted scenarios of
// scenarios/disagg/; a --set that names a pool by index.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "helpers.h"
#include "models/common/config.h"
#include "sim/io/run_dir.h"
#include "sim/metrics/explain.h"

using namespace servesim;

namespace {

// A disaggregated run's summary.json: one prefill replica on GPU 0 (replica 0) and one decode replica on GPU 8
// (replica 1), 1,000 KV blocks of 16 tokens each, on a topology of `topology_gpus` GPUs.
nlohmann::json disagg_summary(const std::string& transport = "auto", const std::string& mode = "after_prefill",
                              std::int64_t topology_gpus = 16, const std::string& dtype = "auto") {
  const auto pool = [&](const char* name, int gpu) {
    return nlohmann::json{{"name", name},       {"role", name},           {"num_replicas", 1},
                          {"gpu", "h100-sxm"},  {"tensor_parallel_size", 1}, {"pipeline_parallel_size", 1},
                          {"num_gpu_blocks", 1000}, {"block_size", 16},  {"kv_cache_dtype", dtype},
                          {"gpus", {gpu}}};
  };
  return {{"request_throughput", 10.0},
          {"servesim",
           {{"mean_step_ms", 10.0},
            {"config",
             {{"tensor_parallel_size", 1},
              {"num_replicas", 2},
              {"pools", {pool("prefill", 0), pool("decode", topology_gpus > 8 ? 8 : 1)}},
              {"topology_gpus", topology_gpus}}},
            {"disaggregation",
             {{"kv_transfer_mode", mode},
              {"transport", transport},
              {"kv_transfer_ms", {{"p50", 10.0}, {"p99", 400.0}}},
              {"pools", {{{"busy_fraction", 0.25}}, {{"busy_fraction", 0.9}}}}}}}}};
}

// 100 requests 0.1 s apart (arrival rate 99 / 9.9 s = 10/s), decoded on replica 1: prompt 1,584 tokens and 32
// output tokens (1,584 + 32 / 2 = 1,600 tokens = 100 blocks held on average), TTFT 100 ms (prefill), a KV transfer
// of `transfer` ms and decode of 1,990 ms: 2 s holding decode blocks. The last ten wait (i - 89) x `wait` ms for
// decode blocks, and (i - 89) x `slow` ms more in the transfer.
std::vector<RequestRow> disagg_rows(double wait, double slow) {
  std::vector<RequestRow> rows;
  for (int i = 0; i < 100; ++i) {
    RequestRow r;
    r.id = static_cast<std::uint64_t>(i);
    r.replica = 1;
    r.arrival_s = 0.1 * i;
    r.prompt_tokens = 1584;
    r.output_tokens = 32;
    r.prefill_ms = 100;
    r.ttft_ms = 100;
    r.kv_transfer_ms = 10 + (i >= 90 ? (i - 89) * slow : 0.0);
    r.decode_wait_ms = i >= 90 ? (i - 89) * wait : 0.0;
    r.decode_ms = 1990;
    r.tpot_ms = (r.kv_transfer_ms + r.decode_wait_ms + r.decode_ms) / 31;
    r.e2el_ms = r.ttft_ms + r.kv_transfer_ms + r.decode_wait_ms + r.decode_ms;
    r.compute_share = 0.5;
    rows.push_back(r);
  }
  return rows;
}

struct Planted {
  RunDir run;
  Explanation e;
};
Planted run_planted(const std::string& name) {
  const auto dir = test::temp_dir("explain-disagg") / "out";
  const auto r = test::run_cli("run " + test::scenario_path("disagg/" + name + ".toml") + " --out " + dir.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  Planted p{read_run_dir(dir.string()), {}};
  p.e = explain_run(p.run);
  return p;
}

void check_verified(const Planted& p) {
  const Verification v = verify_lever(p.e, run_recipe(p.run.summary));
  INFO(p.e.text);
  INFO("before " << v.before_p99_ms << " after " << v.after_p99_ms);
  CHECK(v.metric == "tpot");
  CHECK(v.before_p99_ms == Approx(p.run.summary.at("p99_tpot_ms").get<double>()).epsilon(1e-9));
  CHECK(v.after_p99_ms < 0.8 * v.before_p99_ms);
}

}  // namespace

TEST_CASE("explain: decode wait is a cause, sized by Little's law on the decode pool's blocks", "[explain]") {
  // Blocks in use: 10 requests/s x 100 blocks x 2 s = 2,000; at 80% of 1,000 blocks a replica, ceil(2.5) = 3
  // decode replicas, the two new ones on the free GPUs after the pool's own: 9 and 10.
  Explanation e = explain_requests(disagg_summary(), disagg_rows(1000, 0));
  INFO(e.text);
  CHECK(e.cause == Cause::decode_wait);
  CHECK(e.metric == "tpot");
  CHECK(e.component == "decode_wait");
  CHECK(e.tpot.top().share >= 0.99);
  CHECK(e.lever_sets ==
        std::vector<std::string>{"cluster.pools[1].num_replicas=3", "cluster.pools[1].parallel.gpus=[8, 9, 10]"});
  CHECK_THAT(e.lever, Catch::StartsWith("decode pool 'decode' replicas 1 -> 3 on GPUs 9-10"));
  CHECK_THAT(e.cause_text, Catch::Contains("about 2000 blocks are in use") && Catch::Contains("200% of them"));
  CHECK_THAT(e.text,
             Catch::Contains("Diagnosis: decode_wait") &&
                 Catch::Contains("Pools: prefill (prefill, 1 x 1 GPU, busy 25%), decode (decode, 1 x 1 GPU, busy 90%); "
                                 "KV transfer auto, after_prefill: median 10.00 ms, P99 400.00 ms") &&
                 Catch::Contains("--set 'cluster.pools[1].num_replicas=3' --set "
                                 "'cluster.pools[1].parallel.gpus=[8, 9, 10]'"));
  CHECK(e.to_json()["cause"] == "decode_wait");

  // Only one GPU free (a topology of 3: GPUs 0 and 1 taken): as many replicas as fit, and the lever says so.
  e = explain_requests(disagg_summary("auto", "after_prefill", 3), disagg_rows(1000, 0));
  CHECK(e.lever_sets ==
        std::vector<std::string>{"cluster.pools[1].num_replicas=2", "cluster.pools[1].parallel.gpus=[1, 2]"});
  CHECK_THAT(e.lever, Catch::Contains("3 would be, the topology has no more free GPUs"));
  // None free: fp8 KV on the decode pool; already fp8: no lever.
  e = explain_requests(disagg_summary("auto", "after_prefill", 2), disagg_rows(1000, 0));
  CHECK(e.cause == Cause::decode_wait);
  CHECK(e.lever_sets == std::vector<std::string>{"cluster.pools[1].engine.kv_cache_dtype=\"fp8\""});
  e = explain_requests(disagg_summary("auto", "after_prefill", 2, "fp8"), disagg_rows(1000, 0));
  CHECK(e.cause == Cause::none);
  CHECK(e.lever_sets.empty());
  CHECK_THAT(e.cause_text, Catch::Contains("decode_wait") && Catch::Contains("fp8 already"));
}

TEST_CASE("explain: the KV transfer is a cause - the auto transport, then layer streaming, are its levers",
          "[explain]") {
  // The tail's transfers take (i - 89) x 400 ms more: all of the TPOT growth.
  Explanation e = explain_requests(disagg_summary("tcp"), disagg_rows(0, 400));
  INFO(e.text);
  CHECK(e.cause == Cause::kv_transfer);
  CHECK(e.metric == "tpot");
  CHECK(e.component == "kv_transfer");
  CHECK(e.tpot.top().share >= 0.99);
  CHECK(e.lever_sets == std::vector<std::string>{"cluster.kv_transfer.transport=\"auto\""});
  CHECK_THAT(e.cause_text, Catch::Contains("10.00 ms at the median and 400.00 ms at P99 (transport tcp"));
  e = explain_requests(disagg_summary("auto"), disagg_rows(0, 400));
  CHECK(e.lever_sets == std::vector<std::string>{"cluster.kv_transfer.mode=\"layer_streamed\""});
  e = explain_requests(disagg_summary("auto", "layer_streamed"), disagg_rows(0, 400));
  CHECK(e.cause == Cause::none);
  CHECK_THAT(e.cause_text, Catch::Contains("grows most in kv_transfer"));
  // An aggregated run's zero columns never make these causes.
  nlohmann::json agg = disagg_summary("tcp");
  agg["servesim"].erase("disaggregation");
  CHECK(explain_requests(agg, disagg_rows(0, 400)).cause == Cause::none);
}

TEST_CASE("explain: queueing in a run with pools grows the pool that takes arrivals", "[explain]") {
  // TTFT = 100 ms prefill + a queue growing 0 .. 990 ms; requests arrive at 10/s and complete at 4/s: the prefill
  // pool needs ceil(1 x 10 / 4 / 0.8) = ceil(3.125) = 4 replicas, on GPUs 1-3 after its own GPU 0.
  nlohmann::json s = disagg_summary();
  s["request_throughput"] = 4.0;
  std::vector<RequestRow> rows = disagg_rows(0, 0);
  for (auto& r : rows) {
    r.queue_ms = 10.0 * double(r.id);
    r.ttft_ms = r.queue_ms + r.prefill_ms;
  }
  const Explanation e = explain_requests(s, rows);
  INFO(e.text);
  CHECK(e.cause == Cause::queueing);
  CHECK(e.lever_sets ==
        std::vector<std::string>{"cluster.pools[0].num_replicas=4", "cluster.pools[0].parallel.gpus=[0, 1, 2, 3]"});
}

TEST_CASE("a --set override names a table of an array of tables by index, as a lever does", "[explain]") {
  Config c = Config::from_string("[[cluster.pools]]\nrole = \"prefill\"\n[[cluster.pools]]\nrole = \"decode\"\n"
                                 "num_replicas = 1\n",
                                 "s.toml");
  c.set("cluster.pools[1].num_replicas", "3");
  c.set("cluster.pools[1].parallel.gpus", "[8, 9, 10]");
  const std::vector<Config> pools = c.table("cluster").tables("pools");
  REQUIRE(pools.size() == 2);
  CHECK(pools[1].positive_int_or("num_replicas", 1) == 3);
  CHECK(pools[1].table("parallel").integer_list_or("gpus", {}) == std::vector<std::int64_t>{8, 9, 10});
  CHECK(pools[0].keys() == std::vector<std::string>{"role"});
  CHECK_THAT(test::input_error([&] { c.set("cluster.pools[2].num_replicas", "1"); }),
             Catch::Contains("'pools' has 2 tables: there is no pools[2]"));
  CHECK_THAT(test::input_error([&] { c.set("cluster[0].x", "1"); }),
             Catch::Contains("'cluster' is not an array of tables"));
  CHECK_THAT(test::input_error([&] { c.set("cluster.pools[x].num_replicas", "1"); }),
             Catch::Contains("malformed key 'pools[x]'"));
}

TEST_CASE("explain: a decode pool too small is decode_wait, and more decode replicas cut the TPOT P99", "[explain]") {
  const Planted p = run_planted("explain-decode-starved");
  INFO(p.e.text);
  CHECK(p.e.cause == Cause::decode_wait);
  CHECK(p.e.metric == "tpot");
  CHECK(p.e.tpot.top().share >= 0.5);
  REQUIRE(p.e.lever_sets.size() == 2);
  CHECK_THAT(p.e.lever_sets[0], Catch::StartsWith("cluster.pools[1].num_replicas="));
  CHECK_THAT(p.e.lever_sets[1], Catch::StartsWith("cluster.pools[1].parallel.gpus=[8, 9"));
  check_verified(p);
}

TEST_CASE("explain: KV transfers over TCP are kv_transfer, and the auto transport cuts the TPOT P99", "[explain]") {
  const Planted p = run_planted("explain-kv-over-tcp");
  INFO(p.e.text);
  CHECK(p.e.cause == Cause::kv_transfer);
  CHECK(p.e.metric == "tpot");
  CHECK(p.e.lever_sets == std::vector<std::string>{"cluster.kv_transfer.transport=\"auto\""});
  check_verified(p);
}
