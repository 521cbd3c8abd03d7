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

// `tokens`: also write the token times (the engine then reports each member's token); without them the run's sink
// is the recorder alone, which takes a stretch step's inter-token gaps in one call.
Outputs run(const std::string& scenario, const std::string& args, bool stretch, bool tokens) {
  const auto dir = servesim::test::temp_dir("stretch");
  const auto out = dir / "o";
  const std::string tokens_out = tokens ? " --tokens-out " + (out / "tokens.jsonl").string() : "";
  const auto r = servesim::test::run_cli("run " + servesim::test::scenario_path(scenario) + " --out " + out.string() +
                                         tokens_out + " " + args +
                                         " --set sim.decode_stretch=" + (stretch ? "true" : "false"));
  Outputs o{r.code, r.output, "", "", ""};
  if (r.code != 0) return o;
  auto j = nlohmann::ordered_json::parse(servesim::test::read_file(out / "summary.json"));
  j["servesim"].erase("run");
  o.summary = j.dump(2);
  o.requests = servesim::test::read_file(out / "requests.csv");
  if (tokens) o.tokens = servesim::test::read_file(out / "tokens.jsonl");
  return o;
}

void check_same(const std::string& scenario, const std::string& args, bool tokens = true) {
  INFO(scenario << " " << args << (tokens ? " (token times)" : " (recorder alone)"));
  const Outputs fast = run(scenario, args, true, tokens);
  const Outputs slow = run(scenario, args, false, tokens);
  INFO(fast.output << slow.output);
  REQUIRE(fast.code == 0);
  REQUIRE(slow.code == 0);
  CHECK(fast.summary == slow.summary);
  CHECK(fast.requests == slow.requests);
  CHECK(fast.tokens == slow.tokens);
  CHECK(fast.tokens.empty() != tokens);
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
  SECTION("the recorder alone: arrivals, finishes, preemptions and a horizon") {
    check_same("quickstart.toml", "--set workload.num_requests=400 --set workload.arrival.rate=20", false);
    check_same("explain/kv-too-small.toml", "--set workload.num_requests=300", false);
    check_same("quickstart.toml", "--set workload.num_requests=2000 --set workload.arrival.rate=30 --set sim.horizon=20",
               false);
  }
  SECTION("a saturated token budget: prompts chunked behind the members; chunked prefill off") {
    // 48 tokens a step for up to 40 sequences, at most 32 of a prompt: running sequences still in their prompt sit
    // behind the members for several steps, and the members' tokens leave them what is left.
    check_same("quickstart.toml",
               "--set workload.num_requests=300 --set workload.arrival.rate=20 --set engine.max_num_batched_tokens=48 "
               "--set engine.max_num_seqs=40 --set engine.long_prefill_token_threshold=32");
    check_same("quickstart.toml",
               "--set workload.num_requests=300 --set workload.arrival.rate=20 --set engine.enable_chunked_prefill=false",
               false);
  }
}
