// Routing and admission (sim/cluster/router.h, sim/cluster/admission.h): each router's contract on hand-built
// loads, why least outstanding requests has a worse TTFT tail than round robin on a busy cluster, and the caps on
// queued requests with their books.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "helpers.h"
#include "sim/cli/run.h"
#include "sim/cluster/router.h"
#include "sim/core/simulator.h"
#include "sim/metrics/recorder.h"

using namespace servesim;
using namespace servesim::test;

namespace {

const std::string kOneRequest =
    "[workload]\nnum_requests = 1\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
    "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 10\n[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 10\n";

// `n` idle replicas of one engine each (Llama-3-8B on an H100), reporting to `rec`.
struct Replicas {
  Replicas(int n, Recorder& rec) {
    const auto dir = temp_dir("routing-replicas");
    loader.emplace(write_file(dir / "s.toml", base_scenario_text() + kOneRequest), ScenarioOptions{});
    const Scenario& sc = loader->scenario();
    for (std::int32_t i = 0; i < n; ++i) {
      std::vector<std::unique_ptr<Engine>> own;
      own.push_back(std::make_unique<Engine>(i, sc.step_model, loader->make_scheduler(0), sc.replica, rec));
      reps.push_back(std::make_unique<Replica>(i, std::move(own)));
    }
  }
  // Gives replica `i` `k` more outstanding requests (queued now; nothing runs until the simulator does).
  void load(std::size_t i, int k) {
    for (int j = 0; j < k; ++j) reps[i]->submit(sim, Request{next_id++, Ns{0}, 10, 10});
  }
  std::optional<ScenarioLoader> loader;
  std::vector<std::unique_ptr<Replica>> reps;
  Simulator sim;
  std::uint64_t next_id = 0;
};

std::unique_ptr<Router> router(const std::string& name) {
  return router_registry().create(name, "router.impl", Config::from_string("", "router.toml"));
}

RunOutput run_text(const std::string& tag, const std::string& text, bool pools = false) {
  const auto dir = temp_dir(tag);
  ScenarioOptions opts;
  opts.allow_pools = pools;
  const ScenarioLoader loader(write_file(dir / "s.toml", text), opts);
  return run_scenario(loader, RunStreams{});
}

std::string trace_workload(const std::filesystem::path& dir, const std::string& rows) {
  write_file(dir / "trace.csv", "arrival_s,prompt_tokens,output_tokens\n" + rows);
  return "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"" + (dir / "trace.csv").string() + "\"\n";
}

std::map<std::uint64_t, RequestRecord> records_by_id(const RunOutput& out) {
  std::map<std::uint64_t, RequestRecord> m;
  for (std::size_t i = 0; i < out.recorder.records().size(); ++i) {
    const RequestRecord r = out.recorder.records()[i];
    m[r.id] = r;
  }
  return m;
}

}  // namespace

TEST_CASE("routers are registered by the field's names, an unknown one lists them", "[routing]") {
  const std::string names = router_registry().names();
  for (const char* n : {"round_robin", "least_loaded", "least_outstanding_requests", "least_kv_usage", "power_of_two",
                        "prefix_cache_aware"}) {
    CHECK(router_registry().contains(n));
  }
  CHECK_THAT(input_error([] { (void)router("least_busy"); }),
             Catch::Equals("router.impl: unknown router 'least_busy' (valid: " + names + ")"));
}

TEST_CASE("round_robin ignores the loads, least_loaded takes the fewest outstanding with ties to the lowest index",
          "[routing]") {
  Recorder rec;
  const Request q{100, Ns{0}, 10, 10};
  {
    Replicas r(3, rec);
    r.load(0, 2);
    r.load(2, 1);  // outstanding: 2, 0, 1
    auto rr = router("round_robin");
    CHECK(rr->route(q, r.reps) == 0);
    CHECK(rr->route(q, r.reps) == 1);
    CHECK(rr->route(q, r.reps) == 2);
    CHECK(rr->route(q, r.reps) == 0);
  }
  for (const char* name : {"least_loaded", "least_outstanding_requests"}) {
    INFO(name);
    Replicas r(3, rec);
    r.load(0, 2);
    r.load(2, 1);  // outstanding: 2, 0, 1
    auto ll = router(name);
    CHECK(ll->route(q, r.reps) == 1);
    r.load(1, 1);  // 2, 1, 1: a tie between 1 and 2 goes to 1
    CHECK(ll->route(q, r.reps) == 1);
    r.load(1, 1);  // 2, 2, 1
    CHECK(ll->route(q, r.reps) == 2);
    r.load(2, 1);  // 2, 2, 2: all tied, the lowest index
    CHECK(ll->route(q, r.reps) == 0);
  }
}

TEST_CASE("power_of_two: two distinct replicas drawn uniformly, the less loaded of them, from its own stream",
          "[routing]") {
  Recorder rec;
  const Request q{100, Ns{0}, 10, 10};
  SECTION("one replica: that one, with nothing drawn; more before start(): a logic error") {
    Replicas one(1, rec);
    CHECK(router("power_of_two")->route(q, one.reps) == 0);
    Replicas two(2, rec);
    CHECK_THROWS_AS(router("power_of_two")->route(q, two.reps), std::logic_error);
  }
  SECTION("two replicas: both are always drawn, so the less loaded always wins; a tie goes either way") {
    Replicas r(2, rec);
    auto p2 = router("power_of_two");
    p2->start(1, "router");
    std::map<std::size_t, int> tied;
    for (int i = 0; i < 200; ++i) ++tied[p2->route(q, r.reps)];
    CHECK(tied[0] > 50);  // binomial(200, 1/2): 50 is 7 standard deviations below the mean
    CHECK(tied[1] > 50);
    r.load(0, 1);
    for (int i = 0; i < 200; ++i) CHECK(p2->route(q, r.reps) == 1);
  }
  SECTION("three replicas with loads 1, 3, 2: never the busiest; {0,1} and {0,2} give 0, {1,2} gives 2") {
    Replicas r(3, rec);
    r.load(0, 1);
    r.load(1, 3);
    r.load(2, 2);
    auto p2 = router("power_of_two");
    p2->start(7, "router");
    std::map<std::size_t, int> n;
    std::vector<std::size_t> first;
    for (int i = 0; i < 3000; ++i) {
      const std::size_t c = p2->route(q, r.reps);
      ++n[c];
      if (i < 50) first.push_back(c);
    }
    CHECK(n[1] == 0);
    // Replica 0 with probability 2/3: 2000 +- 26 (one standard deviation); 130 is five.
    CHECK(std::abs(n[0] - 2000) < 130);
    CHECK(n[0] + n[2] == 3000);
    // The same seed and purpose draw the same choices; another purpose (the decode router's) its own stream.
    const auto choices = [&](std::uint64_t seed, const std::string& purpose) {
      auto other = router("power_of_two");
      other->start(seed, purpose);
      std::vector<std::size_t> v;
      for (int i = 0; i < 50; ++i) v.push_back(other->route(q, r.reps));
      return v;
    };
    CHECK(choices(7, "router") == first);
    CHECK(choices(7, "decode_router") != first);
    CHECK(choices(8, "router") != first);
  }
}

TEST_CASE("power_of_two in a run: the same seed routes the same way, another seed another way", "[routing]") {
  const std::string text = base_scenario_text() + "[cluster]\nreplicas = 4\n[router]\nimpl = \"power_of_two\"\n" +
                           "[workload]\nnum_requests = 200\n[workload.arrival]\nimpl = \"poisson\"\nrate = 40.0\n"
                           "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 64\n"
                           "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 8\n";
  const auto replicas = [&](std::uint64_t seed) {
    const auto out = run_text("p2-run", text + "[sim]\nseed = " + std::to_string(seed) + "\n");
    std::vector<std::int32_t> v;
    for (const auto& [id, r] : records_by_id(out)) v.push_back(r.replica);
    return v;
  };
  const auto a = replicas(1);
  REQUIRE(a.size() == 200);
  CHECK(a == replicas(1));
  CHECK(a != replicas(2));
  CHECK(std::set<std::int32_t>(a.begin(), a.end()).size() == 4);
}

// Why least_loaded (least outstanding requests) has a higher TTFT tail than round robin on the quickstart at 2
// replicas x 40 req/s (P99 175 vs 156 ms; README "Routing"). Not a defect: it counts requests, not work. On a busy
// cluster most outstanding requests are decoding (one token a step each), so the counts differ by the decodes one
// replica happens to hold, and the router sends consecutive arrivals to the other one, where their prompts share
// prefill steps; round robin never sends two consecutive arrivals to one replica.
// Hand-built: at t = 0, A and C (long outputs) go to replica 0, B and D (two tokens) to replica 1, under both
// routers. At 0.3 s A and C still decode while B and D have finished: outstanding 2 vs 0. Two 2048-token prompts E
// and F arrive together: least_loaded must send both to replica 1 (0 < 2, then 1 < 2), where they share one
// prefill step; round robin sends E to replica 0 and F to replica 1, each prefilling alone.
TEST_CASE("least_loaded vs round_robin: counting decodes, least outstanding requests bunches prompts on one replica",
          "[routing]") {
  const auto dir = temp_dir("routing-why");
  const std::string text = base_scenario_text() + "[engine]\nmax_num_batched_tokens = 8192\n[cluster]\nreplicas = 2\n" +
                           trace_workload(dir, "0,16,200\n0,16,2\n0,16,200\n0,16,2\n0.3,2048,2\n0.3,2048,2\n");
  const auto ll = records_by_id(run_text("why-ll", text + "[router]\nimpl = \"least_loaded\"\n"));
  const auto rr = records_by_id(run_text("why-rr", text + "[router]\nimpl = \"round_robin\"\n"));
  REQUIRE(ll.size() == 6);
  REQUIRE(rr.size() == 6);
  for (const auto* run : {&ll, &rr}) {
    CHECK(run->at(0).replica == 0);  // A
    CHECK(run->at(1).replica == 1);  // B
    CHECK(run->at(2).replica == 0);  // C
    CHECK(run->at(3).replica == 1);  // D
    CHECK(run->at(1).finish < Ns{300'000'000});  // B and D are done when E and F arrive; A and C are not
    CHECK(run->at(3).finish < Ns{300'000'000});
    CHECK(run->at(0).finish > Ns{300'000'000});
    CHECK(run->at(2).finish > Ns{300'000'000});
  }
  // The forced choices.
  CHECK(ll.at(4).replica == 1);
  CHECK(ll.at(5).replica == 1);
  CHECK(rr.at(4).replica == 0);
  CHECK(rr.at(5).replica == 1);
  // Their consequence: under least_loaded E and F share one step of 4096 prompt tokens (the same first token); under
  // round robin each prefills 2048 tokens alone, so both first tokens come sooner than least_loaded's.
  const auto ttft = [](const RequestRecord& r) { return r.first_token - r.arrival; };
  CHECK(ll.at(4).first_token == ll.at(5).first_token);
  CHECK(ttft(rr.at(4)) < ttft(ll.at(4)));
  CHECK(ttft(rr.at(5)) < ttft(ll.at(5)));
  // A 2048-token prefill step takes well over half the 4096-token one, but less than all of it.
  CHECK(ttft(rr.at(5)).v * 2 > ttft(ll.at(5)).v);
}

// Two replicas, max_num_seqs = 1 (one request runs at a time), round robin; caps: 2 queued a replica, 4 in all.
//   t = 0:      R0 (4000-token prompt, 100 tokens out) -> replica 0, R1 (2 tokens out) -> replica 1.
//   t = 0.1 s:  R0 still decodes on replica 0; replica 1 is idle (R1 done). R2 -> 0, R3 -> 1, R4 -> 0, R5 -> 1
//               (queued 2 + 2); R6: 4 queued in all -> global_queue_full (not routed). After this instant
//               replica 1 starts R3 (queued 2 + 1); on replica 0, R2 and R4 wait behind R0.
//   t = 0.1 s + 1 us: R7: 3 queued in all, routed to replica 0 with 2 queued -> queue_full. R8 -> replica 1
//               (1 queued -> 2). R9: 4 in all -> global_queue_full.
// Horizon 0.2 s: R0 is still decoding, so some requests are in flight at the end.
TEST_CASE("admission: each cap refuses with its reason, and arrived = completed + rejected + in flight", "[routing]") {
  const auto dir = temp_dir("admission");
  std::string rows = "0,4000,100\n0,16,2\n";
  for (int i = 0; i < 5; ++i) rows += "0.1,16,2\n";
  for (int i = 0; i < 3; ++i) rows += "0.100001,16,2\n";
  const std::string text = base_scenario_text() + "[engine]\nmax_num_seqs = 1\n[cluster]\nreplicas = 2\n" +
                           "[cluster.admission]\nmax_queued_requests = 2\nmax_total_queued_requests = 4\n" +
                           trace_workload(dir, rows) + "[sim]\nhorizon = 0.2\n";
  const auto out = run_text("admission", text);
  const auto& s = out.summary["servesim"];
  CHECK(s["rejected"] == 3);
  CHECK(s["rejected_by_reason"]["queue_full"] == 1);
  CHECK(s["rejected_by_reason"]["global_queue_full"] == 2);
  CHECK(s["rejected_by_reason"]["exceeds_max_model_len"] == 0);
  CHECK(s["rejected_by_reason"]["exceeds_kv_cache"] == 0);
  CHECK(out.recorder.rejected_count(RejectReason::queue_full) == 1);
  CHECK(out.recorder.rejected_count(RejectReason::global_queue_full) == 2);
  const std::int64_t completed = out.summary["completed"].get<std::int64_t>();
  const std::int64_t unfinished = s["unfinished"].get<std::int64_t>();
  CHECK(unfinished > 0);  // R0 at least
  CHECK(completed > 0);   // R1 at least
  CHECK(completed + 3 + unfinished == 10);  // every arrival is accounted for
  // The refused ones are R6, R7 and R9: none of them finished.
  const auto recs = records_by_id(out);
  for (const std::uint64_t id : {6, 7, 9}) CHECK(recs.count(id) == 0);
  CHECK(out.recorder.first_rejection() ==
        "request 6 arrived when 4 requests were queued over the replicas "
        "(cluster.admission.max_total_queued_requests = 4)");
}

TEST_CASE("admission: no caps by default, and a request under the caps is never refused", "[routing]") {
  const auto dir = temp_dir("admission-none");
  std::string rows;
  for (int i = 0; i < 8; ++i) rows += "0,16,2\n";
  const std::string base = base_scenario_text() + "[engine]\nmax_num_seqs = 1\n" + trace_workload(dir, rows);
  const auto none = run_text("admission-none", base);
  CHECK(none.summary["servesim"]["rejected"] == 0);
  CHECK_FALSE(none.summary["servesim"].contains("rejected_by_reason"));
  // One replica, a burst of 8 at one instant: 5 are queued, the other 3 refused.
  const auto capped = run_text("admission-five", base + "[cluster.admission]\nmax_queued_requests = 5\n");
  CHECK(capped.summary["completed"] == 5);
  CHECK(capped.summary["servesim"]["rejected_by_reason"]["queue_full"] == 3);
}

TEST_CASE("admission with prefill and decode pools: the cap applies at the prefill replicas", "[routing][disagg]") {
  const auto dir = temp_dir("admission-disagg");
  std::string rows;
  for (int i = 0; i < 6; ++i) rows += "0,256,4\n";
  const std::string text = base_scenario_text() +
                           "[parallel]\ntopology = \"cluster-2x-dgx-h100\"\n"
                           "[cluster.admission]\nmax_queued_requests = 2\n"
                           "[[cluster.pools]]\nrole = \"prefill\"\nnum_replicas = 1\n"
                           "[cluster.pools.parallel]\ngpus = [0]\n"
                           "[[cluster.pools]]\nrole = \"decode\"\nnum_replicas = 1\n"
                           "[cluster.pools.parallel]\ngpus = [8]\n" +
                           trace_workload(dir, rows);
  const auto out = run_text("admission-disagg", text, true);
  // The burst of 6 meets the prefill replica's queue: 2 queued, 4 refused; the 2 admitted are decoded.
  CHECK(out.summary["completed"] == 2);
  CHECK(out.summary["servesim"]["rejected_by_reason"]["queue_full"] == 4);
  for (const auto& [id, r] : records_by_id(out)) {
    CHECK(r.prefill_replica == 0);
    CHECK(r.replica == 1);
  }
}

TEST_CASE("admission: a cap that is not a positive integer is an input error naming the key", "[routing]") {
  const auto dir = temp_dir("admission-bad");
  const auto load = [&](const std::string& admission) {
    return input_error([&] {
      const ScenarioLoader l(write_file(dir / "s.toml", base_scenario_text() + kOneRequest + "[cluster.admission]\n" +
                                                            admission + "\n"),
                             {});
    });
  };
  // The key is on line 17: 4 lines of model and hardware, 11 of workload, then [cluster.admission].
  CHECK_THAT(load("max_queued_requests = -1"),
             Catch::EndsWith("s.toml:17: cluster.admission.max_queued_requests: must be a positive integer (got -1)"));
  CHECK_THAT(load("max_queued_requests = 0"),
             Catch::EndsWith("s.toml:17: cluster.admission.max_queued_requests: must be a positive integer (got 0)"));
  CHECK_THAT(load("max_total_queued_requests = 2.5"),
             Catch::EndsWith("s.toml:17: cluster.admission.max_total_queued_requests: expected an integer"));
  CHECK_THAT(load("max_total_queued_requests = \"8\""),
             Catch::EndsWith("s.toml:17: cluster.admission.max_total_queued_requests: expected an integer"));
  CHECK_THAT(load("max_queue = 8"), Catch::Contains("cluster.admission.max_queue"));
}
