// Data-parallel attention (vLLM's DP engine cores with expert parallelism). The step model: a sequence runs whole on
// one rank, so a step takes its busiest rank's time (StepModel::busiest_rank, what `servesim step` shows), and
// StepTimer's caches agree with the model. A run: one engine per rank with vLLM's per-rank limits, in lockstep
// (sim/engine/dp_group.h), requests placed by vLLM's DP load balancing, deterministic.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "helpers.h"
#include "step_helpers.h"
#include "models/arch/model_arch.h"
#include "models/common/error.h"
#include "models/cost/roofline.h"
#include "models/cost/step_model.h"
#include "models/cost/step_timer.h"
#include "sim/cli/run.h"
#include "sim/scenario/scenario.h"

using namespace servesim;

namespace {


// Qwen3-30B-A3B with expert parallelism over `data` data-parallel ranks of one GPU each.
std::shared_ptr<const StepModel> qwen3(std::int64_t data) {
  const ModelArch m = ModelArch::from_hf_config(test::scenario_path("models/qwen3-30b-a3b.json"));
  auto pred = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  const ParallelConfig par{1, 1, 0.0, data, data};
  return std::make_shared<const StepModel>(m, test::simple_gpu(), par, pred, EngineOverhead{},
                                           std::make_shared<test::FreeComm>());
}

double op_flops(const StepCost& c, const std::string& name) { return test::op_named(c, name).flops.v; }

}  // namespace

TEST_CASE("busiest data-parallel rank: chunks largest first, then decodes level the ranks", "[dp-attention]") {
  const auto m = qwen3(4);
  BatchShape b;
  b.prefills = {{3000, 0}, {8192, 100}, {500, 0}, {3000, 7}};
  for (int i = 0; i < 10; ++i) b.add_decode(1000);
  b.num_sampled = 12;
  // Chunks: 8192 -> rank 0, 3000 -> 1, 3000 -> 2, 500 -> 3; the 10 decodes all go to rank 3 (500 -> 510).
  const BatchShape r = m->busiest_rank(b);
  REQUIRE(r.prefills.size() == 1);
  CHECK(r.prefills[0].tokens == 8192);
  CHECK(r.prefills[0].context == 100);
  CHECK(r.num_decodes == 0);
  CHECK(r.total_tokens() == 8192);
  CHECK(r.num_sampled == 12);

  // Decodes alone: 10 over 4 ranks -> 3, 3, 2, 2; rank 0 is the busiest, with 3 / 10 of the context.
  BatchShape d;
  for (int i = 0; i < 10; ++i) d.add_decode(1000 + i);  // 10,045 context tokens
  const BatchShape rd = m->busiest_rank(d);
  CHECK(rd.prefills.empty());
  CHECK(rd.num_decodes == 3);
  CHECK(rd.decode_context_tokens == 3014);  // 10,045 x 3 / 10 = 3,013.5, rounded to nearest

  // Two 4,000-token chunks and 9 decodes: ranks 0 and 1 hold a chunk; the decodes fill ranks 2 and 3 to 5 and 4
  // tokens (ties to the lower rank); the busiest is rank 0 (4,000 tokens, ahead of rank 1 on index).
  BatchShape c;
  c.prefills = {{4000, 0}, {4000, 0}};
  for (int i = 0; i < 9; ++i) c.add_decode(50);
  const BatchShape rc = m->busiest_rank(c);
  CHECK(rc.total_tokens() == 4000);
  CHECK(rc.num_decodes == 0);
  // 6,000 decodes: an even level would be (8,000 + 6,000) / 4 = 3,500, under the chunks' 4,000, so ranks 2 and 3
  // take 3,000 each and the busiest is still a 4,000-token rank.
  BatchShape e;
  e.prefills = {{4000, 0}, {4000, 0}};
  for (int i = 0; i < 6000; ++i) e.add_decode(10);
  CHECK(m->busiest_rank(e).total_tokens() == 4000);
  // 9,000 decodes: the level rises past the chunks: 17,000 / 4 = 4,250 each.
  for (int i = 0; i < 3000; ++i) e.add_decode(10);
  const BatchShape re = m->busiest_rank(e);
  CHECK(re.total_tokens() == 4250);
  CHECK(re.num_decodes == 250);

  // One data-parallel rank: the batch itself.
  CHECK(qwen3(1)->busiest_rank(b).total_tokens() == b.total_tokens());
}

TEST_CASE("a prompt's prefill runs whole on one data-parallel rank", "[dp-attention]") {
  const auto m = qwen3(8);
  BatchShape one;
  one.prefills = {{8192, 0}};
  one.num_sampled = 1;
  BatchShape spread;
  for (int i = 0; i < 8; ++i) spread.prefills.push_back({1024, 0});
  spread.num_sampled = 8;
  const StepCost a = m->breakdown(one);
  const StepCost s = m->breakdown(spread);
  // The same 8,192 tokens: on one rank the qkv GEMM has 8,192 rows, spread over 8 ranks 1,024.
  CHECK(op_flops(a, "qkv") == Approx(8.0 * op_flops(s, "qkv")).epsilon(1e-12));
  CHECK(a.gpu.v > 4.0 * s.gpu.v);
  // The MoE layers see every rank's tokens either way.
  CHECK(op_flops(a, "moe_router") == Approx(8.0 * op_flops(s, "moe_router")).epsilon(1e-12));

  // StepTimer caches the token part by (rank tokens, step tokens) and gives the model's bits.
  StepTimer timer(m);
  for (const BatchShape* b : {&one, &spread, &one}) {
    BoundTimes bounds;
    CHECK(timer.gpu_time(*b, bounds).v == m->breakdown(*b).gpu.v);
  }
}

namespace {

// Every step and queue entry of a run, by (replica, engine).
struct StepLog final : RunSink {
  std::vector<StepEvent> steps;
  std::vector<std::int32_t> queued_engine;  // in queue order
  void step_started(const StepEvent& e) override { steps.push_back(e); }
  void queued(Ns, std::uint64_t, std::int32_t, std::int32_t engine, std::int64_t) override {
    queued_engine.push_back(engine);
  }
};

// Qwen3-30B-A3B on one DGX H100 with EP 8 and 8 data-parallel ranks, with `extra` --set overrides.
ScenarioOptions dp8(std::vector<std::pair<std::string, std::string>> extra = {}) {
  ScenarioOptions o;
  o.sets = {{"parallel.tensor_parallel_size", "1"},
            {"parallel.data_parallel_size", "8"},
            {"parallel.expert_parallel_size", "8"}};
  o.sets.insert(o.sets.end(), extra.begin(), extra.end());
  return o;
}

}  // namespace

TEST_CASE("data-parallel ranks are engines with vLLM's per-rank limits, stepping in lockstep", "[dp-attention]") {
  const ScenarioLoader dp(test::scenario_path("qwen3-moe-8x-h100.toml"),
                          dp8({{"workload.num_requests", "300"}, {"engine.max_num_seqs", "4"}}));
  // vLLM's engine arguments are per DP rank: the limits stay as given; the KV pool is the replica's, 8 ranks'.
  CHECK(dp.scenario().replica.limits.max_num_seqs == 4);
  CHECK(dp.scenario().replica.limits.max_num_batched_tokens == 8192);
  CHECK(dp.scenario().replica.limits.long_prefill_token_threshold == 0);
  StepLog log;
  RunStreams streams;
  streams.sinks.push_back(&log);
  const RunOutput out = run_scenario(dp, streams);
  REQUIRE(out.recorder.records().size() == 300);
  // Steps by their start: every rank stepping then ends with the others; at most 8 ranks, each at most once.
  std::map<std::int64_t, std::vector<const StepEvent*>> by_start;
  std::set<std::int32_t> engines;
  std::int64_t most_running = 0;
  for (const StepEvent& e : log.steps) {
    by_start[e.start.v].push_back(&e);
    engines.insert(e.engine);
    CHECK(e.running <= 4);  // one rank's max_num_seqs
    // Each rank's step splits its whole duration by kind (a faster rank's wait is communication).
    CHECK(e.compute_s + e.memory_s + e.communication_s + e.overhead_s == Approx(ns_to_s(e.end - e.start)).epsilon(1e-6));
  }
  CHECK(engines.size() == 8);
  Ns last_end{0};
  for (const auto& [start, steps] : by_start) {
    CHECK(steps.size() <= 8);
    std::set<std::int32_t> ranks;
    std::int64_t running = 0;
    for (const StepEvent* e : steps) {
      CHECK(e->end == steps.front()->end);
      ranks.insert(e->engine);
      running += e->running;
    }
    CHECK(ranks.size() == steps.size());
    most_running = std::max(most_running, running);
    // The group's steps follow one another.
    CHECK(Ns{start} >= last_end);
    last_end = steps.front()->end;
  }
  CHECK(most_running > 4);  // the replica runs more than one rank's batch
}

TEST_CASE("data-parallel ranks: requests go to the lowest 4 x waiting + running, as vLLM's DP load balancer", "[dp-attention]") {
  // Near-constant arrivals 100 ms apart, each running for seconds: the first eight take the idle ranks in order;
  // then every rank runs one (score 1) and the next goes to rank 0; once it runs (score 2), rank 1, and so on.
  const ScenarioLoader dp(test::scenario_path("qwen3-moe-8x-h100.toml"),
                          dp8({{"workload.num_requests", "16"},
                               {"workload.arrival", "{impl = \"gamma\", rate = 10.0, cv = 0.001}"},
                               {"workload.prompt_tokens", "{impl = \"fixed\", value = 64}"},
                               {"workload.output_tokens", "{impl = \"fixed\", value = 1000}"}}));
  StepLog log;
  RunStreams streams;
  streams.sinks.push_back(&log);
  const RunOutput out = run_scenario(dp, streams);
  REQUIRE(log.queued_engine.size() == 16);
  for (std::size_t i = 0; i < 16; ++i) {
    INFO("request " << i);
    CHECK(log.queued_engine[i] == static_cast<std::int32_t>(i % 8));
  }
  // requests.csv's dp_rank: the rank each request ran on.
  REQUIRE(out.recorder.records().size() == 16);
  for (std::size_t i = 0; i < 16; ++i) {
    const RequestRecord& r = out.recorder.records()[i];
    INFO("request " << r.id);
    CHECK(r.dp_rank == static_cast<std::int32_t>(r.id % 8));
  }
}

TEST_CASE("data-parallel runs: each request's time is its rank's steps, and the same seed gives the same run",
          "[dp-attention]") {
  const auto opts = dp8({{"workload.num_requests", "200"}});
  const ScenarioLoader a(test::scenario_path("qwen3-moe-8x-h100.toml"), opts);
  const ScenarioLoader b(test::scenario_path("qwen3-moe-8x-h100.toml"), opts);
  const RunOutput ra = run_scenario(a);
  const RunOutput rb = run_scenario(b);
  REQUIRE(ra.recorder.records().size() == 200);
  REQUIRE(rb.recorder.records().size() == 200);
  for (std::size_t i = 0; i < ra.recorder.records().size(); ++i) {
    const RequestRecord& x = ra.recorder.records()[i];
    const RequestRecord& y = rb.recorder.records()[i];
    CHECK(x.id == y.id);
    CHECK(x.first_token == y.first_token);
    CHECK(x.finish == y.finish);
    // Its breakdown adds up: front end, queue, prefill (and stalls) to the first token.
    CHECK(x.front_end() + x.queue() + x.prefill + x.prefill_stall() + x.prefill_preempted == x.first_token - x.arrival);
  }
}

TEST_CASE("data-parallel attention with pipeline parallelism is refused at the key", "[dp-attention]") {
  const ModelArch m = ModelArch::from_hf_config(test::scenario_path("models/qwen3-30b-a3b.json"));
  auto pred = std::make_shared<const RooflinePredictor>(test::simple_gpu());
  try {
    (void)StepModel(m, test::simple_gpu(), ParallelConfig{1, 2, 0.0, 4, 4}, pred, EngineOverhead{},
                    std::make_shared<test::FreeComm>());
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(e.place().key == "parallel.pipeline_parallel_size");
    CHECK(std::string(e.what()).find("not modelled") != std::string::npos);
  }
}
