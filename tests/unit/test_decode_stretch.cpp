// The fast decode path (sim/engine/decode_stretch.h) must give exactly what running every step through the
// scheduler gives: the same bytes in summary.json (less the invocation), requests.csv and the per-token times, on
// loads that exercise what a stretch must stop for or carry: arrivals joining, preemptions, prefix-cache hits and
// block filling, step jitter, disaggregated hand-offs and decode waits, a horizon (deferred inter-token gaps).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "helpers.h"

namespace {

struct Outputs {
  int code = -1;
  std::string output, summary, requests, tokens;
};

Outputs run(const std::string& scenario, const std::string& args, bool stretch) {
  const auto dir = servesim::test::temp_dir("stretch");
  const auto out = dir / "o";
  const auto r = servesim::test::run_cli("run " + servesim::test::scenario_path(scenario) + " --out " + out.string() +
                                         " --tokens-out " + (out / "tokens.jsonl").string() + " " + args +
                                         " --set sim.decode_stretch=" + (stretch ? "true" : "false"));
  Outputs o{r.code, r.output, "", "", ""};
  if (r.code != 0) return o;
  auto j = nlohmann::ordered_json::parse(servesim::test::read_file(out / "summary.json"));
  j["servesim"].erase("run");
  o.summary = j.dump(2);
  o.requests = servesim::test::read_file(out / "requests.csv");
  o.tokens = servesim::test::read_file(out / "tokens.jsonl");
  return o;
}

void check_same(const std::string& scenario, const std::string& args) {
  INFO(scenario << " " << args);
  const Outputs fast = run(scenario, args, true);
  const Outputs slow = run(scenario, args, false);
  INFO(fast.output << slow.output);
  REQUIRE(fast.code == 0);
  REQUIRE(slow.code == 0);
  CHECK(fast.summary == slow.summary);
  CHECK(fast.requests == slow.requests);
  CHECK(fast.tokens == slow.tokens);
  CHECK(!fast.tokens.empty());
}

}  // namespace

TEST_CASE("decode stretch: byte-identical to stepping through the scheduler", "[stretch]") {
  SECTION("Poisson arrivals joining running batches") {
    check_same("quickstart.toml", "--set workload.num_requests=400 --set workload.arrival.rate=20");
  }
  SECTION("preemptions of a KV cache too small") {
    check_same("explain/kv-too-small.toml", "--set workload.num_requests=300");
  }
  SECTION("prefix-cache hits and full blocks cached while decoding, cache-aware routing") {
    check_same("prefix/system-prompts.toml",
               "--set workload.num_requests=600 --set 'router.impl=\"prefix_cache_aware\"'");
  }
  SECTION("step jitter and stalls") {
    check_same("quickstart.toml",
               "--set workload.num_requests=300 --set 'engine.jitter.impl=\"lognormal\"' --set engine.jitter.sigma=0.3 "
               "--set engine.jitter.stall_probability=0.02 --set engine.jitter.stall_median=0.005");
  }
  SECTION("disaggregated: decode replicas waiting for blocks") {
    check_same("disagg/explain-decode-starved.toml", "--set workload.num_requests=150");
  }
  SECTION("a horizon leaves requests unfinished (deferred inter-token gaps)") {
    check_same("quickstart.toml", "--set workload.num_requests=2000 --set workload.arrival.rate=30 --set sim.horizon=20");
  }
}
