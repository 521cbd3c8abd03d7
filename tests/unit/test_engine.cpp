// Scheduler, KV cache and replica behaviour on small hand-checked cases.
#include <catch2/catch.hpp>

#include "sim/engine/kv_cache.h"
#include "sim/engine/scheduler.h"

using namespace servesim;

namespace {

Sequence seq(std::uint64_t id, std::int64_t prompt, std::int64_t output) {
  Sequence s;
  s.req = Request{id, Ns{0}, prompt, output};
  return s;
}

std::unique_ptr<Scheduler> vllm(const SchedulerLimits& l) {
  const Config empty = Config::from_string("", "t");
  return scheduler_registry().create("vllm", "engine.scheduler.impl", empty, l);
}

}  // namespace

TEST_CASE("KV blocks: ceil(tokens / block_size), all or nothing", "[kv]") {
  KvCacheManager kv(11, 16);  // 10 usable blocks + vLLM's null block
  CHECK(kv.num_blocks() == 10);
  Sequence s = seq(0, 100, 10);
  CHECK(kv.allocate(s, 17));
  CHECK(s.blocks == 2);
  CHECK(kv.free_blocks() == 8);
  CHECK(kv.allocate(s, 32));
  CHECK(s.blocks == 2);
  CHECK_FALSE(kv.allocate(s, 16 * 11));
  CHECK(s.blocks == 2);
  kv.release(s);
  CHECK(kv.free_blocks() == 10);
}

TEST_CASE("chunked prefill splits a long prompt across steps within the token budget", "[scheduler]") {
  SchedulerLimits lim;
  lim.max_num_batched_tokens = 512;
  lim.max_num_seqs = 8;
  auto sched = vllm(lim);
  KvCacheManager kv(1000, 16);
  Sequence a = seq(0, 1200, 4);
  std::vector<Sequence*> running;
  std::deque<Sequence*> waiting{&a};
  EngineQueues q{running, waiting, kv};
  StepPlan plan;
  sched->schedule(q, plan);
  REQUIRE(plan.scheduled.size() == 1);
  CHECK(a.scheduled == 512);
  a.computed += 512;
  sched->schedule(q, plan);
  CHECK(a.scheduled == 512);
  a.computed += 512;
  sched->schedule(q, plan);
  CHECK(a.scheduled == 176);
}

TEST_CASE("running decodes come first, then waiting prompts FCFS within the budget", "[scheduler]") {
  SchedulerLimits lim;
  lim.max_num_batched_tokens = 100;
  lim.max_num_seqs = 3;
  auto sched = vllm(lim);
  KvCacheManager kv(1000, 16);
  Sequence d = seq(0, 10, 5);
  d.computed = 10;
  d.generated = 1;  // decoding: one new token
  REQUIRE(kv.allocate(d, 11));
  Sequence w1 = seq(1, 60, 5), w2 = seq(2, 60, 5), w3 = seq(3, 10, 5);
  std::vector<Sequence*> running{&d};
  std::deque<Sequence*> waiting{&w1, &w2, &w3};
  EngineQueues q{running, waiting, kv};
  StepPlan plan;
  sched->schedule(q, plan);
  REQUIRE(plan.scheduled.size() == 3);
  CHECK(d.scheduled == 1);
  CHECK(w1.scheduled == 60);
  CHECK(w2.scheduled == 39);  // the rest of the budget: chunked
  CHECK(running.size() == 3);  // max_num_seqs reached: w3 waits
  CHECK(waiting.size() == 1);
}

TEST_CASE("without chunked prefill a prompt larger than the remaining budget waits", "[scheduler]") {
  SchedulerLimits lim;
  lim.max_num_batched_tokens = 100;
  lim.chunked_prefill = false;
  auto sched = vllm(lim);
  KvCacheManager kv(1000, 16);
  Sequence w1 = seq(1, 60, 5), w2 = seq(2, 60, 5);
  std::vector<Sequence*> running;
  std::deque<Sequence*> waiting{&w1, &w2};
  EngineQueues q{running, waiting, kv};
  StepPlan plan;
  sched->schedule(q, plan);
  CHECK(plan.scheduled.size() == 1);
  CHECK(w1.scheduled == 60);
}

TEST_CASE("a full KV cache preempts the most recently admitted running sequence", "[scheduler]") {
  SchedulerLimits lim;
  auto sched = vllm(lim);
  KvCacheManager kv(5, 16);  // 4 usable blocks + vLLM's null block
  Sequence a = seq(0, 32, 100), b = seq(1, 32, 100);
  a.computed = 32;
  a.generated = 1;
  b.computed = 32;
  b.generated = 1;
  REQUIRE(kv.allocate(a, 32));
  REQUIRE(kv.allocate(b, 32));
  CHECK(kv.free_blocks() == 0);
  std::vector<Sequence*> running{&a, &b};
  std::deque<Sequence*> waiting;
  EngineQueues q{running, waiting, kv};
  StepPlan plan;
  sched->schedule(q, plan);  // a needs a 3rd block: b is preempted
  CHECK(plan.preempted.size() == 1);
  REQUIRE(plan.scheduled.size() == 1);
  CHECK(plan.scheduled[0] == &a);
  CHECK(b.preemptions == 1);
  CHECK(b.computed == 0);
  CHECK(b.blocks == 0);
  REQUIRE(waiting.size() == 1);
  CHECK(waiting.front() == &b);
  CHECK(a.blocks == 3);
}

TEST_CASE("unknown scheduler names list the valid ones", "[scheduler]") {
  const Config empty = Config::from_string("", "t");
  CHECK_THROWS_WITH(scheduler_registry().create("sarathi", "engine.scheduler.impl", empty, SchedulerLimits{}),
                    Catch::Contains("engine.scheduler.impl") && Catch::Contains("valid: vllm"));
}
