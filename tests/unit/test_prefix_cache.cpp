// Prefix caching and shared-prefix workloads (issue 12): block hashes, the cache's LRU order and hit cap, the
// scheduler after a hit, Mooncake traces, replay at a rate, the conversation generator and the prefix-cache-aware
// router.
#include <catch2/catch.hpp>

#include <set>
#include <sstream>

#include "helpers.h"
#include "sim/cli/run.h"
#include "sim/cluster/router.h"
#include "sim/core/random.h"
#include "sim/engine/kv_cache.h"
#include "sim/engine/scheduler.h"
#include "sim/metrics/summary.h"
#include "sim/scenario/scenario.h"
#include "sim/workload/content.h"
#include "sim/workload/mooncake_trace.h"
#include "sim/workload/workload.h"

using namespace servesim;

namespace {

std::shared_ptr<const Content> spans(std::initializer_list<ContentSpan> s) { return std::make_shared<Content>(s); }

Sequence seq(std::uint64_t id, std::int64_t prompt, std::int64_t output, std::shared_ptr<const Content> content) {
  Sequence s;
  s.req = Request{id, Ns{0}, prompt, output, std::move(content)};
  return s;
}

// The block hashes of `r`, first `n` blocks of `block_size`.
std::vector<std::uint64_t> hashes(const Request& r, std::int64_t block_size, int n) {
  BlockHashCursor c;
  std::vector<std::uint64_t> out;
  for (int i = 0; i < n; ++i) out.push_back(next_block_hash(r, block_size, c));
  return out;
}

std::unique_ptr<Scheduler> vllm(const SchedulerLimits& l) {
  const Config empty = Config::from_string("", "t");
  return scheduler_registry().create("vllm", "engine.scheduler.impl", empty, l);
}

WorkloadSource workload(const std::string& toml, std::uint64_t seed = 0) {
  const Config doc = Config::from_string(toml, "w.toml");
  return WorkloadSource(doc.table("workload"), PathResolver{"."}, seed);
}

}  // namespace

TEST_CASE("block hashes: splitmix64 folded over (tag, id, offset, length) of each piece, worked by hand", "[prefix]") {
  // splitmix64's first output from state 0 (Steele et al.'s reference value), the function every hash folds with.
  CHECK(splitmix64(0) == 0xe220a8397b1dcdafULL);
  const auto mix = [](std::uint64_t h, std::uint64_t w) { return splitmix64(h ^ w); };
  // Request 3: 20 tokens of content 7, then its own tokens; blocks of 16.
  const Request r{3, Ns{0}, 30, 10, spans({{7, 20}})};
  // Block 0: tokens 0-15, one piece (span, id 7, offset 0, 16 tokens), parent 0.
  const std::uint64_t h0 = mix(mix(mix(mix(0, 1), 7), 0), 16);
  // Block 1: tokens 16-31: (span, 7, 16, 4), then (own, request 3, 0, 12).
  const std::uint64_t h1 = mix(mix(mix(mix(mix(mix(mix(mix(h0, 1), 7), 16), 4), 2), 3), 0), 12);
  // Block 2: tokens 32-47: (own, 3, 12, 16).
  const std::uint64_t h2 = mix(mix(mix(mix(h1, 2), 3), 12), 16);
  CHECK(hashes(r, 16, 3) == std::vector<std::uint64_t>{h0, h1, h2});

  // The cache keys the blocks it caches by exactly these: a sequence computing 40 tokens caches its 2 full blocks.
  KvCacheManager kv(11, 16, 0, 0, true);
  Sequence s = seq(3, 30, 10, r.content);
  REQUIRE(kv.allocate(s, 30));
  CHECK(kv.cached(h0));
  CHECK_FALSE(kv.cached(h1));  // tokens 16-29 of 30: not full
  s.computed = 30;
  s.generated = 1;
  REQUIRE(kv.allocate(s, 32));  // the step that computes tokens 30 and 31 fills block 1
  CHECK(kv.cached(h1));
  CHECK_FALSE(kv.cached(h2));
  CHECK(kv.cached_blocks() == 2);
  CHECK(s.kv_entries.size() == 2);

  // Same content, same chain; the same content after another prefix, another chain.
  const Request same{4, Ns{0}, 16, 1, spans({{7, 20}})};
  CHECK(hashes(same, 16, 1)[0] == h0);
  CHECK(hashes(same, 16, 2)[1] != h1);  // its own tokens (request 4) differ from request 3's
  const Request after{5, Ns{0}, 32, 1, spans({{9, 16}, {7, 20}})};
  CHECK(hashes(after, 16, 2)[1] != h0);
}

TEST_CASE("prefix hits follow the hash chain: the longest cached run from the first block", "[prefix]") {
  KvCacheManager kv(101, 16, 0, 0, true);
  Sequence a = seq(0, 64, 1, spans({{1, 32}, {2, 32}}));
  REQUIRE(kv.allocate(a, 64));  // 4 blocks: 1/0, 1/16, 2/0, 2/16
  kv.release(a);
  // Content 1 then 3: the first two blocks are cached, the third is not (and the fourth, though 3 == 2 would
  // match by content, follows another parent).
  const Request b{1, Ns{0}, 100, 1, spans({{1, 32}, {3, 32}})};
  CHECK(kv.cached_prefix(b, 99) == 32);
  // At most max_tokens, whole blocks.
  CHECK(kv.cached_prefix(b, 31) == 16);
  CHECK(kv.cached_prefix(b, 15) == 0);
  // Unknown content: never a hit; caching off: never a hit.
  CHECK(kv.cached_prefix(Request{2, Ns{0}, 100, 1}, 99) == 0);
  KvCacheManager off(101, 16, 0, 0, false);
  Sequence c = seq(0, 64, 1, spans({{1, 32}, {2, 32}}));
  REQUIRE(off.allocate(c, 64));
  CHECK(off.cached_blocks() == 0);
  CHECK(c.kv_entries.empty());
}

TEST_CASE("LRU: freed blocks join the free queue's tail last block first - allocation evicts from its head",
          "[prefix]") {
  KvCacheManager kv(7, 16, 0, 0, true);  // 6 usable blocks
  Sequence a = seq(0, 32, 1, spans({{1, 32}}));
  Sequence b = seq(1, 32, 1, spans({{2, 32}}));
  const auto ha = hashes(a.req, 16, 2);
  const auto hb = hashes(b.req, 16, 2);
  REQUIRE(kv.allocate(a, 32));
  kv.release(a);  // queue: 4 never-used blocks, a1, a0
  REQUIRE(kv.allocate(b, 32));  // takes 2 never-used blocks
  kv.release(b);  // queue: 2 never-used, a1, a0, b1, b0
  CHECK(kv.free_blocks() == 6);
  CHECK(kv.free_cached_blocks() == 4);
  Sequence x = seq(2, 48, 1, nullptr);  // no content: caches nothing
  REQUIRE(kv.allocate(x, 48));  // 3 blocks: the 2 never used, then a1 (A's last block) is evicted
  CHECK_FALSE(kv.cached(ha[1]));
  CHECK(kv.cached(ha[0]));
  CHECK(kv.cached(hb[0]));
  Sequence y = seq(3, 16, 1, nullptr);
  REQUIRE(kv.allocate(y, 16));  // a0
  CHECK_FALSE(kv.cached(ha[0]));
  CHECK(kv.cached(hb[1]));
  // A hit on a free cached block takes it out of the queue: b0 is kept, so the next eviction is b1, then nothing
  // cached is left to evict but b0, which is in use.
  Sequence b2 = seq(4, 20, 1, spans({{2, 32}}));
  const std::int64_t hit = kv.lookup(b2);
  CHECK(hit == 16);  // (20 - 1) / 16 = 1 block
  REQUIRE(kv.allocate_cached(b2, hit, 20));  // b0 taken from the queue, 1 new block (b1 evicted)
  b2.computed = hit;
  CHECK(kv.cached(hb[0]));
  CHECK_FALSE(kv.cached(hb[1]));
  CHECK(kv.free_blocks() == 6 - 3 - 1 - 2);
  CHECK(kv.free_cached_blocks() == 0);
  kv.release(x);
  kv.release(y);
  kv.release(b2);
  CHECK(kv.free_blocks() == 6);
}

TEST_CASE("prefix hits: a shared block counts once, and every hit is capped at prompt - 1 tokens", "[prefix]") {
  KvCacheManager kv(101, 16, 0, 0, true);
  const auto content = spans({{1, 32}});
  Sequence a = seq(0, 32, 4, content);
  REQUIRE(kv.allocate(a, 32));  // blocks 0 and 1 cached, in use
  // The same 32-token prompt: vLLM computes its last token, so at most 31 tokens hit: one whole block.
  Sequence b = seq(1, 32, 4, content);
  CHECK(kv.lookup(b) == 16);
  REQUIRE(kv.allocate_cached(b, 16, 32));
  CHECK(kv.shared_refs() == 1);                 // block 0 held by a and b
  CHECK(kv.free_blocks() == 100 - 2 - 1);       // b's block 1 is new (its hash is a's: it stays uncached)
  CHECK(a.blocks + b.blocks - kv.shared_refs() == 100 - kv.free_blocks());
  // One token more and both blocks hit.
  Sequence c = seq(2, 33, 4, spans({{1, 33}}));
  CHECK(kv.lookup(c) == 32);
  kv.release(a);
  kv.release(b);
  CHECK(kv.shared_refs() == 0);
  CHECK(kv.free_blocks() == 100);
  // A preempted sequence looks up its prompt and generated tokens: its own decoded blocks come back as hits.
  Sequence d = seq(3, 20, 40, spans({{5, 20}}));
  REQUIRE(kv.allocate(d, 20));
  d.computed = 20;
  d.generated = 1;
  for (; d.generated < 30; ++d.generated) {
    REQUIRE(kv.allocate(d, d.computed + 1));
    d.computed += 1;
  }
  // 50 tokens known (20 prompt + 30 sampled), 49 computed: blocks 0-2 full and cached.
  kv.release(d);
  d.preempt_for_recompute();
  CHECK(kv.lookup(d) == 48);  // (20 + 30 - 1) / 16 = 3 blocks
}

TEST_CASE("the scheduler starts a hit sequence at its cached tokens and budgets only the rest", "[prefix]") {
  SchedulerLimits lim;
  lim.max_num_batched_tokens = 100;
  lim.max_num_seqs = 8;
  auto sched = vllm(lim);
  KvCacheManager kv(1001, 16, 0, 0, true);
  Sequence x = seq(0, 64, 1, spans({{1, 64}}));
  REQUIRE(kv.allocate(x, 64));
  kv.release(x);  // 4 cached blocks, free
  Sequence y = seq(1, 114, 5, spans({{1, 64}, {2, 50}}));
  Sequence z = seq(2, 60, 5, nullptr);
  std::vector<Sequence*> running;
  std::deque<Sequence*> waiting{&y, &z};
  EngineQueues q{running, waiting, kv};
  StepPlan plan;
  sched->schedule(q, plan);
  REQUIRE(plan.scheduled.size() == 2);
  CHECK(y.computed == 64);        // vLLM's num_computed_tokens starts at the hit
  CHECK(y.scheduled == 50);       // 114 - 64
  CHECK(y.cached_tokens == 64);   // requests.csv cached_tokens
  CHECK(z.scheduled == 50);       // the budget's rest: 100 - 50 (chunked)
  CHECK(z.cached_tokens == -1);   // no content: never looked up
  CHECK(y.blocks == 8);           // ceil(114 / 16): 4 hit + 4 new
  CHECK(kv.free_blocks() == 1000 - 8 - 4);
  BatchShape b;
  plan.shape(b);
  REQUIRE(b.prefills.size() == 2);
  CHECK(b.prefills[0].tokens == 50);
  CHECK(b.prefills[0].context == 64);  // attends to the cached 64 tokens
}

TEST_CASE("Mooncake traces: ms timestamps, one hash id per 512 tokens - bad lines name file:line", "[prefix]") {
  const auto dir = test::temp_dir("mooncake");
  const std::string good = test::write_file(
      dir / "good.jsonl",
      "{\"timestamp\": 0, \"input_length\": 1100, \"output_length\": 7, \"hash_ids\": [0, 1, 2]}\n"
      "\n"
      "{\"timestamp\": 1500, \"input_length\": 512, \"output_length\": 1, \"hash_ids\": [0], \"extra\": 1}\n");
  const auto rows = read_mooncake_trace(good);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].arrival_s == 0.0);
  CHECK(rows[0].prompt_tokens == 1100);
  CHECK(rows[0].output_tokens == 7);
  CHECK(*rows[0].content == Content{{0, 512}, {1, 512}, {2, 76}});
  CHECK(rows[1].arrival_s == 1.5);
  CHECK(*rows[1].content == Content{{0, 512}});

  const auto bad = [&](const std::string& line2) {
    const std::string p = test::write_file(
        dir / "bad.jsonl", "{\"timestamp\": 10, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [0]}\n" +
                               line2 + "\n");
    return test::input_error([&] { (void)read_mooncake_trace(p); });
  };
  const std::string where = (dir / "bad.jsonl").string() + ":2";
  for (const auto& [line, says] : std::vector<std::pair<std::string, std::string>>{
           {"{\"timestamp\": 10, \"input_length\": 10", "not valid JSON"},
           {"[1, 2]", "expected a JSON object"},
           {"{\"timestamp\": 10, \"input_length\": 10, \"output_length\": 1}", "missing \"hash_ids\""},
           {"{\"timestamp\": 5, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [0]}", "must not decrease"},
           {"{\"timestamp\": 10, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [0]}",
            "has 1 ids, but input_length 600 makes 2 blocks"},
           {"{\"timestamp\": 10, \"input_length\": 10, \"output_length\": 0, \"hash_ids\": [0]}", "must be >= 1"},
           {"{\"timestamp\": 10, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [-1]}", "non-negative"},
           {"{\"timestamp\": 10, \"input_length\": 1.5, \"output_length\": 1, \"hash_ids\": [0]}", "an integer"},
           {"{\"timestamp\": -1, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [0]}", ">= 0"}}) {
    const std::string msg = bad(line);
    INFO(line << " -> " << msg);
    CHECK(msg.rfind(where, 0) == 0);
    CHECK(msg.find(says) != std::string::npos);
  }

  // Another block size: one id per hash_block_size tokens.
  const std::string small = test::write_file(
      dir / "small.jsonl", "{\"timestamp\": 0, \"input_length\": 40, \"output_length\": 1, \"hash_ids\": [1, 2, 3]}\n");
  CHECK(*read_mooncake_trace(small, 16)[0].content == Content{{1, 16}, {2, 16}, {3, 8}});

  // servesim run: one line naming the file and line, exit 2, nothing written.
  const std::string scenario = test::write_file(
      dir / "s.toml", test::base_scenario_text() + "[workload]\n[workload.arrival]\nimpl = \"trace\"\n"
                                                   "format = \"mooncake\"\npath = \"bad.jsonl\"\n");
  (void)bad("{\"timestamp\": 10, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [0]}");
  const auto cli = test::run_cli("run " + scenario + " --out " + (dir / "out").string());
  CHECK(cli.code == 2);
  CHECK(test::count_lines(cli.output) == 1);
  CHECK(cli.output.find(where + ": \"hash_ids\" has 1 ids") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "out"));

  // The shipped trace: Mooncake's FAST'25 conversation trace, every line.
  const auto shipped = read_mooncake_trace(test::scenario_path("traces/mooncake_conversation_trace.jsonl"));
  CHECK(shipped.size() == 12031);
  CHECK(shipped.front().prompt_tokens == 6758);
  CHECK(shipped.front().content->size() == 14);
  CHECK(shipped.back().arrival_s == 3536.999);
}

TEST_CASE("trace replay at a rate: arrival times rescaled so that the mean gap is 1 / rate", "[prefix]") {
  const auto dir = test::temp_dir("rate");
  const std::string csv =
      test::write_file(dir / "t.csv", "arrival_s,prompt_tokens,output_tokens\n0,10,2\n1,20,2\n3,30,2\n");
  const std::string head = "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"" + csv + "\"\n";
  auto times = [](WorkloadSource w) {
    std::vector<double> t;
    while (const auto r = w.next()) t.push_back(ns_to_s(r->arrival));
    return t;
  };
  // 3 arrivals over 3 s at rate 2: 2 gaps of 0.5 s on average, time_scale 1/3.
  CHECK_THAT(times(workload("[workload]\n" + head + "rate = 2.0\n"))[2], Catch::WithinAbs(1.0, 1e-9));
  CHECK_THAT(times(workload("[workload]\n" + head + "rate = 2.0\n"))[1], Catch::WithinAbs(1.0 / 3.0, 1e-9));
  // Only the replayed arrivals count: the first 2 span 1 s, one gap of 0.5 s.
  CHECK_THAT(times(workload("[workload]\nnum_requests = 2\n" + head + "rate = 2.0\n"))[1], Catch::WithinAbs(0.5, 1e-9));
  const std::string both =
      test::input_error([&] { (void)workload("[workload]\n" + head + "rate = 2.0\ntime_scale = 2.0\n"); });
  CHECK(both.find("workload.arrival.rate") != std::string::npos);
  CHECK(both.find("time_scale") != std::string::npos);
  const std::string one =
      test::input_error([&] { (void)workload("[workload]\nnum_requests = 1\n" + head + "rate = 2.0\n"); });
  CHECK(one.find("at least two replayed arrivals") != std::string::npos);
  // A Mooncake trace keeps its content through the replay.
  const std::string mc = test::write_file(
      dir / "m.jsonl", "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 2, \"hash_ids\": [4, 5]}\n"
                       "{\"timestamp\": 2000, \"input_length\": 600, \"output_length\": 2, \"hash_ids\": [4, 6]}\n");
  auto w = workload("[workload]\n[workload.arrival]\nimpl = \"trace\"\nformat = \"mooncake\"\npath = \"" + mc +
                    "\"\nrate = 4.0\n");
  const auto r0 = w.next();
  const auto r1 = w.next();
  REQUIRE(r1);
  CHECK(r1->arrival == to_ns(Seconds{0.25}));
  CHECK(*r0->content == Content{{4, 512}, {5, 88}});
  CHECK(r1->prompt_tokens == 600);
}

TEST_CASE("conversation generator: shared system prompts, each turn's prompt the conversation so far", "[prefix]") {
  const std::string toml =
      "[workload]\nnum_requests = 300\n[workload.arrival]\nimpl = \"conversations\"\nrate = 5.0\n"
      "num_system_prompts = 3\nsystem_prompt_tokens = 100\nturns = 3.0\nthink_time = \"10s\"\n"
      "[workload.arrival.user_tokens]\nimpl = \"fixed\"\nvalue = 10\n"
      "[workload.arrival.output_tokens]\nimpl = \"uniform\"\nmin = 1\nmax = 20\n";
  auto w = workload(toml, 7);
  std::vector<Request> reqs;
  while (const auto r = w.next()) reqs.push_back(*r);
  REQUIRE(reqs.size() == 300);
  std::set<std::uint64_t> fresh;
  int follow_ups = 0;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    const Request& r = reqs[i];
    if (i > 0) CHECK(r.arrival >= reqs[i - 1].arrival);
    const Content& c = *r.content;
    REQUIRE(c.size() >= 3);
    REQUIRE(c.size() % 2 == 1);
    CHECK(c[0].id < 3);  // a system prompt
    CHECK(c[0].tokens == 100);
    // Prompt = everything but the answer; output = the answer.
    CHECK(r.prompt_tokens == content_tokens(c) - c.back().tokens);
    CHECK(r.output_tokens == c.back().tokens);
    CHECK(c[c.size() - 2].tokens == 10);
    // Its user message and answer are new content.
    CHECK(fresh.insert(c[c.size() - 2].id).second);
    CHECK(fresh.insert(c.back().id).second);
    if (c.size() > 3) {
      // A later turn: an earlier request was its previous turn, prompt and answer.
      ++follow_ups;
      const Content prev(c.begin(), c.end() - 2);
      bool found = false;
      for (std::size_t j = 0; j < i && !found; ++j) found = *reqs[j].content == prev;
      CHECK(found);
    }
  }
  CHECK(follow_ups > 100);  // about 2/3 of the requests at a mean of 3 turns
  // The same seed draws the same requests; another seed other ones.
  auto again = workload(toml, 7);
  CHECK(*again.next()->content == *reqs[0].content);
  // A steep Zipf law sends (nearly) every conversation to system prompt 0.
  auto steep = workload("[workload]\nnum_requests = 50\n[workload.arrival]\nimpl = \"conversations\"\nrate = 5.0\n"
                        "num_system_prompts = 3\nsystem_prompt_tokens = 100\nsystem_prompt_zipf = 40.0\n"
                        "[workload.arrival.user_tokens]\nimpl = \"fixed\"\nvalue = 10\n"
                        "[workload.arrival.output_tokens]\nimpl = \"fixed\"\nvalue = 5\n");
  while (const auto r = steep.next()) {
    CHECK(r->content->size() == 3);  // turns = 1 by default
    CHECK((*r->content)[0].id == 0);
  }
  // Lengths come from the generator alone.
  const std::string msg = test::input_error([&] {
    (void)workload(toml + "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 5\n");
  });
  CHECK(msg.find("workload.prompt_tokens") != std::string::npos);
}

namespace {

const std::string kOneRequest =
    "[workload]\nnum_requests = 1\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
    "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 10\n[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 10\n";

}  // namespace

TEST_CASE("prefix_cache_aware router: the longest cached prefix among replicas within the load cap", "[prefix]") {
  const auto dir = test::temp_dir("prefix-router");
  const ScenarioLoader loader(test::write_file(dir / "s.toml", test::base_scenario_text() + kOneRequest), {});
  const Scenario& sc = loader.scenario();
  Recorder rec;
  std::vector<std::unique_ptr<Replica>> reps;
  for (std::int32_t i = 0; i < 3; ++i) {
    std::vector<std::unique_ptr<Engine>> own;
    own.push_back(std::make_unique<Engine>(i, sc.step_model, loader.make_scheduler(0), sc.replica, rec));
    reps.push_back(std::make_unique<Replica>(i, std::move(own)));
  }
  Simulator sim;
  std::uint64_t id = 0;
  auto request = [&id](std::int64_t prompt, std::shared_ptr<const Content> c) {
    return Request{id++, Ns{0}, prompt, 2, std::move(c)};
  };
  // Replica 1 computes 64 tokens of content 1, replica 2 the first 32.
  reps[1]->submit(sim, request(74, spans({{1, 64}, {9, 10}})));
  reps[2]->submit(sim, request(42, spans({{1, 32}, {8, 10}})));
  sim.run();
  const Request r = request(114, spans({{1, 64}, {3, 50}}));
  CHECK(reps[0]->cached_prefix_tokens(r) == 0);
  CHECK(reps[1]->cached_prefix_tokens(r) == 64);
  CHECK(reps[2]->cached_prefix_tokens(r) == 32);
  auto route = [&](const std::string& table, const Request& q) {
    const Config c = Config::from_string(table, "router.toml");
    return router_registry().create("prefix_cache_aware", "router.impl", c)->route(q, reps);
  };
  CHECK(route("", r) == 1);  // the longest hit
  // Replica 1 gets 33 requests more than the least loaded: past the default cap of 32, it is left out.
  for (int k = 0; k < 33; ++k) reps[1]->submit(sim, request(10, nullptr));
  CHECK(reps[1]->outstanding() == 33);
  CHECK(route("", r) == 2);
  CHECK(route("balance_abs_threshold = 33", r) == 1);
  CHECK(route("balance_abs_threshold = 0", r) == 2);
  // No hit anywhere: the least loaded, then the lowest index.
  const Request plain = request(50, nullptr);
  CHECK(route("", plain) == 0);
  reps[0]->submit(sim, request(10, nullptr));
  CHECK(route("", plain) == 2);
  // Routing reads the cache without touching it: the same answer again.
  CHECK(route("", r) == 2);
  CHECK(reps[2]->cached_prefix_tokens(r) == 32);
  const std::string bad = test::input_error([&] { (void)route("balance_abs_threshold = -1", r); });
  CHECK(bad.find("balance_abs_threshold") != std::string::npos);
  const std::string unknown = test::input_error(
      [&] { (void)router_registry().create("prefix_aware", "router.impl", Config::from_string("", "r")); });
  CHECK(unknown.find("prefix_cache_aware") != std::string::npos);  // the valid names are listed
}

namespace {

// summary.json without the invocation ("run": its --set lines differ between the runs compared).
std::string summary_text(RunOutput& out) {
  out.summary["servesim"].erase("run");
  return out.summary.dump(2);
}

std::string requests_csv(const RunOutput& out) {
  std::ostringstream os;
  write_requests_csv(os, out.recorder);
  return os.str();
}

RunOutput run(const std::string& scenario, std::vector<std::pair<std::string, std::string>> sets) {
  ScenarioOptions o;
  o.sets = std::move(sets);
  const ScenarioLoader loader(scenario, o);
  return run_scenario(loader, false);
}

}  // namespace

TEST_CASE("prefix caching without content ids changes no output but the cached_tokens column", "[prefix]") {
  RunOutput on = run(test::scenario_path("quickstart.toml"), {{"workload.num_requests", "300"}});
  RunOutput off = run(test::scenario_path("quickstart.toml"),
                      {{"workload.num_requests", "300"}, {"engine.enable_prefix_caching", "false"}});
  CHECK(summary_text(on) == summary_text(off));
  CHECK_FALSE(on.summary["servesim"].contains("prefix_cache"));
  const std::string csv = requests_csv(on);
  CHECK(csv == requests_csv(off));
  const std::string header = csv.substr(0, csv.find('\n'));
  CHECK(header.find(",cached_tokens,") != std::string::npos);
  CHECK(format_summary(on.summary).find("Prefix cache") == std::string::npos);
}

TEST_CASE("prefix-aware routing beats round robin on hit rate and mean TTFT (scenarios/prefix)", "[prefix]") {
  const std::string path = test::scenario_path("prefix/system-prompts.toml");
  RunOutput rr = run(path, {{"workload.num_requests", "1500"}, {"router.impl", "\"round_robin\""}});
  RunOutput pa = run(path, {{"workload.num_requests", "1500"}, {"router.impl", "\"prefix_cache_aware\""}});
  const auto& a = rr.summary["servesim"]["prefix_cache"];
  const auto& b = pa.summary["servesim"]["prefix_cache"];
  INFO("round robin " << a.dump() << " ttft " << rr.summary["mean_ttft_ms"] << "; prefix-aware " << b.dump()
                      << " ttft " << pa.summary["mean_ttft_ms"]);
  CHECK(b["hit_rate"].get<double>() > a["hit_rate"].get<double>() + 0.1);
  CHECK(pa.summary["mean_ttft_ms"].get<double>() < rr.summary["mean_ttft_ms"].get<double>());
  // The summary's counters are the sums of requests.csv's columns.
  std::int64_t prompt = 0, cached = 0;
  for (const RequestRecord& x : pa.recorder.records()) {
    prompt += x.prompt_tokens;
    cached += x.cached_tokens;
  }
  CHECK(b["queries"].get<std::int64_t>() == prompt);
  CHECK(b["hits"].get<std::int64_t>() == cached);
  CHECK(format_summary(pa.summary).find("Prefix cache hit rate (tokens)") != std::string::npos);
  // Off, nothing hits, and the TTFT is longer still.
  RunOutput off = run(path, {{"workload.num_requests", "1500"}, {"engine.enable_prefix_caching", "false"}});
  CHECK_FALSE(off.summary["servesim"].contains("prefix_cache"));
  CHECK(off.summary["mean_ttft_ms"].get<double>() > pa.summary["mean_ttft_ms"].get<double>());
}

TEST_CASE("disaggregated: the prefill replica's cache hits, the decode replica receives its KV and looks nothing up",
          "[prefix]") {
  ScenarioOptions o;
  o.allow_pools = true;
  o.sets = {{"workload", "{num_requests=200, arrival={impl=\"conversations\", rate=2.0, num_system_prompts=4, "
                         "system_prompt_tokens=1500, turns=3.0, think_time=\"5s\", user_tokens={impl=\"fixed\", "
                         "value=100}, output_tokens={impl=\"fixed\", value=50}}}"}};
  // The run's end-of-run accounting (every engine's free + held blocks = its pool, shared blocks once) must balance.
  RunOutput out = run_scenario(ScenarioLoader(test::scenario_path("disagg/llama70b-1p1d-2x-dgx-h100.toml"), o), false);
  REQUIRE(out.recorder.records().size() == 200);
  std::int64_t hits = 0;
  for (const RequestRecord& r : out.recorder.records()) {
    CHECK(r.prefill_replica == 0);
    CHECK(r.replica == 1);
    CHECK(r.cached_tokens >= 0);  // looked up at its prefill replica, carried to the decode replica's record
    hits += r.cached_tokens;
  }
  CHECK(hits > 0);
  CHECK(out.summary["servesim"]["prefix_cache"]["hits"].get<std::int64_t>() == hits);
}
