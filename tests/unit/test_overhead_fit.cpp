// The pieces of `calibrate trace` on synthetic data: the step window from a gap histogram, the robust
// non-negative overhead fit with its identification, and the jitter / stall fit.
#include <catch2/catch.hpp>

#include <cmath>

#include <boost/random/normal_distribution.hpp>
#include <boost/random/uniform_01.hpp>

#include "sim/core/random.h"
#include "sim/metrics/jitter_fit.h"
#include "sim/metrics/overhead_fit.h"
#include "sim/metrics/step_groups.h"

using namespace servesim;

namespace {

// `n` requests decoding in lockstep, one step every `step_s`, their tokens stamped `noise(request, k)` late.
template <class Noise>
std::vector<MeasuredRequest> lockstep(std::size_t n, std::size_t tokens, double step_s, Noise noise) {
  std::vector<MeasuredRequest> reqs(n);
  for (std::size_t r = 0; r < n; ++r) {
    reqs[r] = {0.0, 100, static_cast<std::int64_t>(tokens), {}};
    for (std::size_t k = 0; k < tokens; ++k) reqs[r].token_times_s.push_back(double(k + 1) * step_s + noise(r, k));
  }
  return reqs;
}

// Rows of a known overhead: features drawn per row, measured = (gpu + overhead) x lognormal(sigma), plus a 100 ms
// stall in `stall_every`-th rows (0: none).
std::vector<StepRow> synthetic_rows(const TermVector& terms, std::size_t n, double sigma, std::size_t stall_every,
                                    std::uint64_t seed = 7) {
  RandomEngine rng = make_stream(seed, "test/rows");
  boost::random::uniform_01<double> u;
  boost::random::normal_distribution<double> z;
  std::vector<StepRow> rows;
  for (std::size_t i = 0; i < n; ++i) {
    StepRow r;
    const double decodes = std::floor(1 + 60 * u(rng));
    const double prefills = u(rng) < 0.3 ? std::floor(1 + 3 * u(rng)) : 0.0;
    const double tokens = prefills * std::floor(64 + 2000 * u(rng));
    r.x = {1.0, decodes, prefills, tokens, decodes + prefills - (u(rng) < 0.2 ? std::min(prefills, 1.0) : 0.0)};
    r.gpu_s = 5e-3 + 2e-6 * tokens;
    r.steps = 1;
    const double factor = std::exp(-0.5 * sigma * sigma + sigma * z(rng));
    r.measured_s = (r.gpu_s + r.overhead(terms)) * factor + (stall_every && i % stall_every == 0 ? 0.1 : 0.0);
    rows.push_back(r);
  }
  return rows;
}

}  // namespace

TEST_CASE("the step window lies in the gap histogram's empty band", "[overhead-fit]") {
  // 20 sequences, a step every 10 ms, timestamps spread over 0..40 us (continuous).
  const auto reqs = lockstep(20, 50, 10e-3, [](std::size_t r, std::size_t k) {
    return 40e-6 * double((r * 7919 + k * 104729) % 1009) / 1009.0;
  });
  const GapSplit s = choose_group_window(reqs);
  CHECK(s.separated);
  CHECK(s.window_s > 40e-6);
  CHECK(s.window_s < 10e-3);
  const MeasuredSteps g = group_tokens(reqs, s.window_s);
  REQUIRE(g.groups() == 50);
  for (std::size_t i = 0; i < g.groups(); ++i) CHECK(g.size(i) == 20);
  // A window under the spread splits the steps.
  CHECK(group_tokens(reqs, 1e-6).groups() > 500);
}

TEST_CASE("ties of a coarse clock against one tick are not the step boundary", "[overhead-fit]") {
  // Timestamps on a 1 us clock: many exact ties, many 1 us gaps; steps 8 ms apart. The band between the ties and
  // one tick is wide, but far below the requests' own inter-token gaps.
  const auto reqs = lockstep(30, 40, 8e-3, [](std::size_t r, std::size_t k) { return 1e-6 * double((r * 131 + k * 7) % 41); });
  const GapSplit s = choose_group_window(reqs);
  CHECK(s.window_s > 40e-6);
  CHECK(s.window_s < 8e-3);
  CHECK(group_tokens(reqs, s.window_s).groups() == 40);
}

TEST_CASE("a run without spread inside steps groups identical times only", "[overhead-fit]") {
  // One request at a time: every gap is a step; no band separates two classes.
  const auto reqs = lockstep(1, 200, 10e-3, [](std::size_t, std::size_t k) { return 1e-4 * double(k % 7); });
  const GapSplit s = choose_group_window(reqs);
  CHECK_FALSE(s.separated);
  CHECK(s.window_s == kTieGap);
  CHECK(group_tokens(reqs, s.window_s).groups() == 200);
}

TEST_CASE("the overhead fit recovers planted terms and resists stalls", "[overhead-fit]") {
  const TermVector planted = {2e-3, 100e-6, 800e-6, 1e-6, 0.0};
  const auto rows = synthetic_rows(planted, 3000, 0.1, 50);
  // Least squares is dragged by the stalls; Huber's loss is not.
  const TermVector robust = robust_fit(rows, identifiable_columns(rows));
  for (std::size_t j = 0; j < 4; ++j) CHECK(robust[j] == Approx(planted[j]).epsilon(0.1));
  FitOptions ls;
  ls.huber = false;
  ls.differences = false;  // the levels procedure (the rows here are independent draws, not a run's steps)
  ls.resamples = 0;
  const TermVector dragged = fit_overhead(rows, ls).values();
  CHECK(dragged[0] > 1.2 * planted[0]);
  // Without the stalls, least squares with bootstrap intervals covers every planted term.
  const auto calm = synthetic_rows(planted, 3000, 0.1, 0);
  ls.resamples = 100;
  const OverheadFit fit = fit_overhead(calm, ls);
  for (std::size_t j = 0; j < 4; ++j) {
    INFO(kTermNames[j]);
    CHECK(fit.terms[j].status == TermEstimate::Status::identified);
    CHECK(fit.terms[j].low_s <= planted[j]);
    CHECK(planted[j] <= fit.terms[j].high_s);
  }
  // The planted zero: its interval reaches 0 and it is set to 0.
  CHECK(fit.terms[4].value_s == 0.0);
  CHECK(fit.terms[4].status != TermEstimate::Status::identified);
  // Same rows, same bytes.
  const OverheadFit again = fit_overhead(calm, ls);
  for (std::size_t j = 0; j < kTerms; ++j) {
    CHECK(again.terms[j].value_s == fit.terms[j].value_s);
    CHECK(again.terms[j].low_s == fit.terms[j].low_s);
    CHECK(again.terms[j].high_s == fit.terms[j].high_s);
  }
}

TEST_CASE("collinear counts are not identified and name their combination", "[overhead-fit]") {
  auto rows = synthetic_rows({2e-3, 100e-6, 800e-6, 1e-6, 0.0}, 1000, 0.05, 0);
  for (auto& r : rows) r.x[4] = r.x[1] + r.x[2];  // every prompt ends in the step that starts it
  std::array<std::string, kTerms> why;
  const auto keep = identifiable_columns(rows, &why);
  CHECK(keep[0]);
  CHECK(keep[3]);
  CHECK_FALSE(keep[4]);
  CHECK(why[4].find("sampled tokens = decodes + prefill sequences in every row") != std::string::npos);
}

TEST_CASE("a term the bound holds at 0 while the rows ask for a negative value is not identified", "[overhead-fit]") {
  // Each step holds one sequence (prefill sequences = 1 - decodes) and prefill steps are slower: with
  // per_prefill_seq collinear, per_decode_seq would have to be negative.
  std::vector<StepRow> rows;
  for (std::size_t i = 0; i < 400; ++i) {
    const bool prefill = i % 10 == 0;
    StepRow r;
    r.x = {1.0, prefill ? 0.0 : 1.0, prefill ? 1.0 : 0.0, prefill ? double(100 + i) : 0.0, 1.0};
    r.gpu_s = 1e-3;
    r.steps = 1;
    r.measured_s = r.gpu_s + (prefill ? 5e-3 : 3.1e-3) * (1.0 + 0.02 * std::sin(double(i)));
    rows.push_back(r);
  }
  FitOptions ls;
  ls.huber = false;
  ls.resamples = 50;
  const OverheadFit fit = fit_overhead(rows, ls);
  CHECK(fit.terms[2].status == TermEstimate::Status::not_identified);
  CHECK(fit.terms[2].why.find("prefill sequences = 1 - decodes") != std::string::npos);
  CHECK(fit.terms[1].status == TermEstimate::Status::not_identified);
  CHECK(fit.terms[1].why.find("held at 0 by the bound") != std::string::npos);
}

TEST_CASE("the jitter fit recovers a lognormal sigma and the stalls", "[overhead-fit]") {
  const TermVector terms = {2e-3, 100e-6, 800e-6, 1e-6, 0.0};
  const auto rows = synthetic_rows(terms, 5000, 0.2, 100);
  const Stalls stalls = find_stalls(rows, terms);
  const JitterFit j = fit_jitter(rows, terms, stalls);
  CHECK(j.spec.kind == StepJitterSpec::Kind::lognormal);
  CHECK(j.spec.sigma == Approx(0.2).epsilon(0.05));
  CHECK(j.spec.stall_probability == Approx(0.01).epsilon(0.1));
  CHECK(j.stalls == 50);
  CHECK(j.mean_ratio == Approx(1.0).epsilon(0.01));
}

TEST_CASE("a two-peaked jitter gets an empirical table of mean 1", "[overhead-fit]") {
  const TermVector terms = {2e-3, 100e-6, 800e-6, 1e-6, 0.0};
  auto rows = synthetic_rows(terms, 4000, 0.02, 0);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i].measured_s *= i % 2 ? 0.8 : 1.2;
  const JitterFit j = fit_jitter(rows, terms, find_stalls(rows, terms));
  REQUIRE(j.spec.kind == StepJitterSpec::Kind::empirical);
  CHECK(j.ks_lognormal > j.ks_critical);
  REQUIRE(j.spec.factors.size() == kJitterQuantiles);
  double mean = 0;
  for (std::size_t k = 0; k + 1 < kJitterQuantiles; ++k) {
    mean += 0.5 * (j.spec.factors[k] + j.spec.factors[k + 1]) / double(kJitterQuantiles - 1);
  }
  CHECK(mean == Approx(1.0).epsilon(1e-9));
  CHECK(j.spec.factors[kJitterQuantiles / 4] == Approx(0.8).epsilon(0.03));
  CHECK(j.spec.factors[3 * kJitterQuantiles / 4] == Approx(1.2).epsilon(0.03));
}

TEST_CASE("slow phases that line up with the load do not become a per-sequence cost", "[overhead-fit]") {
  // A run's successive steps: the decode count drifts up and down by one; the engine runs 1.6x slower during the
  // middle third of the run, when the batch is largest. The planted per-sequence cost is 100 us, 160 us in the
  // slow phase (the phase multiplies the whole step).
  const TermVector planted = {20e-3, 100e-6, 0.0, 0.0, 0.0};
  RandomEngine rng = make_stream(11, "test/phases");
  boost::random::uniform_01<double> u;
  boost::random::normal_distribution<double> z;
  std::vector<StepRow> rows;
  double t = 0, decodes = 5;
  const std::size_t n = 3000;
  for (std::size_t i = 0; i < n; ++i) {
    const double target = i < n / 3 ? 5.0 : (i < 2 * n / 3 ? 40.0 : 10.0);
    decodes = std::max(1.0, decodes + (u(rng) < 0.5 ? 1.0 : -1.0) + (target > decodes ? 0.2 : -0.2));
    decodes = std::round(decodes);
    StepRow r;
    r.x = {1.0, decodes, 0.0, 0.0, decodes};
    r.gpu_s = 2e-3;
    r.steps = 1;
    const double phase = (i >= n / 3 && i < 2 * n / 3) ? 1.6 : 1.0;
    r.measured_s = (r.gpu_s + r.overhead(planted)) * phase * std::exp(0.03 * z(rng));
    r.start_s = t;
    t += r.measured_s;
    r.end_s = t;
    rows.push_back(r);
  }
  FitOptions levels;
  levels.huber = false;
  levels.differences = false;
  levels.resamples = 50;
  const OverheadFit biased = fit_overhead(rows, levels);
  // Within a phase the cost per sequence is 100 us (fast) or 160 us (slow): the levels fit lands above both.
  CHECK(biased.terms[1].value_s > 1.6 * planted[1]);
  FitOptions diff = levels;
  diff.differences = true;
  const OverheadFit fit = fit_overhead(rows, diff);
  CHECK(fit.by_differences);
  CHECK(fit.rho == 1.0);
  INFO(fit.terms[1].value_s << " [" << fit.terms[1].low_s << ", " << fit.terms[1].high_s << "]");
  CHECK(fit.terms[1].low_s <= 1.6 * planted[1]);  // the interval meets the phases' range
  CHECK(fit.terms[1].high_s >= planted[1]);
  CHECK(fit.terms[1].value_s < 0.8 * biased.terms[1].value_s);
  // per_step carries the phases' mean, so the model stays the rows' mean.
  double measured = 0, predicted = 0;
  for (const auto& r : rows) {
    measured += r.measured_s;
    predicted += r.gpu_s + r.overhead(fit.values());
  }
  CHECK(predicted == Approx(measured).epsilon(1e-6));
}
