// Expert-parallel load balancing (vLLM --enable-eplb, num_redundant_experts): DeepSeek EPLB's placement, the
// busiest rank under skew, weights per GPU, and the [parallel] keys' errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "helpers.h"
#include "step_helpers.h"
#include "models/arch/model_arch.h"
#include "models/common/error.h"
#include "models/cost/moe_routing.h"
#include "models/cost/roofline.h"
#include "models/cost/step_model.h"
#include "sim/scenario/scenario.h"

using namespace servesim;

namespace {

ModelArch model(const std::string& name) { return ModelArch::from_hf_config(test::scenario_path("models/" + name)); }

using test::FreeComm;
using test::op_named;

std::vector<PhysicalExpert> rank_of(std::initializer_list<std::pair<std::int64_t, std::int64_t>> list) {
  std::vector<PhysicalExpert> out;
  for (const auto& [e, r] : list) out.push_back(PhysicalExpert{e, r});
  return out;
}

// Rows and expected groups of a list of physical experts, from the formula: s = q_i / replicas per token.
struct Expected {
  double groups = 0.0, rows = 0.0, busiest = 0.0;
};
Expected expected_load(const ExpertRouting& routing, const std::vector<PhysicalExpert>& rank, double T) {
  Expected x;
  for (const PhysicalExpert& p : rank) {
    const double s = routing.select()[static_cast<std::size_t>(p.expert)] / double(p.replicas);
    x.groups += 1.0 - std::pow(1.0 - s, T);
    x.rows += T * s;
    x.busiest = std::max(x.busiest, T * s);
  }
  return x;
}

}  // namespace

TEST_CASE("EPLB placement by hand: 6 experts on 2 ranks with 2 redundant experts", "[moe][eplb]") {
  // Loads 6, 4, 3, 2, 0.5, 0.25. Replicate: 6 is the largest per copy, expert 0 gets a 2nd copy (3 each); then
  // 4 (expert 1) is the largest, it gets a 2nd copy (2 each). Replicas 2, 2, 1, 1, 1, 1: 8 physical, 4 per rank.
  const std::vector<double> loads = {6.0, 4.0, 3.0, 2.0, 0.5, 0.25};
  const ExpertPlacement p = ExpertPlacement::balanced(loads, 2, 2);
  CHECK(p.replicas() == std::vector<std::int64_t>{2, 2, 1, 1, 1, 1});
  CHECK(p.physical_experts() == 8);
  CHECK(p.experts_per_rank() == 4);
  // Pack by weight descending, stable: e0 3, e0 3, e2 3, e1 2, e1 2, e3 2, e4 0.5, e5 0.25.
  //   e0 -> r0 (0 = 0, lower rank) 3 | e0 -> r1 3 | e2 -> r0 (tie) 6 | e1 -> r1 5 | e1 -> r1 7 | e3 -> r0 8 |
  //   e4 -> r1 (7 < 8) 7.5, now full | e5 -> r0, the only rank with room (r1's 7.5 would be smaller): 8.25.
  CHECK(p.rank(0) == rank_of({{0, 2}, {2, 1}, {3, 1}, {5, 1}}));
  CHECK(p.rank(1) == rank_of({{0, 2}, {1, 2}, {1, 2}, {4, 1}}));
  // Without EPLB: contiguous halves.
  const ExpertPlacement c = ExpertPlacement::contiguous(6, 2);
  CHECK(c.replicas() == std::vector<std::int64_t>(6, 1));
  CHECK(c.rank(0) == rank_of({{0, 1}, {1, 1}, {2, 1}}));
  CHECK(c.rank(1) == rank_of({{3, 1}, {4, 1}, {5, 1}}));
  // Ties in replication go to the lower index: equal loads, 2 extra copies go to experts 0 and 1.
  CHECK(ExpertPlacement::balanced({1.0, 1.0, 1.0, 1.0}, 2, 2).replicas() == std::vector<std::int64_t>{2, 2, 1, 1});
  // The routing splits a replicated expert's tokens over its copies: rank 1 of the hand placement over T tokens.
  const auto routing = ExpertRouting::from_loads(loads, 1, "loads");  // q_i = load_i / 15.75 (none capped)
  const double T = 10.0;
  const auto l = routing.load(T, p.rank(1));
  const double q0 = 6.0 / 15.75, q1 = 4.0 / 15.75, q4 = 0.5 / 15.75;
  CHECK(l.rows == Approx(T * (q0 / 2 + q1 / 2 + q1 / 2 + q4)).epsilon(1e-14));
  CHECK(l.busiest_rows == Approx(T * q0 / 2).epsilon(1e-14));
  CHECK(l.groups == Approx(1.0 - std::pow(1.0 - q0 / 2, T) + 2.0 * (1.0 - std::pow(1.0 - q1 / 2, T)) +
                           1.0 - std::pow(1.0 - q4, T))
                        .epsilon(1e-14));
  // Bad inputs throw.
  CHECK_THROWS_AS(ExpertPlacement::balanced(loads, 4, 1), InputError);  // 7 physical experts on 4 ranks
  CHECK_THROWS_AS(ExpertPlacement::balanced(loads, 2, -2), InputError);
  CHECK_THROWS_AS(ExpertPlacement::balanced({1.0, -1.0}, 2, 0), InputError);
  CHECK_THROWS_AS(ExpertPlacement::contiguous(6, 4), InputError);
}

TEST_CASE("EPLB on DeepSeek-V3 EP 8 under Zipf skew: lower busiest-rank rows and MoE layer time", "[moe][eplb]") {
  const ModelArch m = model("deepseek-v3.json");
  auto pred = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  auto comm = std::make_shared<FreeComm>();
  const auto zipf = ExpertRouting::zipf(256, 8, 0.5);
  ParallelConfig plain{8, 1, 0.0, 8, 1};
  ParallelConfig eplb = plain;
  eplb.enable_eplb = true;
  eplb.num_redundant_experts = 32;
  const StepModel s_plain(m, test::simple_gpu(), plain, pred, {}, comm, zipf);
  const StepModel s_eplb(m, test::simple_gpu(), eplb, pred, {}, comm, zipf);
  const ExpertPlacement& pe = s_eplb.expert_placement();
  REQUIRE(pe.num_ranks() == 8);
  CHECK(pe.experts_per_rank() == 36);  // (256 + 32) / 8
  for (std::int64_t r = 0; r < 8; ++r) CHECK(pe.rank(r).size() == 36);
  CHECK(std::accumulate(pe.replicas().begin(), pe.replicas().end(), std::int64_t{0}) == 288);
  CHECK(pe.replicas().front() == *std::max_element(pe.replicas().begin(), pe.replicas().end()));
  CHECK(pe.replicas().front() > 1);
  CHECK(s_plain.expert_placement().rank(0).size() == 32);
  CHECK(s_plain.expert_placement().rank(0).front() == PhysicalExpert{0, 1});

  const double T = 8192.0;
  BatchShape prefill;
  prefill.prefills.push_back({8192, 0});
  prefill.num_sampled = 1;
  // Without EPLB rank 0 holds experts 0..31 and is the busiest: rows T x sum_{i<32} q_i.
  double rank0_rows = 0.0;
  for (std::size_t i = 0; i < 32; ++i) rank0_rows += T * zipf.select()[i];
  // With EPLB: every rank's rows from the formula; the busiest rank is the one with the longest grouped GEMMs.
  const double h = 7168.0, I = 2048.0;
  auto gate_up_time = [&](const Expected& x) {
    const GroupedGemmShape g{"moe_gate_up", x.groups, x.rows, std::max(x.busiest, x.rows / x.groups),
                             static_cast<std::int64_t>(2 * I), static_cast<std::int64_t>(h), 2.0, 1.0, false};
    return pred->grouped_gemm(g).time.v;
  };
  auto busiest_of = [&](const ExpertPlacement& p) {
    Expected best = expected_load(zipf, p.rank(0), T);
    for (std::int64_t r = 1; r < p.num_ranks(); ++r) {
      const Expected x = expected_load(zipf, p.rank(r), T);
      if (gate_up_time(x) > gate_up_time(best)) best = x;
    }
    return best;
  };
  const Expected b_plain = busiest_of(s_plain.expert_placement());
  const Expected b_eplb = busiest_of(pe);
  CHECK(b_plain.rows == Approx(rank0_rows).epsilon(1e-12));
  CHECK(b_eplb.rows < 0.8 * b_plain.rows);
  const double mean_rows = T * 8.0 / 8.0;  // T x k rows over 8 ranks
  CHECK(b_eplb.rows < 1.05 * mean_rows);   // balanced to within 5 % of the mean
  // The layer's expert GEMMs are the busiest rank's: 58 MoE layers of gate_up, FLOPs 2 x groups x rows_per_group x
  // 2I x h, time from the same roofline.
  for (const auto& [s, b] : {std::pair{&s_plain, b_plain}, std::pair{&s_eplb, b_eplb}}) {
    const StepCost cost = s->breakdown(prefill);
    const StepOp& gu = op_named(cost, "moe_gate_up");
    const double rpg = std::max(b.busiest, b.rows / b.groups);
    CHECK(gu.flops.v == Approx(58.0 * 2.0 * b.groups * rpg * 2.0 * I * h).epsilon(1e-12));
    CHECK(gu.time.v == Approx(58.0 * gate_up_time(b)).epsilon(1e-12));
  }
  const double t_plain = s_plain.step_time(prefill).v;
  const double t_eplb = s_eplb.step_time(prefill).v;
  CHECK(t_eplb < t_plain);
  const double moe_plain = op_named(s_plain.breakdown(prefill), "moe_gate_up").time.v +
                           op_named(s_plain.breakdown(prefill), "moe_down").time.v;
  const double moe_eplb = op_named(s_eplb.breakdown(prefill), "moe_gate_up").time.v +
                          op_named(s_eplb.breakdown(prefill), "moe_down").time.v;
  CHECK(moe_eplb < 0.8 * moe_plain);
  // Under uniform routing EPLB without redundant experts changes nothing: every rank gets E / ep equal experts.
  ParallelConfig eplb0 = plain;
  eplb0.enable_eplb = true;
  const StepModel u_plain(m, test::simple_gpu(), plain, pred, {}, comm);
  const StepModel u_eplb0(m, test::simple_gpu(), eplb0, pred, {}, comm);
  CHECK(u_eplb0.step_time(prefill).v == Approx(u_plain.step_time(prefill).v).epsilon(1e-12));
}

TEST_CASE("EPLB weights per GPU: R / ep more experts, the KV cache shrinks by as much", "[moe][eplb]") {
  const ModelArch m = model("deepseek-v3.json");
  auto pred = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  auto comm = std::make_shared<FreeComm>();
  ParallelConfig plain{8, 1, 0.0, 8, 1};
  ParallelConfig eplb = plain;
  eplb.enable_eplb = true;
  eplb.num_redundant_experts = 32;
  const StepModel s_plain(m, test::simple_gpu(), plain, pred, {}, comm);
  const StepModel s_eplb(m, test::simple_gpu(), eplb, pred, {}, comm);
  // 32 / 8 = 4 more experts per GPU in each of the 58 MoE layers: gate, up, down of 7168 x 2048, fp8 (1 byte).
  const double expert = 3.0 * 7168.0 * 2048.0;
  CHECK(s_eplb.weight_bytes_per_gpu().v - s_plain.weight_bytes_per_gpu().v == 58.0 * 4.0 * expert);
}

TEST_CASE("EPLB scenario keys: one-line errors naming the key, exit 2", "[moe][eplb]") {
  const auto dir = test::temp_dir("eplb-keys");
  const std::string ds = test::scenario_path("deepseek-v3-ep16-2x-dgx-h100.toml");
  const std::string qwen = test::scenario_path("qwen3-moe-8x-h100.toml");
  struct Bad {
    std::string scenario, sets, key, says;
  };
  const std::vector<Bad> bad = {
      {ds, "--set parallel.num_redundant_experts=32", "parallel.num_redundant_experts", "enable_eplb = true only"},
      {ds, "--set parallel.enable_eplb=true --set parallel.num_redundant_experts=7", "parallel.num_redundant_experts",
       "256 experts of deepseek-v3 + 7 redundant = 263 physical experts do not divide by expert_parallel_size 16"},
      {ds, "--set parallel.enable_eplb=true --set parallel.num_redundant_experts=-1", "parallel.num_redundant_experts",
       ">= 0"},
      {ds, "--set parallel.enable_eplb=1", "parallel.enable_eplb", ""},
      {qwen, "--set parallel.enable_eplb=true", "parallel.enable_eplb", "expert_parallel_size > 1"},
      {ds, "--set parallel.num_redundant_expert=32", "num_redundant_expert", "unknown key"},
  };
  for (const Bad& b : bad) {
    const auto r = test::run_cli("run " + b.scenario + " " + b.sets + " --out " + (dir / "o").string());
    INFO(b.sets << "\n" << r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find(b.key) != std::string::npos);
    CHECK(r.output.find(b.says) != std::string::npos);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    CHECK_FALSE(std::filesystem::exists(dir / "o"));
  }
  // The misspelt key's message lists the real ones as valid.
  const auto r = test::run_cli("run " + ds + " --set parallel.num_redundant_expert=32 --out " + (dir / "o").string());
  CHECK(r.output.find("enable_eplb") != std::string::npos);
  CHECK(r.output.find("num_redundant_experts") != std::string::npos);
  // A good one runs.
  const auto ok = test::run_cli("step " + ds + " --set parallel.enable_eplb=true --set "
                                "parallel.num_redundant_experts=16 --set 'model.expert_routing=\"zipf\"' "
                                "--set engine.max_model_len=32768 --decode 16x2000");
  INFO(ok.output);
  CHECK(ok.code == 0);
}

TEST_CASE("EPLB scenario: under Zipf skew lower TPOT and P99 TTFT, and a KV cache smaller by the extra experts' weights",
          "[moe][eplb]") {
  const auto dir = test::temp_dir("eplb-run");
  const std::string sc = test::scenario_path("deepseek-v3-ep16-eplb-zipf.toml");
  const std::string few = " --set workload.num_requests=1000";
  const auto on = test::run_cli("run " + sc + few + " --out " + (dir / "on").string());
  const auto off = test::run_cli("run " + sc + few + " --set parallel.enable_eplb=false"
                                 " --set parallel.num_redundant_experts=0 --out " + (dir / "off").string());
  INFO(on.output << off.output);
  REQUIRE(on.code == 0);
  REQUIRE(off.code == 0);
  const auto j_on = nlohmann::json::parse(test::read_file(dir / "on" / "summary.json"));
  const auto j_off = nlohmann::json::parse(test::read_file(dir / "off" / "summary.json"));
  // vLLM's default all2all backend moves every token to every rank: the skew reaches the expert GEMMs only.
  CHECK(j_on["mean_tpot_ms"].get<double>() < 0.9 * j_off["mean_tpot_ms"].get<double>());
  CHECK(j_on["p99_ttft_ms"].get<double>() < 0.8 * j_off["p99_ttft_ms"].get<double>());
  // 16 GPUs, each (256 + 16) / 16 = 17 experts instead of 16: 58 layers x 3 x 7168 x 2048 fp8 bytes more, and
  // as many bytes less of KV at 576 x 61 x 2 B per token (MLA's latent, bf16): the tokens per GPU drop by that,
  // up to one 16-token block of rounding.
  const double dropped = double(j_off["servesim"]["kv_capacity_tokens_per_replica"].get<std::int64_t>() -
                                j_on["servesim"]["kv_capacity_tokens_per_replica"].get<std::int64_t>()) /
                         16.0;
  const double expected = 58.0 * 3.0 * 7168.0 * 2048.0 / (576.0 * 61.0 * 2.0);
  CHECK(std::abs(dropped - expected) < 16.0);
}

TEST_CASE("EPLB hierarchical policy: groups onto nodes, replicas within a node, then onto the node's ranks",
          "[moe][eplb]") {
  // 8 experts in 4 groups of 2 over 2 nodes of 2 ranks, 4 redundant: group loads 15, 2, 8, 3 go to the nodes as
  // {g0, g1} and {g2, g3}; each node replicates 2 of its experts (node 0: e0 at 8, then e1 at 7; node 1: e4, then
  // e5) and packs its 6 copies onto its ranks by weight (ties to the lower rank).
  const std::vector<double> loads{8, 7, 1, 1, 4, 4, 2, 1};
  const ExpertPlacement p = ExpertPlacement::balanced(loads, 4, 4, 4, 2);
  CHECK(p.experts_per_rank() == 3);
  CHECK(p.replicas() == std::vector<std::int64_t>{2, 2, 1, 1, 2, 2, 1, 1});
  CHECK(p.rank(0) == rank_of({{0, 2}, {1, 2}, {2, 1}}));
  CHECK(p.rank(1) == rank_of({{0, 2}, {1, 2}, {3, 1}}));
  CHECK(p.rank(2) == rank_of({{4, 2}, {5, 2}, {6, 1}}));
  CHECK(p.rank(3) == rank_of({{4, 2}, {5, 2}, {7, 1}}));
  // The global policy replicates over all experts at once: e0 (8 -> 4), e1 (7 -> 3.5), e0 again (4, ahead of e4's
  // 4 on index -> 2.67), e4 (4 -> 2); node 0's experts get three of the four copies.
  const ExpertPlacement g = ExpertPlacement::balanced(loads, 4, 4);
  CHECK(g.replicas() == std::vector<std::int64_t>{3, 2, 1, 1, 2, 1, 1, 1});
  // One group on one node is the global policy; groups that do not divide over the nodes fall back to it.
  std::vector<double> skewed(64);
  for (std::size_t i = 0; i < skewed.size(); ++i) skewed[i] = 1.0 / std::sqrt(double(i + 1));
  const ExpertPlacement global = ExpertPlacement::balanced(skewed, 8, 16);
  for (const auto& [groups, nodes] : std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}, {3, 2}, {8, 3}}) {
    const ExpertPlacement h = ExpertPlacement::balanced(skewed, 8, 16, groups, nodes);
    for (std::int64_t r = 0; r < 8; ++r) CHECK(h.rank(r) == global.rank(r));
  }
}

TEST_CASE("EPLB on DeepSeek-V3 over two nodes: vLLM's hierarchical policy keeps every expert's copies on one node",
          "[moe][eplb]") {
  const ModelArch m = model("deepseek-v3.json");
  CHECK(m.moe.num_expert_groups == 8);
  CHECK(model("qwen3-30b-a3b.json").moe.num_expert_groups == 1);
  const ScenarioLoader sc(test::scenario_path("deepseek-v3-ep16-eplb-zipf.toml"), {});
  const ExpertPlacement& p = sc.scenario().step_model->expert_placement();
  REQUIRE(p.num_ranks() == 16);
  // Ranks 0-7 on the first DGX H100, 8-15 on the second; each node holds 4 whole groups of 32 experts.
  std::vector<std::set<std::int64_t>> nodes_of(256);
  for (std::int64_t r = 0; r < 16; ++r) {
    for (const PhysicalExpert& e : p.rank(r)) nodes_of[static_cast<std::size_t>(e.expert)].insert(r / 8);
  }
  for (std::int64_t g = 0; g < 8; ++g) {
    const auto node = *nodes_of[static_cast<std::size_t>(g * 32)].begin();
    for (std::int64_t i = 0; i < 32; ++i) {
      INFO("expert " << g * 32 + i);
      REQUIRE(nodes_of[static_cast<std::size_t>(g * 32 + i)].size() == 1);
      CHECK(*nodes_of[static_cast<std::size_t>(g * 32 + i)].begin() == node);
    }
  }
  // 8 redundant experts per node.
  std::int64_t copies_node0 = 0;
  for (std::int64_t r = 0; r < 8; ++r) copies_node0 += static_cast<std::int64_t>(p.rank(r).size());
  CHECK(copies_node0 == 128 + 8);
  // n_group must divide the routed experts.
  const auto dir = test::temp_dir("n-group");
  nlohmann::json j = nlohmann::json::parse(test::read_file(test::scenario_path("models/deepseek-v3.json")));
  j["n_group"] = 3;
  const std::string bad = test::write_file(dir / "bad.json", j.dump());
  CHECK_THROWS_WITH(ModelArch::from_hf_config(bad), Catch::Contains("n_group (3) must be >= 1 and divide the 256"));
}
