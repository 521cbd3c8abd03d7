// Workload sources: arrival processes, length distributions and trace replay.
#include <catch2/catch.hpp>
#include <cmath>

#include "helpers.h"
#include "sim/io/trace.h"
#include "sim/workload/workload.h"

using namespace servesim;

namespace {

std::vector<Request> draw(const std::string& workload_toml, std::uint64_t seed = 1) {
  const Config c = Config::from_string(workload_toml, "w.toml");
  WorkloadSource src(c, PathResolver{test::source_dir() + "/scenarios"}, seed);
  std::vector<Request> out;
  while (auto r = src.next()) out.push_back(*r);
  return out;
}

struct Moments {
  double mean = 0, cv = 0;
};

Moments gaps(const std::vector<Request>& r) {
  std::vector<double> g;
  for (std::size_t i = 1; i < r.size(); ++i) g.push_back(ns_to_s(r[i].arrival - r[i - 1].arrival));
  double m = 0, v = 0;
  for (const double x : g) m += x;
  m /= double(g.size());
  for (const double x : g) v += (x - m) * (x - m);
  v /= double(g.size());
  return {m, std::sqrt(v) / m};
}

const char* kFixed = "[prompt_tokens]\nimpl = \"fixed\"\nvalue = 100\n[output_tokens]\nimpl = \"fixed\"\nvalue = 10\n";

}  // namespace

TEST_CASE("Poisson arrivals: mean gap 1/rate, coefficient of variation 1", "[workload]") {
  const auto r = draw(std::string("num_requests = 100000\n[arrival]\nimpl = \"poisson\"\nrate = 20.0\n") + kFixed);
  REQUIRE(r.size() == 100000);
  const Moments m = gaps(r);
  CHECK(m.mean == Approx(0.05).epsilon(0.01));
  CHECK(m.cv == Approx(1.0).epsilon(0.02));
}

TEST_CASE("Gamma arrivals: the asked rate and burstiness", "[workload]") {
  const auto r = draw(std::string("num_requests = 100000\n[arrival]\nimpl = \"gamma\"\nrate = 10.0\ncv = 3.0\n") + kFixed);
  const Moments m = gaps(r);
  CHECK(m.mean == Approx(0.1).epsilon(0.03));
  CHECK(m.cv == Approx(3.0).epsilon(0.05));
}

TEST_CASE("length distributions", "[workload]") {
  const auto r = draw("num_requests = 50000\n[arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
                      "[prompt_tokens]\nimpl = \"lognormal\"\nmean = 1000\nstd = 500\n"
                      "[output_tokens]\nimpl = \"uniform\"\nmin = 10\nmax = 20\n");
  double mp = 0;
  std::int64_t lo = 1 << 30, hi = 0;
  for (const auto& x : r) {
    mp += double(x.prompt_tokens);
    lo = std::min(lo, x.output_tokens);
    hi = std::max(hi, x.output_tokens);
  }
  CHECK(mp / double(r.size()) == Approx(1000).epsilon(0.02));
  CHECK(lo == 10);
  CHECK(hi == 20);
}

TEST_CASE("streams are independent: changing lengths does not move arrivals", "[workload]") {
  const auto a = draw(std::string("num_requests = 100\n[arrival]\nimpl = \"poisson\"\nrate = 5.0\n") + kFixed);
  const auto b = draw("num_requests = 100\n[arrival]\nimpl = \"poisson\"\nrate = 5.0\n"
                      "[prompt_tokens]\nimpl = \"uniform\"\nmin = 1\nmax = 999\n[output_tokens]\nimpl = \"fixed\"\nvalue = 3\n");
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].arrival == b[i].arrival);
}

TEST_CASE("Azure trace replay: timestamps, lengths and time scale", "[workload]") {
  const auto rows = read_trace(test::scenario_path("traces/azure_llm_2023_conv.csv"), "azure");
  REQUIRE(rows.size() == 19366);
  CHECK(rows[0].arrival_s == 0.0);
  CHECK(rows[0].prompt_tokens == 374);
  CHECK(rows[0].output_tokens == 44);
  // 18:15:50.9951690 - 18:15:46.6805900
  CHECK(rows[1].arrival_s == Approx(4.314579).epsilon(1e-9));
  const auto r = draw("[arrival]\nimpl = \"trace\"\npath = \"traces/azure_llm_2023_conv.csv\"\ntime_scale = 0.5\n");
  REQUIRE(r.size() == 19366);
  CHECK(ns_to_s(r[1].arrival) == Approx(4.314579 * 0.5).epsilon(1e-6));
  CHECK(r[1].prompt_tokens == 396);
  CHECK(r[1].output_tokens == 109);
}

TEST_CASE("plain CSV traces", "[workload]") {
  const auto dir = test::temp_dir("csvtrace");
  test::write_file(dir / "t.csv", "arrival_s,prompt_tokens,output_tokens\n0.0,10,2\n0.25,20,3\n");
  const auto rows = read_trace((dir / "t.csv").string(), "csv");
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].arrival_s == 0.25);
  CHECK(rows[1].prompt_tokens == 20);
}
