// servesim run SCENARIO [--set path=VALUE]... [--seed N] [--out DIR] [--tokens-out FILE]
//               [--trace FILE.json [--trace-sample N]] [--timeseries FILE.csv [--timeseries-interval S]]
//               [--link-stats FILE.csv [--link-stats-interval S]]
#include <charconv>
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>

#include "models/common/error.h"
#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/cli/run_sinks.h"
#include "sim/metrics/summary.h"
#include "sim/metrics/timeseries_writer.h"
#include "sim/metrics/trace_writer.h"

namespace servesim {

void ScenarioArgs::add_to(CLI::App* cmd, bool with_seed) {
  cmd->add_option("scenario", path, "scenario TOML file")->required();
  cmd->add_option("--calibration", calibrations,
                  "merge this TOML file (e.g. a fit of `calibrate trace`) over the scenario before --set (repeatable)");
  cmd->add_option("--set", sets, "replace the node at a dotted path with VALUE parsed as TOML (path=VALUE)");
  if (with_seed) {
    // Read as text and checked here: CLI11 would wrap "-1" to 2^64 - 1 and saturate 2^64.
    cmd->add_option_function<std::string>(
        "--seed", [this](const std::string& text) { seed = parse_seed(text); },
        "random seed, an integer in [0, 2^64 - 1] (overrides [sim] seed)");
  }
}

std::uint64_t parse_seed(const std::string& text) {
  std::uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) {
    throw InputError("--seed: '" + text + "' is not an integer in [0, 18446744073709551615]");
  }
  return v;
}

ScenarioOptions ScenarioArgs::options() const {
  ScenarioOptions o;
  for (const auto& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError("--set '" + s + "': expected path=VALUE");
    o.sets.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  o.seed = seed;
  o.calibrations = calibrations;
  return o;
}

namespace {

// --trace-sample: an integer >= 1.
std::int64_t parse_trace_sample(const std::string& text) {
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end || v < 1) {
    throw InputError("--trace-sample: '" + text + "' is not an integer >= 1");
  }
  return v;
}

// --timeseries-interval, --link-stats-interval (`flag`): seconds, > 0 and at most the simulated-time limit; at
// least 1 ns.
Ns parse_interval(const std::string& text, const std::string& flag = "--timeseries-interval") {
  double v = 0;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end || !(v > 0) || !(v <= kMaxSimSeconds) ||
      std::llround(v * 1e9) < 1) {
    throw InputError(flag + ": '" + text + "' is not a number of seconds in [1e-9, 1e7]");
  }
  return Ns{static_cast<std::int64_t>(std::llround(v * 1e9))};
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "simulate a scenario and report latency and throughput");
  auto args = std::make_shared<ScenarioArgs>();
  auto out_dir = std::make_shared<std::string>("out");
  auto tokens_out = std::make_shared<std::string>();
  auto trace = std::make_shared<std::string>();
  auto trace_sample = std::make_shared<std::int64_t>(1);
  auto timeseries = std::make_shared<std::string>();
  auto interval = std::make_shared<Ns>(Ns{1'000'000'000});
  auto link_stats = std::make_shared<std::string>();
  auto link_interval = std::make_shared<Ns>(Ns{1'000'000'000});
  auto explain = std::make_shared<ExplainArgs>();
  auto do_explain = std::make_shared<bool>(false);
  args->add_to(cmd, true);
  cmd->add_option("--out", *out_dir, "output directory for summary.json and requests.csv")->capture_default_str();
  cmd->add_option("--tokens-out", *tokens_out,
                  "also write every request's token times as JSONL (the measured-run format of validate)");
  auto* trace_opt = cmd->add_option("--trace", *trace,
                  "also write a timeline as Chrome trace-event JSON (open it in ui.perfetto.dev or chrome://tracing)");
  // Read as text and checked here, so that 0, -1 and 2.5 are errors naming the flag.
  cmd->add_option_function<std::string>(
      "--trace-sample", [trace_sample](const std::string& text) { *trace_sample = parse_trace_sample(text); },
      "keep one request in N in the trace (ids divisible by N), and each replica's steps only while a kept "
      "request is in flight there (default 1: everything)")
      ->needs(trace_opt);
  auto* series_opt = cmd->add_option("--timeseries", *timeseries,
                  "also write queue length, running sequences, KV usage, step time and link utilisation per "
                  "replica at a fixed interval as CSV");
  cmd->add_option_function<std::string>(
      "--timeseries-interval", [interval](const std::string& text) { *interval = parse_interval(text); },
      "the interval of --timeseries in seconds (default 1)")
      ->needs(series_opt);
  auto* links_opt = cmd->add_option("--link-stats", *link_stats,
                  "also write the bytes and utilisation of every link the shared network used (KV transfers, "
                  "replicas whose collectives cross nodes), per interval, as CSV");
  cmd->add_option_function<std::string>(
      "--link-stats-interval", [link_interval](const std::string& text) { *link_interval = parse_interval(text, "--link-stats-interval"); },
      "the interval of --link-stats in seconds (default 1)")
      ->needs(links_opt);
  auto* explain_flag = cmd->add_flag("--explain", *do_explain,
                                     "after the run, explain its tails (as `servesim explain DIR`)");
  cmd->add_flag("--verify", explain->verify,
                "with --explain: re-run with the suggested lever and print the P99 before -> after")
      ->needs(explain_flag);
  cmd->callback([args, out_dir, tokens_out, trace, trace_sample, timeseries, interval, link_stats, link_interval,
                 explain, do_explain] {
    ScenarioOptions opts = args->options();
    opts.allow_pools = true;  // run simulates every pool (aggregated, prefill and decode)
    const ScenarioLoader loader(args->path, opts);
    const Scenario& sc = loader.scenario();
    OutputFiles files;
    if (!tokens_out->empty()) files.expect(*tokens_out);
    if (!trace->empty()) files.expect(*trace);
    if (!timeseries->empty()) files.expect(*timeseries);
    if (!link_stats->empty()) {
      if (!has_shared_network(sc)) throw InputError(no_network_message(args->path));
      files.expect(*link_stats);
    }
    expect_run_outputs(files, *out_dir);
    std::unique_ptr<TraceWriter> trace_writer;
    std::unique_ptr<TimeseriesWriter> series_writer;
    std::vector<RunSink*> sinks;
    if (!trace->empty()) {
      trace_writer = std::make_unique<TraceWriter>(files.stream(*trace), *trace_sample);
      sinks.push_back(trace_writer.get());
    }
    if (!timeseries->empty()) {
      std::int64_t replicas = 0;
      std::int64_t engines = 1;
      for (const PoolSpec& pool : sc.pools) {
        replicas += pool.num_replicas;
        engines = std::max(engines, pool.parallel.pipeline);
      }
      series_writer = std::make_unique<TimeseriesWriter>(files.stream(*timeseries), *interval,
                                                         static_cast<std::int32_t>(replicas),
                                                         static_cast<std::int32_t>(engines));
      sinks.push_back(series_writer.get());
    }
    RunStreams extra;
    extra.sinks = sinks;
    if (!link_stats->empty()) {
      extra.link_stats = &files.stream(*link_stats);
      extra.link_stats_interval = *link_interval;
    }
    const RunOutput out = run_to_files(loader, files, *out_dir, *tokens_out, std::move(extra));
    if (trace_writer) trace_writer->close();
    if (series_writer) series_writer->finish(run_end(out));
    files.commit();
    std::cout << format_summary(out.summary);
    std::cout << "wrote " << *out_dir << "/summary.json and " << *out_dir << "/requests.csv\n";
    if (trace_writer) std::cout << "wrote " << *trace << "\n";
    if (series_writer) std::cout << "wrote " << *timeseries << "\n";
    if (!link_stats->empty()) std::cout << "wrote " << *link_stats << "\n";
    if (*do_explain) {
      ExplainArgs e = *explain;
      e.dir = *out_dir;
      std::cout << "\n";
      explain_command(e);
    }
  });
}

}  // namespace servesim
