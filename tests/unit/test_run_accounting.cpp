// The books of a run: rejections counted by reason, the end-of-run invariant (arrived = completed + rejected +
// unfinished, every KV block free or held by a request in flight), and outputs streamed as requests finish with the
// bytes of writing them at the end.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "helpers.h"
#include "sim/cli/run.h"
#include "sim/cluster/cluster.h"
#include "sim/metrics/summary.h"

using namespace servesim;

namespace {

std::string workload(std::int64_t n, double rate, const std::string& prompt, const std::string& output) {
  return "[workload]\nnum_requests = " + std::to_string(n) + "\n[workload.arrival]\nimpl = \"poisson\"\nrate = " +
         std::to_string(rate) + "\n[workload.prompt_tokens]\n" + prompt + "\n[workload.output_tokens]\n" + output +
         "\n";
}

std::string scenario_file(const std::string& tag, const std::string& text) {
  const auto dir = test::temp_dir(tag);
  return test::write_file(dir / "s.toml", text);
}

// Runs in memory (token log on) and streamed; the streamed bytes must be those written from memory at the end.
void check_streams_match(const std::string& path, const std::vector<std::pair<std::string, std::string>>& sets = {}) {
  ScenarioOptions o;
  o.sets = sets;
  const ScenarioLoader loader(path, o);
  const RunOutput mem = run_scenario(loader, true);
  std::ostringstream csv_mem, tok_mem;
  write_requests_csv(csv_mem, mem.recorder);
  write_tokens_jsonl(tok_mem, mem);
  std::ostringstream csv, tok;
  const RunOutput streamed = run_scenario(loader, RunStreams{&csv, &tok, {}});
  CHECK(csv.str() == csv_mem.str());
  CHECK(tok.str() == tok_mem.str());
  CHECK(streamed.summary == mem.summary);
}

const char* kPreemptEngine = "[engine]\ngpu_memory_utilization = 0.26\n";

}  // namespace

TEST_CASE("rejections are counted by reason in summary.json and the text summary", "[run-accounting]") {
  const auto dir = test::temp_dir("rej");
  const std::string path = test::write_file(
      dir / "s.toml", test::base_scenario_text() + "[engine]\nmax_model_len = 2048\n" +
                          workload(60, 20.0, "impl = \"uniform\"\nmin = 100\nmax = 4000", "impl = \"fixed\"\nvalue = 10"));
  const auto r = test::run_cli("run " + path + " --out " + (dir / "out").string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto s = nlohmann::json::parse(test::read_file(dir / "out" / "summary.json"));
  const auto& x = s["servesim"];
  const auto rejected = x["rejected"].get<std::int64_t>();
  CHECK(rejected > 0);
  CHECK(rejected < 60);
  CHECK(x["rejected_by_reason"]["exceeds_max_model_len"].get<std::int64_t>() == rejected);
  CHECK(x["rejected_by_reason"]["exceeds_kv_cache"].get<std::int64_t>() == 0);
  CHECK(s["completed"].get<std::int64_t>() + rejected == 60);
  CHECK(r.output.find("rejected: exceeds_max_model_len") != std::string::npos);
  // requests.csv holds the completed requests only.
  CHECK(test::count_lines(test::read_file(dir / "out" / "requests.csv")) ==
        static_cast<std::size_t>(s["completed"].get<std::int64_t>()) + 1);
}

TEST_CASE("a run without rejections has no rejected_by_reason key", "[run-accounting]") {
  const ScenarioLoader loader(scenario_file("norej", test::base_scenario_text() +
                                                         workload(5, 5.0, "impl = \"fixed\"\nvalue = 100",
                                                                  "impl = \"fixed\"\nvalue = 10")),
                              {});
  const auto out = run_scenario(loader);
  CHECK(out.summary["servesim"]["rejected"] == 0);
  CHECK_FALSE(out.summary["servesim"].contains("rejected_by_reason"));
}

TEST_CASE("the recorder counts every rejection reason and the summary names them all", "[run-accounting]") {
  Recorder rec;
  int described = 0;
  auto detail = [&described] {
    ++described;
    return std::string("first one");
  };
  rec.rejected(Ns{0}, 0, RejectReason::exceeds_kv_cache, detail);
  rec.rejected(Ns{0}, 1, RejectReason::exceeds_max_model_len, detail);
  rec.rejected(Ns{0}, 2, RejectReason::exceeds_kv_cache, detail);
  CHECK(described == 1);  // only the first rejection is described
  CHECK(rec.first_rejection() == "first one");
  CHECK(rec.rejected_count() == 3);
  const auto s = summarize(rec, RunFacts{});
  CHECK(s["servesim"]["rejected_by_reason"]["exceeds_kv_cache"] == 2);
  CHECK(s["servesim"]["rejected_by_reason"]["exceeds_max_model_len"] == 1);
  const std::string text = format_summary(s);
  CHECK(text.find("rejected: exceeds_kv_cache") != std::string::npos);
  CHECK(text.find("rejected: exceeds_max_model_len") != std::string::npos);
}

TEST_CASE("a run where every request is rejected is an input error naming the first reason", "[run-accounting]") {
  // Through the CLI: one line, exit 2, nothing written (not even the output directories or the token log).
  const auto dir = test::temp_dir("allrej");
  const std::string path = test::write_file(
      dir / "s.toml", test::base_scenario_text() + "[engine]\nmax_model_len = 2048\n" +
                          workload(5, 5.0, "impl = \"uniform\"\nmin = 1000\nmax = 3000", "impl = \"fixed\"\nvalue = 1500"));
  const auto out = dir / "out" / "nested";
  const auto r = test::run_cli("run " + path + " --out " + out.string() + " --tokens-out " +
                               (dir / "tok" / "t.jsonl").string());
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
  CHECK(r.output.rfind("servesim: error: ", 0) == 0);
  CHECK(r.output.find("max_model_len") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "out"));
  CHECK_FALSE(std::filesystem::exists(dir / "tok"));

  // In the library: the message names the first rejected request and its reason.
  const ScenarioLoader loader(
      scenario_file("allrej2", test::base_scenario_text() + "[engine]\nmax_model_len = 2048\n" +
                                   workload(2, 5.0, "impl = \"uniform\"\nmin = 10\nmax = 60000",
                                            "impl = \"fixed\"\nvalue = 10") +
                                   "[sim]\nseed = 3\n"),
      {});
  const std::string m = test::input_error([&] { (void)run_scenario(loader); });
  INFO(m);
  CHECK(m.find("every request was rejected") != std::string::npos);
  CHECK(m.find("request 0") != std::string::npos);
  CHECK(m.find("engine.max_model_len = 2048") != std::string::npos);
}

TEST_CASE("the end-of-run accounting balances on varied runs", "[run-accounting]") {
  struct Case {
    std::string name, text;
    std::string expect;  // "preempt", "unfinished" or ""
  };
  const std::string base = test::base_scenario_text();
  const std::vector<Case> cases = {
      {"plain", base + workload(50, 20.0, "impl = \"uniform\"\nmin = 10\nmax = 3000", "impl = \"uniform\"\nmin = 1\nmax = 300"), ""},
      {"preempt", base + kPreemptEngine +
                      workload(300, 200.0, "impl = \"fixed\"\nvalue = 2000", "impl = \"fixed\"\nvalue = 1000"),
       "preempt"},
      {"horizon", base + workload(400, 50.0, "impl = \"fixed\"\nvalue = 1000", "impl = \"fixed\"\nvalue = 500") +
                      "[sim]\nhorizon = \"3s\"\n",
       "unfinished"},
      {"preempt-horizon", base + kPreemptEngine +
                              workload(300, 200.0, "impl = \"fixed\"\nvalue = 2000", "impl = \"fixed\"\nvalue = 1000") +
                              "[sim]\nhorizon = \"20s\"\n",
       "unfinished"},
      {"front-end-horizon", base + "[engine.front_end]\nfixed = \"50ms\"\n" +
                                workload(200, 100.0, "impl = \"fixed\"\nvalue = 500", "impl = \"fixed\"\nvalue = 100") +
                                "[sim]\nhorizon = \"1s\"\n",
       "unfinished"},
      {"rejections", base + "[engine]\nmax_model_len = 2048\n" +
                         workload(60, 20.0, "impl = \"uniform\"\nmin = 100\nmax = 4000", "impl = \"fixed\"\nvalue = 10"),
       ""},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const ScenarioLoader loader(scenario_file("acct-" + c.name, c.text), {});
    RunOutput out;
    REQUIRE_NOTHROW(out = run_scenario(loader));  // run_scenario checks the invariant itself
    const auto& s = out.summary;
    const auto& x = s["servesim"];
    CHECK(x["num_requests"].get<std::int64_t>() ==
          s["completed"].get<std::int64_t>() + x["rejected"].get<std::int64_t>() + x["unfinished"].get<std::int64_t>());
    if (c.expect == "preempt") CHECK(x["preemptions"].get<std::int64_t>() > 0);
    if (c.expect == "unfinished") CHECK(x["unfinished"].get<std::int64_t>() > 0);
  }
  // Pipeline parallelism (two micro-batch engines per replica) and tensor parallelism.
  for (const auto& [file, sets] : std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>>{
           {"quickstart.toml",
            {{"workload.num_requests", "100"}, {"parallel.pipeline_parallel_size", "2"}, {"parallel.topology", "\"dgx-h100\""}}},
           {"llama70b-tp8-dgx-h100.toml", {{"workload.num_requests", "50"}, {"sim.horizon", "\"5s\""}}}}) {
    INFO(file);
    ScenarioOptions o;
    o.sets = sets;
    const ScenarioLoader loader(test::scenario_path(file), o);
    CHECK_NOTHROW((void)run_scenario(loader));
  }
}

TEST_CASE("the accounting check fires on a fabricated violation with the numbers", "[run-accounting]") {
  RunAccounting a;
  a.arrived = 10;
  a.completed = 6;
  a.rejected = 1;
  a.unfinished = 3;
  EngineAccount e;
  e.kv_blocks = 100;
  e.kv_free = 90;
  e.kv_held = 10;
  e.outstanding = 3;
  e.queued = 3;
  a.engines = {e};
  CHECK_NOTHROW(check_run_accounting(a));

  auto message = [](const RunAccounting& bad) -> std::string {
    try {
      check_run_accounting(bad);
    } catch (const InputError&) {
      return "an InputError";  // wrong kind: a violation is a bug, not bad input
    } catch (const std::logic_error& ex) {
      return ex.what();
    }
    return "";
  };
  RunAccounting lost = a;
  lost.completed = 5;  // a request vanished
  std::string m = message(lost);
  CHECK(m.find("arrived 10 != completed 5 + rejected 1 + unfinished 3") != std::string::npos);

  RunAccounting leak = a;
  leak.engines[0].kv_free = 89;  // a block leaked
  m = message(leak);
  CHECK(m.find("89 free + 10 held KV blocks != 100 blocks") != std::string::npos);

  RunAccounting idle = a;
  idle.completed = 9;
  idle.unfinished = 0;
  idle.engines[0].outstanding = 0;
  idle.engines[0].queued = 0;  // nothing in flight but blocks still held
  m = message(idle);
  CHECK(m.find("90 free + 10 held") == std::string::npos);  // balanced: 90 + 10 = 100 ...
  idle.engines[0].kv_held = 0;                              // ... but held by no sequence
  m = message(idle);
  CHECK(m.find("90 free + 0 held KV blocks != 100 blocks") != std::string::npos);

  RunAccounting stray = a;
  stray.engines[0].queued = 2;
  m = message(stray);
  CHECK(m.find("3 requests outstanding but 2 sequences held") != std::string::npos);
}

TEST_CASE("streamed requests.csv and token log are the bytes written from memory", "[run-accounting]") {
  const std::string base = test::base_scenario_text();
  // Requests finishing out of id order (mixed lengths), preempted ones, and a horizon leaving some unfinished.
  check_streams_match(scenario_file("stream-mix", base + workload(80, 30.0, "impl = \"uniform\"\nmin = 10\nmax = 4000",
                                                                  "impl = \"uniform\"\nmin = 1\nmax = 400")));
  check_streams_match(scenario_file("stream-pre", base + kPreemptEngine +
                                                      workload(150, 200.0, "impl = \"fixed\"\nvalue = 2000",
                                                               "impl = \"uniform\"\nmin = 100\nmax = 1000") +
                                                      "[sim]\nhorizon = \"15s\"\n"));
  check_streams_match(scenario_file("stream-rej", base + "[engine]\nmax_model_len = 2048\n" +
                                                      workload(60, 20.0, "impl = \"uniform\"\nmin = 100\nmax = 4000",
                                                               "impl = \"fixed\"\nvalue = 10")));
  check_streams_match(test::scenario_path("quickstart.toml"),
                      {{"workload.num_requests", "60"}, {"parallel.pipeline_parallel_size", "2"},
                       {"parallel.topology", "\"dgx-h100\""}});
}

TEST_CASE("servesim run streams its outputs: the files match the in-memory ones and no temporary is left", "[run-accounting]") {
  const auto dir = test::temp_dir("runstream");
  const std::string q = test::scenario_path("quickstart.toml");
  const auto r = test::run_cli("run " + q + " --set workload.num_requests=120 --out " + (dir / "o").string() +
                               " --tokens-out " + (dir / "t.jsonl").string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  ScenarioOptions o;
  o.sets = {{"workload.num_requests", "120"}};
  const ScenarioLoader loader(q, o);
  const RunOutput mem = run_scenario(loader, true);
  std::ostringstream csv, tok;
  write_requests_csv(csv, mem.recorder);
  write_tokens_jsonl(tok, mem);
  CHECK(test::read_file(dir / "o" / "requests.csv") == csv.str());
  CHECK(test::read_file(dir / "t.jsonl") == tok.str());
  CHECK(test::read_file(dir / "o" / "summary.json") == mem.summary.dump(2) + "\n");
  std::size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 3);
}
