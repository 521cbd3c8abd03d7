// The SLO capacity planner (sim/plan/): the bisection, replica and cost arithmetic, the Pareto front, the fleet
// search, the plan TOML's errors, and small real plans (deterministic, sharded = unsharded).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "helpers.h"
#include "models/common/error.h"
#include "sim/plan/plan_spec.h"
#include "sim/plan/planner.h"
#include "sim/plan/report.h"
#include "sim/plan/search.h"

using namespace servesim;
using servesim::test::read_file;
using servesim::test::scenario_path;
using servesim::test::temp_dir;
using servesim::test::write_file;

namespace {

// A plan over scenarios/quickstart.toml (Llama-3-8B, Poisson arrivals, lognormal lengths) in a fresh folder,
// with `body` after the scenario line.
std::string write_plan(const std::string& tag, const std::string& body) {
  const auto dir = temp_dir(tag);
  return write_file(dir / "plan.toml", "scenario = \"" + scenario_path("quickstart.toml") + "\"\n" + body);
}

std::string error_of(const std::string& path) {
  try {
    (void)read_plan(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

const char* kSmallPlan = R"(target_rate = 6.0
[slo]
ttft_p99_ms = 1000
tpot_p99_ms = 60
[candidates]
gpus = ["h100-sxm", "a100-80g"]
[search]
seeds = [1, 2]
rate_min = 0.5
rate_max = 32.0
tolerance = 0.1
num_requests = 60
)";

}  // namespace

TEST_CASE("plan: bisection on a monotone predicate takes the worked-out steps", "[plan]") {
  // passes(r) = r <= 5 on [1, 256], 5 % tolerance: exponents of 2 are bisected, so every probe is 2^e:
  // 0 pass, 8 fail, 4 fail, 2 pass, 3 fail, 2.5 fail, 2.25 pass, 2.375 fail, 2.3125 pass; then the bracket
  // [2^2.3125, 2^2.375] is a ratio of 2^0.0625 = 1.0443 <= 1.05 and the search ends at 2^2.3125 = 4.967.
  const BisectSettings s{1.0, 256.0, 0.05, 12};
  const BisectResult r = bisect_max_rate(s, [](double rate) { return rate <= 5.0; });
  const std::vector<double> exps{0, 8, 4, 2, 3, 2.5, 2.25, 2.375, 2.3125};
  const std::vector<bool> pass{true, false, false, true, false, false, true, false, true};
  REQUIRE(r.probes.size() == exps.size());
  for (std::size_t i = 0; i < exps.size(); ++i) {
    CHECK(r.probes[i].rate == Approx(std::pow(2.0, exps[i])).epsilon(1e-12));
    CHECK(r.probes[i].pass == pass[i]);
  }
  REQUIRE(r.max_rate);
  CHECK(*r.max_rate == Approx(std::pow(2.0, 2.3125)).epsilon(1e-12));
  CHECK_FALSE(r.capped);
}

TEST_CASE("plan: bisection ends at rate_min, rate_max or max_probes", "[plan]") {
  const BisectSettings s{1.0, 256.0, 0.05, 12};
  const BisectResult none = bisect_max_rate(s, [](double) { return false; });
  CHECK(none.probes.size() == 1);
  CHECK_FALSE(none.max_rate);
  const BisectResult all = bisect_max_rate(s, [](double) { return true; });
  CHECK(all.probes.size() == 2);
  REQUIRE(all.max_rate);
  CHECK(*all.max_rate == 256.0);
  CHECK(all.capped);
  // Four probes at most: 1 pass, 256 fail, 16 fail, 4 pass -> 4.
  const BisectResult few = bisect_max_rate(BisectSettings{1.0, 256.0, 0.05, 4}, [](double r) { return r <= 5.0; });
  CHECK(few.probes.size() == 4);
  REQUIRE(few.max_rate);
  CHECK(*few.max_rate == Approx(4.0).epsilon(1e-12));
  CHECK_THROWS_AS(Bisection(BisectSettings{2.0, 1.0, 0.05, 12}), std::logic_error);
}

TEST_CASE("plan: replica count and fleet cost", "[plan]") {
  CHECK(replicas_for(20.0, 10.0) == 2);
  CHECK(replicas_for(20.0, 6.0) == 4);          // 3.33 -> 4
  CHECK(replicas_for(20.0, 20.0 / 3.0) == 3);   // 3.0000000000000004 is 3
  CHECK(replicas_for(20.0, 19.99) == 2);
  CHECK(replicas_for(20.0, 25.0) == 1);
  CHECK(replicas_for(0.1, 64.0) == 1);
  // 3 replicas of TP 2 on H100 SXM at $6.88 a GPU-hour: 3 x 2 x 6.88 = $41.28/h.
  CHECK(fleet_cost_per_hour(3, 2, 6.88) == Approx(41.28).epsilon(1e-12));
  CHECK(fleet_cost_per_hour(4, 1, 3.4309) == Approx(13.7236).epsilon(1e-12));
}

TEST_CASE("plan: Pareto front of hand-made points", "[plan]") {
  // B (10, 400) dominates A (10, 500: same cost, slower) and D (15, 450); C and F (20, 300) are equal, both kept;
  // E (30, 300) costs more than C for the same latency.
  const std::vector<CostPoint> pts{{10, 500}, {10, 400}, {20, 300}, {15, 450}, {30, 300}, {20, 300}};
  CHECK(pareto_front(pts) == std::vector<std::size_t>{1, 2, 5});
  CHECK(pareto_front({}).empty());
  CHECK(pareto_front({{5, 5}}) == std::vector<std::size_t>{0});
  // A strictly better point removes everything else.
  CHECK(pareto_front({{3, 9}, {1, 1}, {2, 2}}) == std::vector<std::size_t>{1});
}

TEST_CASE("plan: fleet search goes down while fleets meet, up while they miss", "[plan]") {
  FleetSearch down(3, 2);  // 3 meets, 2 meets, 1 misses -> 2
  REQUIRE(down.next() == 3);
  down.record(true);
  REQUIRE(down.next() == 2);
  down.record(true);
  REQUIRE(down.next() == 1);
  down.record(false);
  CHECK_FALSE(down.next());
  CHECK(down.confirmed() == 2);

  FleetSearch up(3, 2);  // 3 misses, 4 misses, 5 meets -> 5 (no way down after a miss)
  up.record(false);
  REQUIRE(up.next() == 4);
  up.record(false);
  REQUIRE(up.next() == 5);
  up.record(true);
  CHECK_FALSE(up.next());
  CHECK(up.confirmed() == 5);

  FleetSearch never(2, 1);  // 2 misses, 3 misses, limit
  never.record(false);
  never.record(false);
  CHECK_FALSE(never.next());
  CHECK_FALSE(never.confirmed());

  FleetSearch one(1, 2);  // 1 meets: nothing smaller
  one.record(true);
  CHECK_FALSE(one.next());
  CHECK(one.confirmed() == 1);
}

TEST_CASE("plan: the plan TOML's errors name the key", "[plan]") {
  const std::string slo = "target_rate = 5.0\n[slo]\nttft_p99_ms = 2000\ntpot_p99_ms = 100\n";
  CHECK_THAT(error_of(write_plan("p-target", "[slo]\nttft_p99_ms = 2000\ntpot_p99_ms = 100\n")),
             Catch::Contains("target_rate"));  // required
  {
    const auto dir = temp_dir("p-scen");
    const std::string p = write_file(dir / "plan.toml", "scenario = \"nope.toml\"\n" + slo +
                                                            "[candidates]\ngpus = [\"h100-sxm\"]\n");
    CHECK_THAT(error_of(p), Catch::Contains("plan.toml:1: scenario: scenario 'nope.toml' not found"));
  }
  CHECK_THAT(error_of(write_plan("p-empty", slo)), Catch::Contains("candidates: the candidate set is empty"));
  CHECK_THAT(error_of(write_plan("p-empty2", slo + "[candidates]\ngpus = []\n")),
             Catch::Contains("candidates.gpus: lists no GPU: the candidate set is empty"));
  CHECK_THAT(error_of(write_plan("p-tp", slo + "[candidates]\ngpus = [\"h100-sxm\"]\ntensor_parallel_size = []\n")),
             Catch::Contains("the candidate set is empty"));
  CHECK_THAT(error_of(write_plan("p-gpu", slo + "[candidates]\ngpus = [\"h300\"]\n")),
             Catch::Contains("candidates.gpus: unknown gpu 'h300' (valid: a100-80g, b200, h100-pcie, h100-sxm, h200, l40s)"));
  CHECK_THAT(error_of(write_plan("p-price", slo + "[candidates]\ngpus = [\"l40s\"]\n")),
             Catch::Contains("candidates.gpus: gpu 'l40s' has no price"));
  CHECK(error_of(write_plan("p-price2", slo + "[candidates]\ngpus = [\"l40s\"]\n[prices]\nl40s = 1.5\n")).empty());
  CHECK_THAT(error_of(write_plan("p-key", slo + "[candidates]\ngpus = [\"h200\"]\nreplicas = 2\n")),
             Catch::Contains("unknown key 'candidates.replicas'"));
  CHECK_THAT(error_of(write_plan("p-good", slo + "goodput = 1.5\n[candidates]\ngpus = [\"h200\"]\n")),
             Catch::Contains("slo.goodput: is a share of requests"));
  CHECK_THAT(error_of(write_plan("p-dup", slo + "[candidates]\ngpus = [\"h200\", \"h200\"]\n")),
             Catch::Contains("candidate h200 tp1 is listed twice"));
  CHECK_THAT(error_of(write_plan("p-rate", slo + "[candidates]\ngpus = [\"h200\"]\n[search]\nrate_min = 8.0\n"
                                               "rate_max = 4.0\n")),
             Catch::Contains("search.rate_max: must be above rate_min (8.0)"));
  // The listed form, with its own price.
  const PlanSpec listed = read_plan(write_plan("p-list", slo + "[[candidate]]\ngpu = \"l40s\"\n"
                                                               "tensor_parallel_size = 2\n"
                                                               "price_per_gpu_hour_usd = 2.0\n"));
  REQUIRE(listed.candidates.size() == 1);
  CHECK(listed.candidates[0].label() == "l40s tp2");
  CHECK(listed.candidates[0].price_per_gpu_hour == 2.0);
  // The grid: gpu outermost, then TP, then PP; catalog prices.
  const PlanSpec grid = read_plan(write_plan("p-grid", slo + "[candidates]\ngpus = [\"h100-sxm\", \"a100-80g\"]\n"
                                                             "tensor_parallel_size = [1, 2]\n"));
  REQUIRE(grid.candidates.size() == 4);
  CHECK(grid.candidates[1].label() == "h100-sxm tp2");
  CHECK(grid.candidates[2].label() == "a100-80g tp1");
  CHECK(grid.candidates[0].price_per_gpu_hour == 6.88);
  CHECK(grid.candidates[2].price_per_gpu_hour == 3.4309);
}

TEST_CASE("plan: the rate and requests of a probe as --set lines", "[plan]") {
  const RateControl poisson{"poisson", 0};
  CHECK(poisson.sets(20.0, 500) ==
        std::vector<std::pair<std::string, std::string>>{{"workload.num_requests", "500"},
                                                         {"workload.arrival.rate", "20.0"}});
  CHECK(poisson.max_requests() == 100'000'000);
  const RateControl trace{"trace", 19366};
  CHECK(trace.sets(0.1, 2)[1].second == "0.1");
  CHECK(trace.max_requests() == 19366);
  CHECK(toml_float(20.0) == "20.0");
  CHECK(toml_float(1e-7) == "1e-07");
  // The Azure conversation trace as the base: its rows bound a probe's requests.
  const auto dir = temp_dir("p-trace");
  const std::string base = write_file(dir / "base.toml", "[model]\nconfig = \"llama-3-8b\"\n[hardware]\n"
                                                         "gpu = \"h100-sxm\"\n[workload]\n[workload.arrival]\n"
                                                         "impl = \"trace\"\npath = \"" +
                                                             scenario_path("traces/azure_llm_2023_conv.csv") + "\"\n");
  const std::string head = "scenario = \"base.toml\"\ntarget_rate = 5.0\n[slo]\nttft_p99_ms = 2000\n"
                           "tpot_p99_ms = 100\n[candidates]\ngpus = [\"h100-sxm\"]\n";
  const PlanSpec plan = read_plan(write_file(dir / "plan.toml", head));
  CHECK(plan.rate.impl == "trace");
  CHECK(plan.rate.available == 19366);
  CHECK_THAT(error_of(write_file(dir / "big.toml", head + "[search]\nnum_requests = 20000\n")),
             Catch::Contains("big.toml:9: search.num_requests: the replay has 19366 rows: must be in [2, 19366]"));
}

TEST_CASE("plan: P:D candidates are prefill and decode pools sized in units", "[plan]") {
  const std::string slo = "target_rate = 6.0\n[slo]\nttft_p99_ms = 1000\ntpot_p99_ms = 60\n";
  CHECK_THAT(error_of(write_plan("p-pd-bad", slo + "[candidates]\ngpus = [\"h100-sxm\"]\npd_ratios = [\"1:0\"]\n")),
             Catch::Contains("candidates.pd_ratios: '1:0' is neither \"aggregated\" nor a P:D ratio"));
  const PlanSpec plan = read_plan(write_plan("p-pd", slo + "[candidates]\ngpus = [\"h100-sxm\"]\n"
                                                           "pd_ratios = [\"aggregated\", \"1:2\"]\n"
                                                           "[topology]\nh100-sxm = \"dgx-h100\"\n"
                                                           "[search]\nnum_requests = 40\nrate_min = 0.5\n"
                                                           "rate_max = 16.0\ntolerance = 0.2\n"));
  REQUIRE(plan.candidates.size() == 2);
  const CandidateSpec& agg = plan.candidates[0];
  const CandidateSpec& pd = plan.candidates[1];
  CHECK(agg.label() == "h100-sxm tp1");
  CHECK(pd.label() == "h100-sxm tp1 1P:2D");
  CHECK(pd.pd_ratio() == "1:2");
  CHECK(pd.gpus_per_unit() == 3);
  // A single-GPU aggregated replica needs no topology; a P:D unit gets the plan's and its pools.
  const auto agg_sets = point_sets(plan, ProbePoint{0, 3, 2.0, 40, 1});
  CHECK(std::find_if(agg_sets.begin(), agg_sets.end(), [](const auto& kv) { return kv.first == "parallel.topology"; }) ==
        agg_sets.end());
  CHECK(std::find(agg_sets.begin(), agg_sets.end(), std::pair<std::string, std::string>{"cluster.replicas", "3"}) !=
        agg_sets.end());
  const auto pd_sets = point_sets(plan, ProbePoint{1, 2, 2.0, 40, 1});
  CHECK(std::find(pd_sets.begin(), pd_sets.end(),
                  std::pair<std::string, std::string>{"parallel.topology", "\"dgx-h100\""}) != pd_sets.end());
  CHECK(std::find(pd_sets.begin(), pd_sets.end(),
                  std::pair<std::string, std::string>{
                      "cluster.pools", "[{name = \"prefill\", role = \"prefill\", num_replicas = 2}, "
                                       "{name = \"decode\", role = \"decode\", num_replicas = 4}]"}) != pd_sets.end());
  // The P:D unit runs: its max rate is a unit's, its fleet is priced at 3 GPUs a unit.
  const auto results = run_candidates(plan, {1}, thread_pool_for(2));
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].status == CandidateResult::Status::ok);
  REQUIRE(results[0].replicas >= 1);
  CHECK(results[0].cost_per_hour == Approx(results[0].replicas * 3 * 6.88).epsilon(1e-12));
}

TEST_CASE("plan: a small real plan is deterministic and shards merge to the same files", "[plan]") {
  const PlanSpec plan = read_plan(write_plan("p-real", kSmallPlan));
  const std::vector<std::size_t> all{0, 1};
  const PlanResult one = plan_result(plan, run_candidates(plan, all, thread_pool_for(1)), thread_pool_for(1));
  const PlanResult two = plan_result(plan, run_candidates(plan, all, thread_pool_for(2)), thread_pool_for(2));
  const std::string csv = plan_csv(plan, one);
  CHECK(csv == plan_csv(plan, two));
  CHECK(pareto_csv(plan, one) == pareto_csv(plan, two));
  CHECK(format_plan(plan, one) == format_plan(plan, two));

  // Both candidates find a rate; the chosen fleet meets the SLOs at the target and costs the least of those that do.
  const CandidateResult& chosen = one.candidates[one.chosen];
  CHECK(chosen.meets);
  CHECK(check_slo(plan.slo, chosen.fleet).meets());
  for (const CandidateResult& r : one.candidates) {
    REQUIRE(r.status == CandidateResult::Status::ok);
    REQUIRE(r.search.max_rate);
    CHECK(*r.search.max_rate > plan.bisect.rate_min);
    if (r.meets) CHECK(r.cost_per_hour >= chosen.cost_per_hour);
  }
  // The cheaper fleet, when there is one, misses an SLO.
  if (one.cheaper) CHECK_FALSE(check_slo(plan.slo, one.cheaper->metrics).meets());
  CHECK_THAT(format_plan(plan, one), Catch::Contains("confirm: servesim run ") && Catch::Contains("--seed 1"));

  // Shards 0/2 and 1/2 in part files, merged: the same files and report as the unsharded plan.
  const auto dir = temp_dir("p-parts");
  std::vector<std::string> parts;
  for (std::int64_t i = 0; i < 2; ++i) {
    const Shard s{i, 2};
    const auto which = shard_candidates(plan.candidates.size(), s);
    CHECK(which == std::vector<std::size_t>{static_cast<std::size_t>(i)});
    parts.push_back(write_file(dir / ("part" + std::to_string(i) + ".json"),
                               plan_part(plan, s, run_candidates(plan, which, thread_pool_for(1)))));
  }
  const PlanResult merged = plan_result(plan, read_plan_parts(plan, {parts[1], parts[0]}), thread_pool_for(1));
  CHECK(plan_csv(plan, merged) == csv);
  CHECK(pareto_csv(plan, merged) == pareto_csv(plan, one));
  CHECK(format_plan(plan, merged) == format_plan(plan, one));
  CHECK_THROWS_WITH(read_plan_parts(plan, {parts[0]}),
                    Catch::Contains("no part holds candidate 1 (a100-80g tp1, shard 1/2): 1 of 2 shards given"));
  CHECK_THROWS_WITH(read_plan_parts(plan, {parts[0], parts[0]}), Catch::Contains("shard 0/2 is also"));
  const PlanSpec other = read_plan(write_plan("p-other", std::string(kSmallPlan) + "max_extra_replicas = 5\n"));
  CHECK_THROWS_WITH(read_plan_parts(other, parts), Catch::Contains("a part of another plan"));
  CHECK_THROWS_WITH(read_plan_parts(plan, {write_file(dir / "x.json", "{}")}), Catch::Contains("x.json: not a part"));
  CHECK(shard_candidates(5, Shard{1, 2}) == std::vector<std::size_t>{1, 3});
}

TEST_CASE("plan: an SLO no candidate meets names the best candidate and its miss", "[plan]") {
  // A P99 TTFT of 1 ms is below any prefill of Llama-3-8B's ~1k-token prompts: every candidate misses at
  // rate_min; H100 prefills faster than A100, so it is the best.
  std::string text = kSmallPlan;
  text.replace(text.find("ttft_p99_ms = 1000"), 18, "ttft_p99_ms = 1");
  const PlanSpec plan = read_plan(write_plan("p-miss", text));
  auto results = run_candidates(plan, {0, 1}, thread_pool_for(2));
  for (const CandidateResult& r : results) CHECK(r.status == CandidateResult::Status::misses);
  CHECK_THROWS_WITH(plan_result(plan, std::move(results), thread_pool_for(1)),
                    Catch::Matches(".*plan\\.toml: no candidate meets the SLOs; best: h100-sxm tp1 reaches P99 TTFT "
                                   "[0-9.]+ (ms|s) \\([0-9.]+x the SLO of 1 ms\\) at 1 replica's minimum rate 0\\.5 req/s"));
}

TEST_CASE("plan: servesim plan with a bad plan prints one line, exits 2 and writes nothing", "[plan]") {
  const auto dir = temp_dir("p-cli");
  const std::string out = (dir / "out").string();
  const std::string bad = write_file(dir / "bad.toml", "scenario = \"" + scenario_path("quickstart.toml") +
                                                           "\"\ntarget_rate = 5.0\n[slo]\nttft_p99_ms = 2000\n"
                                                           "tpot_p99_ms = 100\n[candidates]\ngpus = []\n");
  const auto r = servesim::test::run_command(std::string(SERVESIM_BINARY) + " plan " + bad + " --out " + out);
  CHECK(r.code == 2);
  CHECK(r.output == "servesim: error: " + bad + ":7: candidates.gpus: lists no GPU: the candidate set is empty\n");
  CHECK_FALSE(std::filesystem::exists(out));
  const auto missing = servesim::test::run_command(std::string(SERVESIM_BINARY) + " plan " + (dir / "none.toml").string() +
                                                   " --out " + out);
  CHECK(missing.code == 2);
  CHECK_THAT(missing.output, Catch::Contains("none.toml: cannot open plan"));
  CHECK_FALSE(std::filesystem::exists(out));
}
