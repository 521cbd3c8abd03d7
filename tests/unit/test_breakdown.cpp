// Each request's time breakdown (sim/metrics/sink.h RequestRecord; requests.csv's breakdown columns): every
// component is checked against an independent reconstruction from the run's events (the steps an engine ran, the
// prompt chunks and tokens each step produced), and the columns of requests.csv add up to TTFT and E2E exactly.
#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sim/cli/run.h"
#include "sim/scenario/scenario.h"
#include "sim/metrics/summary.h"
#include "helpers.h"

using namespace servesim;

namespace {

// Rebuilds from the events: per request, the durations of the steps it took part in, split by what the step did
// for it (a prompt chunk, or a token after the first).
class StepAudit final : public RunSink {
 public:
  struct Seen {
    std::pair<std::int32_t, std::int32_t> engine{-1, -1};
    Ns chunk_steps{0};      // steps that ended with a prompt chunk of it computed (recomputation included)
    Ns token_steps{0};      // steps that produced one of its tokens after the first
    std::int64_t tokens = 0;
    std::int64_t chunks = 0;
    std::int64_t preempted = 0;
    Ns counted_end = kNever;  // the end of the last step counted (a step can end a chunk and sample a token)
    bool finished = false;
  };
  std::map<std::uint64_t, Seen> seen;
  std::int64_t steps = 0;
  double modeled_s = 0;  // every step's modeled time by kind, summed

  [[nodiscard]] bool wants_tokens() const override { return true; }
  void queued(Ns, std::uint64_t id, std::int32_t replica, std::int32_t engine, std::int64_t) override {
    seen[id].engine = {replica, engine};
  }
  void step_ended(const StepEvent& s) override {
    last_[{s.replica, s.engine}] = {s.start, s.end};
    ++steps;
    modeled_s += s.compute_s + s.memory_s + s.communication_s + s.overhead_s;
  }
  void chunk_done(Ns, std::uint64_t id, std::int64_t) override {
    Seen& x = seen.at(id);
    x.chunk_steps += take(x);
    ++x.chunks;
  }
  void token(Ns, std::uint64_t id) override {
    Seen& x = seen.at(id);
    const Ns d = take(x);
    if (x.tokens++ > 0) x.token_steps += d;
  }
  void preempted(Ns, std::uint64_t id, std::int32_t, std::int32_t) override { ++seen.at(id).preempted; }
  void finished(const RequestRecord& r) override { seen.at(r.id).finished = true; }

 private:
  // The duration of the engine's last step, unless it was already counted for this request.
  Ns take(Seen& x) {
    const auto [start, end] = last_.at(x.engine);
    if (x.counted_end == end) return Ns{0};
    x.counted_end = end;
    return end - start;
  }
  std::map<std::pair<std::int32_t, std::int32_t>, std::pair<Ns, Ns>> last_;  // each engine's last step
};

struct Checked {
  std::int64_t requests = 0;
  std::int64_t preempted = 0;
  std::int64_t chunked = 0;  // prompts computed in more than one step
  std::int64_t stalled = 0;  // prompts that waited between chunks
};

Checked check_breakdown(const std::string& scenario, const ScenarioOptions& opts) {
  const ScenarioLoader loader(test::scenario_path(scenario), opts);
  StepAudit audit;
  RunStreams streams;
  streams.sinks.push_back(&audit);
  const RunOutput out = run_scenario(loader, streams);
  Checked c;
  double step_kinds_ns = 0;
  for (const RequestRecord r : out.recorder.records()) {
    INFO("request " << r.id);
    const StepAudit::Seen& x = audit.seen.at(r.id);
    REQUIRE(x.finished);
    CHECK(x.preempted == r.preemptions);
    // Every component is a duration; the derived ones (queue, stalls) are what is left, never negative.
    CHECK(r.front_end().v >= 0);
    CHECK(r.queue().v >= 0);
    CHECK(r.prefill.v > 0);
    CHECK(r.prefill_stall().v >= 0);
    CHECK(r.decode_stall().v >= 0);
    CHECK(r.front_end() + r.queue() + r.prefill + r.prefill_stall() + r.prefill_preempted == r.first_token - r.arrival);
    if (r.preemptions == 0) {
      // Without preemption, prefill and decode are exactly the steps seen doing its chunks and its tokens.
      CHECK(r.preempted().v == 0);
      CHECK(r.prefill == x.chunk_steps);
      CHECK(r.decode == x.token_steps);
    } else {
      // Waiting again after a preemption takes time (it is never rescheduled in the step that preempted it).
      CHECK(r.preempted().v > 0);
      CHECK(r.prefill + r.decode <= x.chunk_steps + x.token_steps);
      CHECK(x.chunk_steps + x.token_steps <= r.prefill + r.decode + r.preempted());
      ++c.preempted;
    }
    CHECK(x.tokens == r.output_tokens);
    if (x.chunks > 1 && r.preemptions == 0) ++c.chunked;
    if (r.prefill_stall().v > 0) ++c.stalled;
    step_kinds_ns += double((r.step_compute + r.step_memory + r.step_communication + r.step_overhead).v);
    ++c.requests;
  }
  CHECK(step_kinds_ns > 0);
  CHECK(audit.steps > 0);
  CHECK(audit.modeled_s > 0);
  return c;
}

ScenarioOptions opts(std::vector<std::pair<std::string, std::string>> sets) {
  ScenarioOptions o;
  o.sets = std::move(sets);
  return o;
}

// ms with 6 decimals as integer ns (exact).
std::int64_t ns_of(const std::string& ms) {
  const auto dot = ms.find('.');
  REQUIRE(dot != std::string::npos);
  REQUIRE(ms.size() - dot - 1 == 6);
  const bool neg = ms[0] == '-';
  const std::int64_t whole = std::stoll(ms.substr(neg ? 1 : 0, dot - (neg ? 1 : 0)));
  const std::int64_t frac = std::stoll(ms.substr(dot + 1));
  return (neg ? -1 : 1) * (whole * 1000000 + frac);
}

}  // namespace

TEST_CASE("breakdown: chunked prefill, each component matches the steps that ran", "[breakdown]") {
  // A 512-token budget splits most prompts (mean 1024) into chunks that interleave with other requests' steps.
  const Checked c = check_breakdown("quickstart.toml", opts({{"workload.num_requests", "300"},
                                                            {"engine.max_num_batched_tokens", "512"},
                                                            {"engine.front_end", "{fixed=\"2ms\", per_prompt_token=\"1us\"}"}}));
  CHECK(c.requests == 300);
  CHECK(c.chunked > 50);
  // vLLM's scheduler serves running sequences first, in admission order, and admits a waiting one only while budget
  // is left; with max_num_batched_tokens >= max_num_seqs the decodes ahead of a partial prompt never take the whole
  // budget, so a prompt's chunks run in consecutive steps even under overload: no prefill stall.
  const Checked busy = check_breakdown("quickstart.toml", opts({{"workload.num_requests", "300"},
                                                               {"engine.max_num_batched_tokens", "512"},
                                                               {"workload.arrival.rate", "40.0"}}));
  CHECK(busy.chunked > 50);
  CHECK(busy.stalled == 0);
}

TEST_CASE("breakdown: recompute preemption counts waiting again and the lost work as preempted", "[breakdown]") {
  const Checked c = check_breakdown("quickstart.toml", opts({{"workload.num_requests", "300"},
                                                            {"engine.num_gpu_blocks_override", "600"},
                                                            {"workload.arrival.rate", "40.0"}}));
  CHECK(c.requests == 300);
  CHECK(c.preempted > 10);
}

TEST_CASE("breakdown: tensor parallelism with jitter, and pipeline parallelism's shared stages", "[breakdown]") {
  CHECK(check_breakdown("llama70b-tp8-dgx-h100.toml",
                        opts({{"workload.num_requests", "100"},
                              {"engine.jitter", "{impl=\"lognormal\", sigma=0.2}"}}))
            .requests == 100);
  CHECK(check_breakdown("quickstart.toml", opts({{"workload.num_requests", "200"},
                                                 {"parallel.pipeline_parallel_size", "2"},
                                                 {"parallel.topology", "\"dgx-h100\""}}))
            .requests == 200);
}

TEST_CASE("breakdown: data-parallel ranks in lockstep, with jitter and preemption", "[breakdown]") {
  // Each rank's engine steps with the others (sim/engine/dp_group.h): a request's prefill and decode are exactly
  // its rank's steps, each as long as the group's.
  const Checked c = check_breakdown("qwen3-moe-8x-h100.toml",
                                    opts({{"workload.num_requests", "300"},
                                          {"parallel.tensor_parallel_size", "1"},
                                          {"parallel.data_parallel_size", "8"},
                                          {"parallel.expert_parallel_size", "8"},
                                          {"engine.num_gpu_blocks_override", "300"},
                                          {"engine.max_model_len", "4096"},
                                          {"engine.max_num_batched_tokens", "1024"},
                                          {"engine.jitter", "{impl=\"lognormal\", sigma=0.2}"}}));
  CHECK(c.requests > 290);  // all but the prompts longer than max_model_len 4096 (rejected)
  CHECK(c.chunked > 20);
  CHECK(c.preempted > 0);
}

TEST_CASE("breakdown: requests.csv's components add up to TTFT and E2E exactly", "[breakdown]") {
  const auto dir = test::temp_dir("breakdown-csv");
  const std::string out = (dir / "o").string();
  const auto r = test::run_command(std::string(SERVESIM_BINARY) + " run " + test::scenario_path("quickstart.toml") +
                                   " --set workload.num_requests=200 --set engine.num_gpu_blocks_override=600"
                                   " --set workload.arrival.rate=40.0 --set 'engine.front_end={fixed=\"3ms\"}'"
                                   " --out " + out);
  REQUIRE(r.code == 0);
  std::istringstream csv(test::read_file(dir / "o" / "requests.csv"));
  std::string line;
  std::getline(csv, line);
  std::vector<std::string> header;
  {
    std::istringstream h(line);
    for (std::string f; std::getline(h, f, ',');) header.push_back(f);
  }
  auto col = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    REQUIRE(it != header.end());
    return static_cast<std::size_t>(it - header.begin());
  };
  std::int64_t rows = 0, preempted = 0;
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::istringstream l(line);
    for (std::string x; std::getline(l, x, ',');) f.push_back(x);
    REQUIRE(f.size() == header.size());
    auto ns = [&](const char* name) { return ns_of(f[col(name)]); };
    const std::int64_t ttft = ns("front_end_ms") + ns("queue_ms") + ns("prefill_ms") + ns("prefill_stall_ms") +
                              ns("prefill_preempted_ms");
    CHECK(ttft == ns("ttft_ms"));
    CHECK(ttft + ns("decode_ms") + ns("decode_stall_ms") + ns("decode_preempted_ms") + ns("kv_transfer_ms") +
              ns("decode_wait_ms") ==
          ns("e2el_ms"));
    CHECK(ns("preempted_ms") == ns("prefill_preempted_ms") + ns("decode_preempted_ms"));
    CHECK(ns("front_end_ms") == 3000000);
    const double shares = std::stod(f[col("compute_share")]) + std::stod(f[col("memory_share")]) +
                          std::stod(f[col("communication_share")]) + std::stod(f[col("overhead_share")]);
    CHECK(shares == Approx(1.0).margin(2e-4));
    if (ns("preempted_ms") > 0) ++preempted;
    ++rows;
  }
  CHECK(rows == 200);
  CHECK(preempted > 0);
}
