// servesim calibrate trace RUN [RUN...] --scenario S [--calibration F]... [--set ...] [--group-window W]
//                         [--seeds N] [--out FIT.toml] [--json]
//
// Fits the engine's CPU overhead per step (the five [engine.overhead] terms) and its step-time variability
// ([engine.jitter]) to one or more measured runs of one engine, pooled in one regression (different loads
// identify the per-sequence terms):
//  1. per run, the measured token times are grouped into steps with a window from the run's gap histogram
//     (sim/metrics/step_groups.h; --group-window overrides);
//  2. a starting estimate from the measured groups alone (each group's batch read off its tokens), then rows from
//     the scenario's scheduler run on the measured clock (sim/metrics/step_match.h), refitted until the terms
//     settle (they time the steps that emit no token);
//  3. a robust (Huber) fit locates the stalls; the mean model is the non-negative least-squares fit of the other
//     rows, with bootstrap intervals and identification (sim/metrics/overhead_fit.h);
//  4. the jitter and stalls from the residuals (sim/metrics/jitter_fit.h);
//  5. in-sample errors: each run replayed with the fit, jitter on, over --seeds seeds (P50 / P99 TTFT and TPOT).
// Writes FIT.toml, a valid --calibration file. Bad input: one line naming the file, exit 2, nothing written.
#include <algorithm>
#include <filesystem>
#include <cmath>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/quantity_parse.h"
#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/metrics/compare.h"
#include "sim/metrics/validation.h"
#include "sim/metrics/jitter_fit.h"
#include "sim/metrics/overhead_fit.h"
#include "sim/metrics/step_groups.h"
#include "sim/metrics/step_match.h"

namespace servesim {
namespace {

// Passes of schedule + refit at most; they settle in two or three (only steps without tokens depend on them).
constexpr int kMaxPasses = 10;
// In-sample statistics: vLLM's names, and the Stats member each reads.

struct TraceArgs {
  std::vector<std::string> runs;
  ScenarioArgs scenario;
  std::string out;
  std::string window;
  std::int64_t seeds = 3;
  bool json = false;
};

struct RunData {
  std::string path;
  std::vector<MeasuredRequest> reqs;
  GapSplit split;
  double window_s = 0;
  MeasuredSteps groups;
  MatchResult match;
  nlohmann::ordered_json in_sample;
};

// A duration as a scenario value: ms above 1 ms, else us; 0.1 ns resolution.
std::string toml_duration(double s) {
  return s >= 1e-3 ? fmt::format("\"{:.7f}ms\"", s * 1e3) : fmt::format("\"{:.4f}us\"", s * 1e6);
}

std::string terms_line(const TermVector& t) {
  std::string s;
  for (std::size_t j = 0; j < kTerms; ++j) s += fmt::format("{}{} {}", j ? ", " : "", kTermNames[j], format_duration(t[j]));
  return s;
}

// The [engine.overhead] and [engine.jitter] tables as TOML inline tables (for --set) or table bodies.
std::string overhead_toml(const TermVector& t, bool inline_table) {
  std::string s;
  for (std::size_t j = 0; j < kTerms; ++j) {
    s += fmt::format("{}{} = {}{}", inline_table && j ? ", " : "", kTermNames[j], toml_duration(t[j]),
                     inline_table ? "" : "\n");
  }
  return inline_table ? "{" + s + "}" : s;
}

std::string jitter_toml(const StepJitterSpec& j, bool inline_table) {
  std::vector<std::string> kv;
  switch (j.kind) {
    case StepJitterSpec::Kind::none: kv.emplace_back("impl = \"off\""); break;
    case StepJitterSpec::Kind::lognormal:
      kv.emplace_back("impl = \"lognormal\"");
      kv.push_back(fmt::format("sigma = {:.5f}", j.sigma));
      break;
    case StepJitterSpec::Kind::empirical: {
      kv.emplace_back("impl = \"empirical\"");
      std::string f;
      for (const double q : j.factors) f += fmt::format("{}{:.5f}", f.empty() ? "" : ", ", q);
      kv.push_back("factors = [" + f + "]");
      break;
    }
  }
  if (j.kind != StepJitterSpec::Kind::none && j.correlation > 0) {
    kv.push_back(fmt::format("correlation = {:.4f}", j.correlation));
  }
  if (j.stall_probability > 0) {
    kv.push_back(fmt::format("stall_probability = {:.6f}", j.stall_probability));
    kv.push_back("stall_median = " + toml_duration(j.stall_median.v));
    kv.push_back(fmt::format("stall_sigma = {:.4f}", j.stall_sigma));
  }
  std::string s;
  for (const auto& e : kv) s += inline_table ? (s.empty() ? "" : ", ") + e : e + "\n";
  return inline_table ? "{" + s + "}" : s;
}

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// The scenario's one engine, as the schedule needs it. Measured token times do not say which engine produced
// them, so the fit is for one engine without pipeline micro-batches.
ScheduleEngine engine_of(const ScenarioLoader& loader) {
  const Scenario& sc = loader.scenario();
  if (sc.num_replicas != 1 || sc.parallel.pipeline != 1) {
    throw InputError(fmt::format("{}: calibrate trace fits one engine (cluster.replicas = 1, "
                                 "pipeline_parallel_size = 1); the scenario has {} replicas x {} pipeline stages",
                                 sc.file, sc.num_replicas, sc.parallel.pipeline));
  }
  return {sc.step_model, sc.replica, [&loader] { return loader.make_scheduler(); }};
}

std::vector<StepRow> pooled(const std::vector<RunData>& runs) {
  std::vector<StepRow> rows;
  for (const auto& r : runs) rows.insert(rows.end(), r.match.rows.begin(), r.match.rows.end());
  return rows;
}

void check_matched(const RunData& r, bool window_given) {
  if (2 * r.match.rows.size() >= r.match.groups) return;
  const double s = r.split.suggestion_s();
  const std::string band = fmt::format("band {}-{}", r.split.band_low_s > 0 ? format_duration(r.split.band_low_s) : "ties",
                                       format_duration(r.split.band_high_s));
  const std::string hint =
      s > 0 ? fmt::format("its gap histogram suggests --group-window {} ({}{})", format_duration(s), band,
                          r.split.separated ? "" : fmt::format(", narrower than x{:.0f}", kMinBandRatio))
            : "its gap histogram has no empty band to suggest a window from";
  throw InputError(fmt::format(
      "{}: only {} of {} measured step gaps matched the scenario's schedule (under half) with the step window {}{}; "
      "{}{}",
      r.path, r.match.rows.size(), r.match.groups, format_duration(r.window_s),
      window_given ? " (--group-window)" : " (from the gap histogram)", hint,
      window_given ? "" : "; if that is the window, check that the scenario's engine limits (max_num_seqs, "
                          "max_num_batched_tokens, block_size) are the measured engine's"));
}

// The run replayed with the fit, jitter on, one replay per seed: P50 / P99 TTFT and TPOT, measured vs predicted.
nlohmann::ordered_json in_sample(const TraceArgs& a, const RunData& r, const TermVector& terms,
                                 const StepJitterSpec& jitter) {
  std::vector<MetricStats> predicted;
  for (std::int64_t seed = 1; seed <= a.seeds; ++seed) {
    ScenarioOptions o = replay_options(a.scenario.options(), r.path);
    o.sets.emplace_back("engine.overhead", overhead_toml(terms, true));
    o.sets.emplace_back("engine.jitter", jitter_toml(jitter, true));
    o.sets.emplace_back("sim.jitter", "\"on\"");
    o.seed = static_cast<std::uint64_t>(seed);
    const ScenarioLoader loader(a.scenario.path, o);
    predicted.push_back(stats_of_run(run_scenario(loader).recorder));
  }
  // The same comparison as `servesim validate` (mean over the seeds), four of its figures.
  const RunValidation v = compare_run(r.path, r.reqs.size(), 0, stats_of_measured(r.reqs), predicted);
  nlohmann::ordered_json out;
  for (const auto& [key, c] : v.metrics) {
    if (key != "median_ttft_ms" && key != "p99_ttft_ms" && key != "median_tpot_ms" && key != "p99_tpot_ms") continue;
    auto value = [](const std::optional<double>& x) { return x ? nlohmann::json(*x) : nlohmann::json(); };
    out[key] = {{"measured", value(c.measured)}, {"predicted", value(c.predicted)}, {"error_pct", value(c.error_pct)}};
  }
  return out;
}

std::string fit_file_text(const TraceArgs& a, const std::vector<RunData>& runs, const OverheadFit& fit,
                          const JitterFit& jit) {
  std::string s = fmt::format("# Fitted by `servesim calibrate trace` with scenario {}\n", a.scenario.path);
  s += "# runs (requests; step window; measured steps matched; gaps in the fit):\n";
  for (const auto& r : runs) {
    s += fmt::format("#   {} ({}; {}; {} of {}; {}, {} from an idle engine)\n", r.path, r.reqs.size(),
                     format_duration(r.window_s), r.match.matched, r.match.groups, r.match.rows.size(),
                     r.match.idle_starts);
  }
  if (fit.by_differences) {
    s += fmt::format("# the mean model, on the {} rows that are not stalls (located by a Huber fit): per-unit terms "
                     "from the\n# quasi-differences y_t - rho y_t-1 of {} pairs of successive steps (rho = {:.3f}, "
                     "Cochrane-Orcutt; Huber), per_step\n# from the rows' mean; terms >= 0, 95 % intervals from {} "
                     "bootstrap resamples of the pairs\n[engine.overhead]\n",
                     fit.rows, fit.difference_pairs, fit.rho, fit.resamples);
  } else {
    s += fmt::format("# the mean model: relative least squares on the {} rows that are not stalls (located by a "
                     "Huber fit),\n# terms >= 0, 95 % intervals from {} bootstrap resamples\n[engine.overhead]\n",
                     fit.rows, fit.resamples);
  }
  const TermVector v = fit.values();
  for (std::size_t j = 0; j < kTerms; ++j) {
    const TermEstimate& t = fit.terms[j];
    s += fmt::format("{} = {}  # {}", kTermNames[j], toml_duration(v[j]), status_name(t.status));
    if (t.status == TermEstimate::Status::identified) {
      s += fmt::format(", 95 % [{}, {}]", format_duration(t.low_s), format_duration(t.high_s));
    } else {
      s += ": " + t.why;
    }
    s += "\n";
  }
  s += fmt::format("# {} stalls in {} steps (measured / predicted above {:.3f}); jitter from {} one-step rows, mean "
                   "ratio {:.4f};\n# lognormal sigma {:.4f}; {}\n[engine.jitter]\n",
                   jit.stalls, jit.steps, jit.stall_cutoff, jit.rows, jit.mean_ratio, jit.lognormal_sigma, jit.note);
  return s + jitter_toml(jit.spec, false);
}

void run_trace(const TraceArgs& a) {
  const bool window_given = !a.window.empty();
  double window = 0;
  if (window_given) {
    try {
      window = parse_duration(a.window).v;
    } catch (const InputError& e) {
      throw InputError(std::string("--group-window: ") + e.what());
    }
    if (!(window > 0) || window > 1.0) throw InputError("--group-window: must be above 0 and at most 1s, got '" + a.window + "'");
  }
  if (a.seeds < 1 || a.seeds > 100) throw InputError("--seeds: must be between 1 and 100");
  OutputFiles files;
  if (!a.out.empty()) files.expect(a.out);
  // Everything is printed at the end: a run that fails prints its one error line only.
  std::ostringstream log;

  std::vector<RunData> runs;
  for (const auto& path : a.runs) {
    RunData r;
    r.path = path;
    check_input_file(path, "measured run");
    r.reqs = read_measured_run(path);
    if (r.reqs.empty()) throw InputError(path + ": no requests");
    r.split = choose_group_window(r.reqs);
    r.window_s = window_given ? window : r.split.window_s;
    r.groups = group_tokens(r.reqs, r.window_s);
    runs.push_back(std::move(r));
  }
  // The engine (GPU times, limits, scheduler) from the scenario with the first run as its workload; the mean
  // model (jitter off) throughout the fit.
  ScenarioOptions opts = replay_options(a.scenario.options(), runs.front().path);
  opts.sets.emplace_back("sim.jitter", "\"off\"");
  const ScenarioLoader loader(a.scenario.path, opts);
  const ScheduleEngine engine = engine_of(loader);
  // Every run is replayed with this engine: a request it would reject is refused now, naming its run.
  for (const auto& r : runs) check_fits_max_model_len(r.reqs, loader.scenario().replica.max_model_len, r.path);

  // Start: the measured groups alone (no schedule).
  std::vector<StepRow> rows;
  for (const auto& r : runs) {
    const MatchResult d = direct_rows(r.reqs, r.groups, engine);
    rows.insert(rows.end(), d.rows.begin(), d.rows.end());
  }
  // Too few groups to fit (a window that merges steps): the scenario's terms start, and the matching says why.
  TermVector terms = from_overhead(engine.model->overhead());
  if (rows.size() >= kTerms + 2) terms = robust_fit(rows, identifiable_columns(rows));
  if (!a.json) log << fmt::format("start (measured groups alone, {} gaps): {}\n", rows.size(), terms_line(terms));
  for (int pass = 1; pass <= kMaxPasses; ++pass) {
    for (auto& r : runs) r.match = match_steps(r.reqs, r.groups, engine, terms, r.window_s);
    rows = pooled(runs);
    if (rows.size() < kTerms + 2) break;
    const TermVector next = robust_fit(rows, identifiable_columns(rows));
    double change = 0, size = 0;
    for (std::size_t j = 0; j < kTerms; ++j) {
      change = std::max(change, std::abs(next[j] - terms[j]));
      size = std::max(size, std::abs(next[j]));
    }
    terms = next;
    if (!a.json) log << fmt::format("pass {} ({} gaps): {}\n", pass, rows.size(), terms_line(terms));
    if (change <= 1e-6 * size) break;
  }
  for (const auto& r : runs) check_matched(r, window_given);

  // The robust fit locates the stalls; the mean model is refitted without them (least squares: the simulator
  // multiplies it by a jitter factor of mean 1, so it must be the mean, not the robust centre).
  const TermVector robust = robust_fit(rows, identifiable_columns(rows));
  const Stalls stalls = find_stalls(rows, robust);
  std::vector<StepRow> calm;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!stalls.stall[i]) calm.push_back(rows[i]);
  }
  FitOptions mean_fit;
  mean_fit.huber = false;
  const OverheadFit fit = fit_overhead(calm, mean_fit);
  const JitterFit jit = fit_jitter(rows, fit.values(), stalls);
  if (!a.json) {
    log << fmt::format("robust fit (Huber, {} gaps): {}; {} stalls set aside (measured / predicted above {:.3f})\n",
                       rows.size(), terms_line(robust), stalls.count, stalls.cutoff_ratio);
  }
  for (auto& r : runs) r.in_sample = in_sample(a, r, fit.values(), jit.spec);
  const std::string toml = fit_file_text(a, runs, fit, jit);

  if (a.json) {
    nlohmann::ordered_json j;
    j["runs"] = nlohmann::json::array();
    for (const auto& r : runs) {
      j["runs"].push_back({{"measured", r.path},
                           {"requests", r.reqs.size()},
                           {"window_s", r.window_s},
                           {"window_from", window_given ? "--group-window" : "gap histogram"},
                           {"histogram", r.split.describe()},
                           {"steps", r.match.groups},
                           {"steps_matched", r.match.matched},
                           {"gaps_in_fit", r.match.rows.size()},
                           {"idle_starts", r.match.idle_starts},
                           {"in_sample", r.in_sample}});
    }
    j["rows"] = rows.size();
    j["rows_mean_fit"] = fit.rows;
    for (std::size_t t = 0; t < kTerms; ++t) j["robust_terms_s"][kTermNames[t]] = robust[t];
    j["resamples"] = fit.resamples;
    for (std::size_t t = 0; t < kTerms; ++t) {
      const TermEstimate& e = fit.terms[t];
      j["terms"][kTermNames[t]] = {{"value_s", e.value_s}, {"low_s", e.low_s}, {"high_s", e.high_s},
                                   {"status", status_name(e.status)}, {"why", e.why}};
    }
    j["jitter"] = {{"impl", jit.spec.kind == StepJitterSpec::Kind::empirical ? "empirical"
                            : jit.spec.kind == StepJitterSpec::Kind::lognormal ? "lognormal" : "off"},
                   {"sigma", jit.lognormal_sigma},
                   {"factors", jit.table},
                   {"stall_probability", jit.spec.stall_probability},
                   {"stall_median_s", jit.spec.stall_median.v},
                   {"stall_sigma", jit.spec.stall_sigma},
                   {"rows", jit.rows},
                   {"steps", jit.steps},
                   {"stalls", jit.stalls},
                   {"stall_cutoff_ratio", jit.stall_cutoff},
                   {"mean_ratio", jit.mean_ratio},
                   {"ks_lognormal", jit.ks_lognormal},
                   {"ks_empirical", jit.ks_empirical},
                   {"ks_critical", jit.ks_critical},
                   {"note", jit.note}};
    j["seeds"] = a.seeds;
    std::cout << j.dump(2) << "\n";
  } else {
    for (const auto& r : runs) {
      log << fmt::format("{}: {} requests, step window {} ({}), {} of {} measured steps matched, {} gaps in the fit "
                         "({} from an idle engine)\n",
                         r.path, r.reqs.size(), format_duration(r.window_s),
                         window_given ? "--group-window" : "gap histogram: " + r.split.describe(), r.match.matched,
                         r.match.groups, r.match.rows.size(), r.match.idle_starts);
    }
    log << fmt::format("{:<18} {:>12}  {:<26} {}\n", "term", "value", "95 % interval", "status");
    for (std::size_t t = 0; t < kTerms; ++t) {
      const TermEstimate& e = fit.terms[t];
      log << fmt::format("{:<18} {:>12}  {:<26} {}{}\n", kTermNames[t], format_duration(e.value_s),
                         fmt::format("[{}, {}]", format_duration(e.low_s), format_duration(e.high_s)),
                         status_name(e.status), e.why.empty() ? "" : ": " + e.why);
    }
    log << fmt::format("jitter: {} (lognormal sigma {:.4f}); stalls {} in {} steps (p {:.4f}), median {}, sigma "
                       "{:.3f}; mean measured / predicted {:.4f}\n",
                       jit.note, jit.lognormal_sigma, jit.stalls, jit.steps, jit.spec.stall_probability,
                       format_duration(jit.spec.stall_median.v), jit.spec.stall_sigma, jit.mean_ratio);
    log << fmt::format("in-sample (each run replayed with the fit, jitter on, mean of {} seeds): predicted vs "
                       "measured (error)\n", a.seeds);
    log << fmt::format("{:<28} {:>26} {:>26} {:>26} {:>26}\n", "run", "P50 TTFT ms", "P99 TTFT ms", "P50 TPOT ms",
                       "P99 TPOT ms");
    for (const auto& r : runs) {
      std::string line = fmt::format("{:<28}", file_name(r.path));
      for (const char* key : {"median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "p99_tpot_ms"}) {
        const auto& m = r.in_sample[key];
        const std::string err = m["error_pct"].is_null() ? "n/a" : fmt::format("{:+.1f}%", m["error_pct"].get<double>());
        auto ms = [](const nlohmann::ordered_json& x) { return x.is_null() ? std::string("n/a") : fmt::format("{:.1f}", x.get<double>()); };
        line += fmt::format(" {:>26}", fmt::format("{} vs {} ({})", ms(m["predicted"]), ms(m["measured"]), err));
      }
      log << line << "\n";
    }
    if (a.out.empty()) log << toml;
  }
  if (!a.out.empty()) {
    files.add(a.out, toml);
    files.commit();
    if (!a.json) log << "wrote " << a.out << "\n";
  }
  if (!a.json) std::cout << log.str();
}

}  // namespace

void add_calibrate_trace(CLI::App* calibrate) {
  auto* cmd = calibrate->add_subcommand("trace", "fit the engine overhead and step-time jitter to measured runs");
  auto a = std::make_shared<TraceArgs>();
  cmd->add_option("runs", a->runs, "measured runs of one engine (JSONL or vLLM bench serve JSON with details)")
      ->required();
  cmd->add_option("--scenario", a->scenario.path, "scenario whose engine and hardware replay the runs")->required();
  cmd->add_option("--calibration", a->scenario.calibrations,
                  "merge this TOML file (e.g. a fit of `calibrate trace`) over the scenario before --set (repeatable)");
  cmd->add_option("--set", a->scenario.sets, "replace the node at a dotted path with VALUE parsed as TOML (path=VALUE)");
  cmd->add_option("--group-window", a->window,
                  "measured token times this close together are one step's tokens (default: chosen per run from "
                  "its gap histogram)");
  cmd->add_option("--seeds", a->seeds, "replays per run for the in-sample errors (jitter on)")->capture_default_str();
  cmd->add_option("--out", a->out, "write the fitted [engine.overhead] and [engine.jitter] tables to this TOML file");
  cmd->add_flag("--json", a->json, "print the fit as JSON");
  cmd->callback([a] { run_trace(*a); });
}

}  // namespace servesim
