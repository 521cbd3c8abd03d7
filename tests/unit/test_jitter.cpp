// Engine overhead terms, step-time jitter and stalls, and calibration files merged over a scenario.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "helpers.h"
#include "models/cost/step_model.h"
#include "sim/engine/step_jitter.h"

using namespace servesim;

namespace {

const char* kSmallWorkload = R"(
[workload]
num_requests = 60
[workload.arrival]
impl = "poisson"
rate = 8.0
[workload.prompt_tokens]
impl = "uniform"
min = 100
max = 900
[workload.output_tokens]
impl = "uniform"
min = 5
max = 40
[sim]
seed = 3
)";

const char* kJitter = R"(
[engine.jitter]
impl = "lognormal"
sigma = 0.3
stall_probability = 0.02
stall_median = "40ms"
stall_sigma = 0.5
)";

struct Run {
  int code = -1;
  // summary: summary.json without "servesim"."run" (how it was invoked: --set lines and --calibration files differ
  // between runs that must give the same results); file: summary.json as written.
  std::string output, summary, requests, file;
};

Run run(const std::string& scenario, const std::string& args = "") {
  const auto dir = test::temp_dir("jit");
  const auto r = test::run_cli("run " + scenario + " --out " + (dir / "o").string() + " " + args);
  const std::string file = test::read_file(dir / "o" / "summary.json");
  std::string summary = file;
  if (r.code == 0) {
    auto j = nlohmann::ordered_json::parse(file);
    j["servesim"].erase("run");
    summary = j.dump(2) + "\n";
  }
  return {r.code, r.output, summary, test::read_file(dir / "o" / "requests.csv"), file};
}

// The arrival_s, prompt_tokens and output_tokens columns of requests.csv, by id.
std::set<std::string> workload_columns(const std::string& csv) {
  std::set<std::string> rows;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header: id,replica,arrival_s,prompt_tokens,output_tokens,...
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::istringstream ls(line);
    std::string x;
    while (std::getline(ls, x, ',')) f.push_back(x);
    rows.insert(f.at(0) + "," + f.at(2) + "," + f.at(3) + "," + f.at(4));
  }
  return rows;
}

}  // namespace

TEST_CASE("engine overhead: each term times its count", "[overhead]") {
  EngineOverhead o;
  o.per_step = Seconds{1e-3};
  o.per_decode_seq = Seconds{2e-4};
  o.per_prefill_seq = Seconds{5e-3};
  o.per_prefill_token = Seconds{1e-5};
  o.per_sampled_token = Seconds{3e-6};
  BatchShape b;
  b.num_decodes = 10;
  b.prefills = {PrefillChunk{500, 0}, PrefillChunk{300, 200}};
  b.num_sampled = 11;  // the decodes + the chunk that ends its prompt
  // 1 ms + 10 x 0.2 ms + 2 x 5 ms + 800 x 10 us + 11 x 3 us = 21.033 ms
  CHECK(o.of(b).v == Approx(21.033e-3).epsilon(1e-12));
  // Equal per-sequence terms give the same bits as one per-sequence term.
  EngineOverhead same;
  same.per_step = Seconds{4e-4};
  same.per_decode_seq = same.per_prefill_seq = Seconds{1e-5};
  for (std::int64_t d = 0; d < 300; ++d) {
    b.num_decodes = d;
    CHECK(same.of(b).v == 4e-4 + 1e-5 * double(d + 2));
  }
}

TEST_CASE("old overhead keys name the new ones", "[overhead][bad-input]") {
  const auto dir = test::temp_dir("oldkeys");
  const auto s = test::write_file(dir / "s.toml", test::base_scenario_text() + kSmallWorkload +
                                                       "[engine.overhead]\nper_request = \"10us\"\n");
  const auto r = test::run_cli("run " + s + " --out " + (dir / "o").string());
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
  CHECK(r.output.find("s.toml:") != std::string::npos);
  CHECK(r.output.find("per_decode_seq") != std::string::npos);
  CHECK(r.output.find("per_prefill_seq") != std::string::npos);
  // A typo is not answered with the removed keys as valid ones.
  const auto typo = test::write_file(dir / "t.toml", test::base_scenario_text() + kSmallWorkload +
                                                         "[engine.overhead]\nper_decode_sq = \"10us\"\n");
  const auto rt = test::run_cli("run " + typo + " --out " + (dir / "o").string());
  CHECK(rt.code == 2);
  CHECK(rt.output.find("per_decode_seq") != std::string::npos);
  CHECK(rt.output.find("per_request") == std::string::npos);
  const auto neg = test::write_file(dir / "n.toml", test::base_scenario_text() + kSmallWorkload +
                                                        "[engine.overhead]\nper_prefill_token = \"-1us\"\n");
  const auto rn = test::run_cli("run " + neg + " --out " + (dir / "o").string());
  CHECK(rn.code == 2);
  CHECK(rn.output.find("per_prefill_token") != std::string::npos);
}

TEST_CASE("lognormal jitter has mean 1 and the given log-sd, stalls at the given rate", "[jitter]") {
  StepJitterSpec spec;
  spec.kind = StepJitterSpec::Kind::lognormal;
  spec.sigma = 0.25;
  spec.stall_probability = 0.01;
  spec.stall_median = Seconds{0.5};
  spec.stall_sigma = 0.0;
  StepJitter j(spec, 42, "test");
  const int n = 200000;
  double sum = 0, sl = 0, sll = 0;
  int stalls = 0;
  for (int i = 0; i < n; ++i) {
    const auto d = j.next();
    sum += d.factor;
    sl += std::log(d.factor);
    sll += std::log(d.factor) * std::log(d.factor);
    if (d.stall.v > 0) {
      ++stalls;
      CHECK(d.stall.v == Approx(0.5).epsilon(1e-12));
    }
  }
  const double mean_log = sl / n;
  CHECK(sum / n == Approx(1.0).epsilon(0.005));
  CHECK(std::sqrt(sll / n - mean_log * mean_log) == Approx(0.25).epsilon(0.01));
  CHECK(double(stalls) / n == Approx(0.01).epsilon(0.05));
}

TEST_CASE("correlated jitter: successive steps' log factors have the given lag-1 autocorrelation", "[jitter]") {
  StepJitterSpec spec;
  spec.kind = StepJitterSpec::Kind::lognormal;
  spec.sigma = 0.2;
  spec.correlation = 0.9;
  StepJitter j(spec, 5, "test");
  const int n = 200000;
  std::vector<double> x(n);
  double mean = 0, sum = 0;
  for (int i = 0; i < n; ++i) {
    const double f = j.next().factor;
    sum += f;
    x[static_cast<std::size_t>(i)] = std::log(f);
    mean += x[static_cast<std::size_t>(i)] / n;
  }
  double c0 = 0, c1 = 0;
  for (std::size_t i = 0; i + 1 < x.size(); ++i) {
    c0 += (x[i] - mean) * (x[i] - mean);
    c1 += (x[i] - mean) * (x[i + 1] - mean);
  }
  CHECK(c1 / c0 == Approx(0.9).epsilon(0.01));
  CHECK(std::sqrt(c0 / n) == Approx(0.2).epsilon(0.03));  // the marginal stays the fitted one
  CHECK(sum / n == Approx(1.0).epsilon(0.01));
}

TEST_CASE("empirical jitter interpolates its quantiles", "[jitter]") {
  StepJitterSpec spec;
  spec.kind = StepJitterSpec::Kind::empirical;
  spec.factors = {0.5, 1.0, 1.5};  // uniform on [0.5, 1.5]
  StepJitter j(spec, 7, "test");
  double lo = 9, hi = 0, sum = 0;
  const int n = 100000;
  int below = 0;
  for (int i = 0; i < n; ++i) {
    const double f = j.next().factor;
    lo = std::min(lo, f);
    hi = std::max(hi, f);
    sum += f;
    below += f < 0.75;
  }
  CHECK(lo >= 0.5);
  CHECK(hi <= 1.5);
  CHECK(sum / n == Approx(1.0).epsilon(0.005));
  CHECK(double(below) / n == Approx(0.25).epsilon(0.03));
}

TEST_CASE("jitter: same seed same bytes, arrivals and lengths untouched, off = mean model", "[jitter]") {
  const auto dir = test::temp_dir("jitrun");
  const auto mean = test::write_file(dir / "mean.toml", test::base_scenario_text() + kSmallWorkload);
  const auto jit = test::write_file(dir / "jit.toml", test::base_scenario_text() + kSmallWorkload + kJitter);
  const Run a = run(jit), b = run(jit), m = run(mean), off = run(jit, "--set 'sim.jitter=\"off\"'");
  REQUIRE(a.code == 0);
  REQUIRE(m.code == 0);
  CHECK(a.summary == b.summary);
  CHECK(a.requests == b.requests);
  CHECK(a.requests != m.requests);  // the jitter moved token times
  CHECK(workload_columns(a.requests) == workload_columns(m.requests));
  CHECK(off.summary == m.summary);
  CHECK(off.requests == m.requests);
  const Run other_seed = run(jit, "--seed 4");
  const Run other_seed_mean = run(mean, "--seed 4");
  CHECK(other_seed.requests != a.requests);
  CHECK(workload_columns(other_seed.requests) == workload_columns(other_seed_mean.requests));
  // Bad jitter values are input errors naming the key.
  const auto bad = test::write_file(dir / "bad.toml", test::base_scenario_text() + kSmallWorkload +
                                                          "[engine.jitter]\nimpl = \"gauss\"\n");
  const Run rb = run(bad);
  CHECK(rb.code == 2);
  CHECK(rb.output.find("engine.jitter.impl") != std::string::npos);
  CHECK(rb.output.find("lognormal, empirical, off") != std::string::npos);
}

TEST_CASE("jitter off: outputs identical to the golden mean-model outputs", "[jitter]") {
  // tests/data/golden/ holds summary.json and requests.csv of the mean model (same scenario, same seed; its README
  // says when and why they were written); with jitter off the default terms must give the same bytes.
  const std::string golden = test::source_dir() + "/tests/data/golden/";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"quickstart-300", test::scenario_path("quickstart.toml") + " --set workload.num_requests=300"},
      {"tp8-100", test::scenario_path("llama70b-tp8-dgx-h100.toml") + " --set workload.num_requests=100"},
      {"pp2-200", test::scenario_path("quickstart.toml") +
                      " --set workload.num_requests=200 --set parallel.pipeline_parallel_size=2"
                      " --set 'parallel.topology=\"dgx-h100\"'"}};
  for (const auto& [name, args] : cases) {
    INFO(name);
    const Run r = run(args);
    REQUIRE(r.code == 0);
    CHECK(r.summary == test::read_file(golden + name + "/summary.json"));
    CHECK(r.requests == test::read_file(golden + name + "/requests.csv"));
  }
}

TEST_CASE("calibration files merge over the scenario, before --set", "[calibration]") {
  const auto dir = test::temp_dir("calib");
  const auto fit = test::write_file(dir / "fit.toml", "[engine.overhead]\nper_step = \"5ms\"\n");
  const auto s = test::write_file(dir / "s.toml", test::base_scenario_text() + kSmallWorkload);
  const auto with_key = test::write_file(dir / "k.toml", "calibration = [\"fit.toml\"]\n" +
                                                             test::base_scenario_text() + kSmallWorkload);
  const auto by_set = run(s, "--set engine.overhead.per_step='\"5ms\"'");
  const auto by_flag = run(s, "--calibration " + fit);
  const auto by_key = run(with_key);
  REQUIRE(by_set.code == 0);
  CHECK(by_flag.summary == by_set.summary);
  CHECK(by_key.summary == by_set.summary);
  CHECK(by_flag.summary != run(s).summary);
  // --set wins over the file.
  const auto set_wins = run(s, "--calibration " + fit + " --set engine.overhead.per_step='\"400us\"'");
  CHECK(set_wins.summary == run(s).summary);
  // A later file wins over an earlier one.
  const auto fit2 = test::write_file(dir / "fit2.toml", "[engine.overhead]\nper_step = \"400us\"\n");
  CHECK(run(s, "--calibration " + fit + " --calibration " + fit2).summary == run(s).summary);
  // A jitter table naming its impl replaces the scenario's whole: an empirical fit over a lognormal scenario.
  const auto lognormal = test::write_file(dir / "l.toml", test::base_scenario_text() + kSmallWorkload + kJitter);
  const auto empirical = test::write_file(dir / "e.toml", "[engine.jitter]\nimpl = \"empirical\"\nfactors = [0.5, 1.0, 1.5]\n");
  const auto mixed = run(lognormal, "--calibration " + empirical);
  INFO(mixed.output);
  CHECK(mixed.code == 0);
  CHECK(mixed.summary != run(lognormal).summary);
  // An unknown key in the fit file names the fit file and line.
  const auto typo = test::write_file(dir / "typo.toml", "# fitted\n[engine.overhead]\nper_stpe = \"5ms\"\n");
  const auto rt = run(s, "--calibration " + typo);
  CHECK(rt.code == 2);
  CHECK(test::count_lines(rt.output) == 1);
  CHECK(rt.output.find("typo.toml:3") != std::string::npos);
  CHECK(rt.output.find("per_stpe") != std::string::npos);
  // Missing files.
  const auto rm = run(s, "--calibration " + (dir / "nope.toml").string());
  CHECK(rm.code == 2);
  CHECK(rm.output.find("nope.toml") != std::string::npos);
  const auto bad_key = test::write_file(dir / "b.toml", "calibration = \"missing.toml\"\n" +
                                                            test::base_scenario_text() + kSmallWorkload);
  const auto rk = run(bad_key);
  CHECK(rk.code == 2);
  CHECK(rk.output.find("b.toml:1") != std::string::npos);
  CHECK(rk.output.find("missing.toml") != std::string::npos);
}
