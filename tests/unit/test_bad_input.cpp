// Every kind of bad input ends the CLI with one line naming the file:line or the key, exit code 2, and no
// output files.
#include <catch2/catch.hpp>

#include "helpers.h"

using namespace servesim;

namespace {

const char* kWorkload = R"(
[workload]
num_requests = 10
[workload.arrival]
impl = "poisson"
rate = 5.0
[workload.prompt_tokens]
impl = "fixed"
value = 100
[workload.output_tokens]
impl = "fixed"
value = 10
)";

// Runs `servesim run` on `text` and checks the one-line error contains every string in `expect`.
void expect_error(const std::string& tag, const std::string& text, const std::vector<std::string>& expect,
                  const std::string& extra_args = "") {
  const auto dir = test::temp_dir(tag);
  const std::string path = test::write_file(dir / "s.toml", text);
  const auto out = dir / "out";
  const auto r = test::run_cli("run " + path + " --out " + out.string() + " " + extra_args);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
  CHECK(r.output.rfind("servesim: error: ", 0) == 0);
  for (const auto& e : expect) CHECK(r.output.find(e) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
}

}  // namespace

TEST_CASE("malformed TOML", "[bad-input]") {
  expect_error("toml", test::base_scenario_text() + "[engine\nmax_num_seqs = 4\n", {"s.toml:5:8"});
}

TEST_CASE("unknown key", "[bad-input]") {
  expect_error("key", test::base_scenario_text() + "[engine]\nmax_num_seq = 4\n" + kWorkload,
               {"s.toml:6", "unknown key 'engine.max_num_seq'", "max_num_seqs"});
}

TEST_CASE("wrong unit", "[bad-input]") {
  expect_error("unit", test::base_scenario_text() + kWorkload + "[sim]\nhorizon = \"5GB\"\n",
               {"s.toml:18", "sim.horizon", "not a duration"});
  expect_error("unit2", test::base_scenario_text() + kWorkload + "[engine]\nactivation_reserve = \"2GB/s\"\n",
               {"s.toml:18", "engine.activation_reserve", "not a size"});
}

TEST_CASE("wrong type", "[bad-input]") {
  expect_error("type", test::base_scenario_text() + "[engine]\nmax_num_seqs = \"many\"\n" + kWorkload,
               {"s.toml:6", "engine.max_num_seqs", "expected an integer"});
}

TEST_CASE("impossible configuration", "[bad-input]") {
  expect_error("impossible", test::base_scenario_text() + "[engine]\nmax_num_seqs = 512\nmax_num_batched_tokens = 256\n" +
                                 kWorkload,
               {"engine.max_num_batched_tokens", "must be >= max_num_seqs"});
  expect_error("nochunk", test::base_scenario_text() +
                              "[engine]\nenable_chunked_prefill = false\nmax_num_batched_tokens = 2048\n" + kWorkload,
               {"engine.max_num_batched_tokens", "max_model_len"});
}

TEST_CASE("a model that does not fit in GPU memory", "[bad-input]") {
  std::string text = test::base_scenario_text();
  text.replace(text.find("llama-3-8b"), 10, "llama-3-70b");
  expect_error("fit", text + kWorkload, {"s.toml:4", "hardware.gpu", "does not fit"});
}

TEST_CASE("unknown implementation names list the valid ones", "[bad-input]") {
  std::string text = test::base_scenario_text() + kWorkload;
  text.replace(text.find("\"poisson\""), 9, "\"poison\"");
  expect_error("impl", text, {"workload.arrival.impl", "unknown arrival process 'poison'", "gamma, measured, poisson, trace"});
  expect_error("sched", test::base_scenario_text() + "[engine.scheduler]\nimpl = \"orca\"\n" + kWorkload,
               {"engine.scheduler.impl", "valid: vllm"});
  expect_error("gpu", "[model]\nconfig = \"llama-3-8b\"\n[hardware]\ngpu = \"h300\"\n" + std::string(kWorkload),
               {"s.toml:4", "unknown gpu 'h300'", "h100-sxm"});
}

TEST_CASE("negative rate", "[bad-input]") {
  std::string text = test::base_scenario_text() + kWorkload;
  text.replace(text.find("rate = 5.0"), 10, "rate = -5.0");
  expect_error("rate", text, {"s.toml:10", "workload.arrival.rate", "must be > 0"});
}

TEST_CASE("missing trace file", "[bad-input]") {
  expect_error("trace", test::base_scenario_text() +
                            "[workload.arrival]\nimpl = \"trace\"\npath = \"nowhere.csv\"\nformat = \"csv\"\n",
               {"s.toml:7", "workload.arrival.path", "not found"});
}

TEST_CASE("bad trace rows name the trace file and line", "[bad-input]") {
  const auto dir = test::temp_dir("rows");
  auto scenario = [&](const std::string& rows) {
    test::write_file(dir / "t.csv", "arrival_s,prompt_tokens,output_tokens\n0.0,100,10\n" + rows);
    return test::base_scenario_text() + "[workload.arrival]\nimpl = \"trace\"\npath = \"" + (dir / "t.csv").string() +
           "\"\nformat = \"csv\"\n";
  };
  expect_error("row1", scenario("0.5,abc,10\n"), {"t.csv:3", "prompt tokens 'abc'"});
  expect_error("row2", scenario("0.5,100\n"), {"t.csv:3", "expected 3 columns"});
  expect_error("row3", scenario("0.1,100,10\n0.05,100,10\n"), {"t.csv:4", "must not decrease"});
  expect_error("row4", scenario("x,100,10\n"), {"t.csv:3", "arrival_s 'x'"});
}

TEST_CASE("bad --set values and flags", "[bad-input]") {
  const std::string text = test::base_scenario_text() + kWorkload;
  expect_error("set1", text, {"--set workload.arrival.rate", "cannot parse"}, "--set workload.arrival.rate=fast");
  expect_error("set2", text, {"--set workload.arrival.rate", "must be > 0"}, "--set workload.arrival.rate=0");
  expect_error("set3", text, {"expected path=VALUE"}, "--set nothing");
}

TEST_CASE("bad model config", "[bad-input]") {
  const auto dir = test::temp_dir("model");
  test::write_file(dir / "m.json", "{\"hidden_size\": 4096}");
  expect_error("model", "[model]\nconfig = \"" + (dir / "m.json").string() + "\"\n[hardware]\ngpu = \"h100-sxm\"\n" +
                            kWorkload,
               {"m.json", "intermediate_size"});
}

TEST_CASE("missing scenario file", "[bad-input]") {
  const auto r = test::run_cli("run /nonexistent/s.toml");
  CHECK(r.code == 2);
  CHECK(r.output.find("/nonexistent/s.toml") != std::string::npos);
}

TEST_CASE("non-finite and out-of-range values", "[bad-input]") {
  const std::string text = test::base_scenario_text() + kWorkload;
  expect_error("nan", text, {"--set sim.horizon", "finite"}, "--set sim.horizon=nan");
  expect_error("inf", text, {"--set engine.overhead.per_step", "finite"}, "--set engine.overhead.per_step=inf");
  expect_error("huge", text, {"--set sim.horizon", "at most 1e+07 s"}, "--set 'sim.horizon=\"1e30s\"'");
  const auto dir = test::temp_dir("nanrow");
  test::write_file(dir / "t.csv", "arrival_s,prompt_tokens,output_tokens\n0.0,10,2\nnan,10,2\n");
  expect_error("nanrow", test::base_scenario_text() + "[workload.arrival]\nimpl = \"trace\"\nformat = \"csv\"\npath = \"" +
                             (dir / "t.csv").string() + "\"\n",
               {"t.csv:3", "arrival_s 'nan'"});
}

TEST_CASE("a KV cache smaller than max_model_len is an impossible configuration", "[bad-input]") {
  expect_error("kvsmall", test::base_scenario_text() + "[engine]\nactivation_reserve = \"56.5GiB\"\n" + kWorkload,
               {"engine.max_model_len", "8192 (the default: the model's max_position_embeddings) is larger than",
                "the maximum number of tokens", "1 null block"});
}

TEST_CASE("null or mistyped optional fields of config.json", "[bad-input]") {
  const auto dir = test::temp_dir("nullcfg");
  std::string cfg = test::read_file(test::scenario_path("models/llama-3-8b.json"));
  cfg.replace(cfg.find("\"bfloat16\""), 10, "null");
  test::write_file(dir / "m.json", cfg);
  const std::string head = "[model]\nconfig = \"" + (dir / "m.json").string() + "\"\n[hardware]\ngpu = \"h100-sxm\"\n";
  // null = absent: runs.
  const auto ok = test::run_cli("run " + test::write_file(dir / "s.toml", head + kWorkload) + " --out " + (dir / "o").string());
  CHECK(ok.code == 0);
  cfg.replace(cfg.find("\"tie_word_embeddings\": false"), 28, "\"tie_word_embeddings\": \"no\"");
  test::write_file(dir / "m.json", cfg);
  expect_error("typedcfg", head + kWorkload, {"m.json", "tie_word_embeddings", "true or false"});
}

TEST_CASE("lengths from a trace need a path unless the arrivals replay one", "[bad-input]") {
  expect_error("tracelen", test::base_scenario_text() + "[workload]\nnum_requests = 3\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
                           "[workload.prompt_tokens]\nimpl = \"trace\"\n[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 3\n",
               {"s.toml:11", "workload.prompt_tokens.impl", "need a path"});
}

TEST_CASE("an unwritable --tokens-out leaves no output at all", "[bad-input]") {
  const std::string text = test::base_scenario_text() + kWorkload;
  // The parent of the output is a regular file: no user (root included) can create a file under it, on any machine.
  const auto blocker = test::write_file(test::temp_dir("tokout-parent") / "not-a-dir", "x");
  expect_error("tokout", text, {"not-a-dir/t.jsonl"}, "--tokens-out " + blocker + "/t.jsonl");
}
