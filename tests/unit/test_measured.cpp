// Measured-run readers: JSONL and vLLM bench serve results, their errors, and the JSONL writer.
#include <catch2/catch.hpp>

#include <limits>
#include <sstream>

#include "helpers.h"
#include "models/common/error.h"
#include "sim/io/measured.h"

using namespace servesim;

namespace {

std::string measured_fixture(const std::string& name) {
  return std::string(SERVESIM_SOURCE_DIR) + "/tests/data/measured/" + name;
}

// Writes `text` to a fresh temporary file named `name` and returns its path.
std::string temp_file(const std::string& name, const std::string& text) {
  return test::write_file(test::temp_dir("measured") / name, text);
}

// Reading `path` throws an InputError whose one-line message contains every fragment.
void expect_error(const std::string& path, const std::vector<std::string>& fragments) {
  try {
    (void)read_measured_run(path);
    FAIL("no InputError");
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find('\n') == std::string::npos);
    for (const auto& f : fragments) CHECK(msg.find(f) != std::string::npos);
  }
}

const char* kLine = R"({"arrival_s": 0.5, "prompt_tokens": 32, "output_tokens": 2, "token_times_s": [0.6, 0.7]})";

// A vLLM result with the per-request arrays given as JSON text.
std::string vllm(const std::string& arrays, const std::string& rate = "\"inf\"") {
  return R"({"backend": "vllm", "request_rate": )" + rate + ", " + arrays + "}";
}

}  // namespace

TEST_CASE("measured: JSONL", "[measured]") {
  const MeasuredRun run = read_measured_run_detailed(measured_fixture("run.jsonl"));
  CHECK(run.format == "jsonl");
  const auto& r = run.requests;
  REQUIRE(r.size() == 3);
  // sorted by arrival
  CHECK(r[0].arrival_s == 0.0);
  CHECK(r[0].prompt_tokens == 128);
  CHECK(r[0].output_tokens == 3);
  CHECK(r[0].token_times_s == std::vector<double>{0.12, 0.15, 0.18});
  CHECK(r[1].arrival_s == 0.5);
  CHECK(r[1].token_times_s == std::vector<double>{0.61});
  CHECK(r[2].arrival_s == 1.25);
  CHECK(r[2].prompt_tokens == 64);
  CHECK(r[2].token_times_s == std::vector<double>{1.4, 1.45});
  CHECK(read_measured_run(measured_fixture("run.jsonl")).size() == 3);
}

TEST_CASE("measured: malformed JSONL names file:line", "[measured]") {
  expect_error(measured_fixture("malformed.jsonl"), {"malformed.jsonl:2: not valid JSON"});
  const std::string good = std::string(kLine) + "\n";
  auto line2 = [&](const std::string& bad) { return temp_file("m.jsonl", good + bad + "\n"); };
  expect_error(line2(R"({"arrival_s": 0.5, "prompt_tokens": 32, "output_tokens": 3, "token_times_s": [0.6, 0.7]})"),
               {"m.jsonl:2: token_times_s has 2 entries but output_tokens = 3"});
  expect_error(line2(R"({"arrival_s": 0.5, "prompt_tokens": 32, "output_tokens": 2})"),
               {"m.jsonl:2: missing 'token_times_s'"});
  expect_error(line2(R"({"arrival_s": "0.5", "prompt_tokens": 32, "output_tokens": 2, "token_times_s": [0.6, 0.7]})"),
               {"m.jsonl:2: arrival_s: expected a number, got a string"});
  expect_error(line2(R"({"arrival_s": -1, "prompt_tokens": 32, "output_tokens": 2, "token_times_s": [0.6, 0.7]})"),
               {"m.jsonl:2: arrival_s: must not be negative"});
  expect_error(line2(R"({"arrival_s": 0.5, "prompt_tokens": 0, "output_tokens": 2, "token_times_s": [0.6, 0.7]})"),
               {"m.jsonl:2: prompt_tokens: must be >= 1"});
  expect_error(line2(R"({"arrival_s": 0.5, "prompt_tokens": 3.5, "output_tokens": 2, "token_times_s": [0.6, 0.7]})"),
               {"m.jsonl:2: prompt_tokens: expected an integer, got 3.5"});
  expect_error(line2(R"({"arrival_s": 0.5, "prompt_tokens": 32, "output_tokens": 0, "token_times_s": []})"),
               {"m.jsonl:2: output_tokens: must be >= 1"});
  expect_error(line2(R"({"arrival_s": 0.5, "prompt_tokens": 32, "output_tokens": 2, "token_times_s": 0.6})"),
               {"m.jsonl:2: token_times_s: expected an array"});
  expect_error(line2(R"({"arrival_s": 0.5, "prompt_tokens": 32, "output_tokens": 2, "token_times_s": [0.6, null]})"),
               {"m.jsonl:2: token_times_s[1]: expected a number, got null"});
  expect_error(line2(R"({"arrival_s": 0.5, "prompt_tokens": 32, "output_tokens": 2, "token_times_s": [0.4, 0.7]})"),
               {"m.jsonl:2: token_times_s[0] (0.4) is before arrival_s (0.5)"});
  expect_error(line2(R"({"arrival_s": 0.5, "prompt_tokens": 32, "output_tokens": 2, "token_times_s": [0.7, 0.6]})"),
               {"m.jsonl:2: token_times_s[1] (0.6) is before token_times_s[0] (0.7)"});
  expect_error(line2("[1, 2]"), {"m.jsonl:2: expected a JSON object (one request per line), got an array"});
  expect_error(temp_file("e.jsonl", "\n  \n"), {"e.jsonl: empty measured run"});
  expect_error(temp_file("t.txt", "hello\n"), {"t.txt:1: not valid JSON at column 1"});
  expect_error(temp_file("o.json", R"({"arival_s": 0})"), {"o.json:1: missing 'arrival_s'"});
  expect_error("/nonexistent/run.jsonl", {"/nonexistent/run.jsonl: cannot open measured run"});
}

TEST_CASE("measured: vLLM result with start_times", "[measured]") {
  const MeasuredRun run = read_measured_run_detailed(measured_fixture("vllm-start-times.json"));
  CHECK(run.format == "vllm");
  CHECK(run.skipped_failed == 1);          // errors[1] = "Bad Request"
  CHECK(run.skipped_token_mismatch == 1);  // output_lens[4] = 5, but 1 + 2 itls
  const auto& r = run.requests;
  REQUIRE(r.size() == 3);
  CHECK(r[0].arrival_s == 0.2);
  CHECK(r[0].prompt_tokens == 50);
  CHECK(r[0].output_tokens == 2);
  REQUIRE(r[0].token_times_s.size() == 2);
  CHECK(r[0].token_times_s[0] == Approx(0.24));
  CHECK(r[0].token_times_s[1] == Approx(0.255));
  CHECK(r[1].arrival_s == 0.5);
  REQUIRE(r[1].token_times_s.size() == 3);
  CHECK(r[1].token_times_s[0] == Approx(0.55));
  CHECK(r[1].token_times_s[2] == Approx(0.58));
  CHECK(r[2].arrival_s == 1.4);
  CHECK(r[2].output_tokens == 4);
  CHECK(r[2].token_times_s.back() == Approx(1.49));
}

TEST_CASE("measured: vLLM result without start_times", "[measured]") {
  expect_error(measured_fixture("vllm-no-start-times.json"),
               {"vllm-no-start-times.json: no 'start_times' and request_rate = 4.0",
                "lacks per-request send times", "JSONL"});
  // request_rate inf: every request was sent at t = 0 (Python's NaN elsewhere in the file is tolerated)
  const MeasuredRun run = read_measured_run_detailed(measured_fixture("vllm-inf-rate.json"));
  CHECK(run.format == "vllm");
  CHECK(run.skipped_failed == 1);  // ttfts[2] = null
  REQUIRE(run.requests.size() == 2);
  CHECK(run.requests[0].arrival_s == 0.0);
  CHECK(run.requests[0].token_times_s == std::vector<double>{0.25, 0.3125});
  CHECK(run.requests[1].token_times_s == std::vector<double>{0.125, 0.15625, 0.1875});
  // ... but not with a client-side concurrency limit
  expect_error(temp_file("c.json", vllm(R"("max_concurrency": 4, "input_lens": [1], "output_lens": [1],
                                            "ttfts": [0.1], "itls": [[]])")),
               {"c.json: no 'start_times' and max_concurrency = 4", "JSONL"});
  expect_error(temp_file("n.json", R"({"input_lens": [1], "output_lens": [1], "ttfts": [0.1], "itls": [[]]})"),
               {"n.json: no 'start_times' and no 'request_rate'"});
}

TEST_CASE("measured: malformed vLLM results name the file and key", "[measured]") {
  const std::string ok = R"("input_lens": [10, 20], "output_lens": [1, 2], "ttfts": [0.1, 0.2], "itls": [[], [0.01]])";
  CHECK(read_measured_run(temp_file("ok.json", vllm(ok))).size() == 2);
  expect_error(temp_file("v.json", vllm(R"("input_lens": [10, 20], "output_lens": [1, 2], "ttfts": [0.1], "itls": [[], [0.01]])")),
               {"v.json: key 'ttfts' has 1 entries but 'input_lens' has 2"});
  expect_error(temp_file("v.json", vllm(R"("input_lens": [10, 20], "output_lens": [1, 2], "ttfts": [0.1, 0.2])")),
               {"v.json: missing key 'itls'"});
  expect_error(temp_file("v.json", vllm(ok + R"(, "start_times": [0.0])")),
               {"v.json: key 'start_times' has 1 entries but 'input_lens' has 2"});
  expect_error(temp_file("v.json", vllm(ok + R"(, "errors": "none")")), {"v.json: key 'errors': expected an array"});
  expect_error(temp_file("v.json", vllm(ok + R"(, "errors": ["", 3])")), {"v.json: errors[1]: expected a string"});
  expect_error(temp_file("v.json", vllm(ok + R"(, "start_times": [0.0, "x"])")),
               {"v.json: start_times[1]: expected a number, got a string"});
  expect_error(temp_file("v.json", vllm(R"("input_lens": [10, 20], "output_lens": [1, 2], "ttfts": [0.1, -0.2], "itls": [[], [0.01]])")),
               {"v.json: ttfts[1]: must not be negative"});
  expect_error(temp_file("v.json", vllm(R"("input_lens": [10, 20], "output_lens": [1, 2], "ttfts": [0.1, 0.2], "itls": [[], [-0.01]])")),
               {"v.json: itls[1][0]: must not be negative"});
  expect_error(temp_file("v.json", vllm(R"("input_lens": [10, 0], "output_lens": [1, 2], "ttfts": [0.1, 0.2], "itls": [[], [0.01]])")),
               {"v.json: input_lens[1]: must be >= 1"});
  expect_error(temp_file("v.json", vllm(R"("input_lens": [10, 20], "output_lens": [1, 2], "ttfts": [0.1, 0.2], "itls": [[], 0.01])")),
               {"v.json: itls[1]: expected an array"});
  expect_error(temp_file("v.json", vllm(ok + R"(, "errors": ["timeout", "timeout"])")),
               {"v.json: no usable requests (2 in the file, 2 failed, 0 "});
  expect_error(temp_file("v.json", vllm(R"("input_lens": [10, 20], "output_lens": [1, 2], "ttfts": [0.1, 0.2], "itls": [[], [0.01)")),
               {"v.json:1:", "not valid JSON"});
}

TEST_CASE("measured: JSONL writer round-trips exactly and deterministically", "[measured]") {
  std::vector<MeasuredRequest> reqs(2);
  reqs[0].arrival_s = 0.1 + 0.2;  // 0.30000000000000004
  reqs[0].prompt_tokens = 7;
  reqs[0].output_tokens = 3;
  reqs[0].token_times_s = {0.5, 0.5 + 1e-9, 12345.678901234567};
  reqs[1].arrival_s = 1e-7;
  reqs[1].prompt_tokens = 4096;
  reqs[1].output_tokens = 1;
  reqs[1].token_times_s = {2.0 / 3.0};
  std::ostringstream a, b;
  write_measured_jsonl(a, reqs);
  write_measured_jsonl(b, reqs);
  CHECK(a.str() == b.str());
  CHECK(a.str().rfind(R"({"arrival_s":0.30000000000000004,"prompt_tokens":7,"output_tokens":3,"token_times_s":[0.5,)", 0) ==
        0);
  const auto back = read_measured_run(temp_file("w.jsonl", a.str()));
  REQUIRE(back.size() == 2);
  CHECK(back[0].arrival_s == reqs[1].arrival_s);  // sorted by arrival on read
  CHECK(back[0].token_times_s == reqs[1].token_times_s);
  CHECK(back[1].arrival_s == reqs[0].arrival_s);
  CHECK(back[1].prompt_tokens == 7);
  CHECK(back[1].output_tokens == 3);
  CHECK(back[1].token_times_s == reqs[0].token_times_s);

  reqs[1].token_times_s = {std::numeric_limits<double>::infinity()};
  std::ostringstream c;
  CHECK_THROWS_AS(write_measured_jsonl(c, reqs), std::invalid_argument);
}
