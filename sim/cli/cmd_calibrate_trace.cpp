// servesim calibrate trace MEASURED --scenario S [--set ...] [--group-window 20us] [--out FILE]
// Fits the engine's per-step CPU overhead (per step + per request + per token in the batch) to a measured run:
// replays its arrivals and lengths, matches every simulated step to the measured times of the tokens it emitted,
// and regresses measured step durations minus simulated GPU time on the batch shape. Repeats with the fitted
// terms until they settle (the schedule depends on them), then prints them and writes them as TOML.
#include <algorithm>
#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "models/common/error.h"
#include "models/common/quantity_parse.h"
#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/metrics/compare.h"

namespace servesim {

void add_calibrate_trace(CLI::App* calibrate) {
  auto* cmd = calibrate->add_subcommand("trace", "fit the engine overhead to a measured run");
  auto measured = std::make_shared<std::string>();
  auto args = std::make_shared<ScenarioArgs>();
  auto out = std::make_shared<std::string>();
  auto window = std::make_shared<std::string>("20us");
  cmd->add_option("measured", *measured, "measured run: JSONL or vLLM bench serve JSON with details")->required();
  cmd->add_option("--scenario", args->path, "scenario whose engine and hardware replay the run")->required();
  cmd->add_option("--set", args->sets, "replace the node at a dotted path with VALUE parsed as TOML");
  cmd->add_option("--out", *out, "write the fitted [engine.overhead] table to this TOML file");
  cmd->add_option("--group-window", *window,
                  "measured token times this close together count as one step's tokens (default 20us; widen it "
                  "for client-side timestamps that jitter)");
  cmd->callback([=] {
    double group_window = 0;
    try {
      group_window = parse_duration(*window).v;
    } catch (const InputError& e) {
      throw InputError(std::string("--group-window: ") + e.what());
    }
    if (!(group_window > 0) || group_window > 1.0) {
      throw InputError("--group-window: must be above 0 and at most 1s, got '" + *window + "'");
    }
    const auto reqs = read_measured_run(*measured);
    if (reqs.empty()) throw InputError(*measured + ": no requests");
    const double t0 = reqs.front().arrival_s;
    auto replay = [&](const OverheadFit& o) {
      ScenarioOptions opts = replay_options(args->options(), *measured);
      // A negative term is not a schedule: the replay clamps at zero.
      opts.sets.emplace_back("engine.overhead.per_step", fmt::format("{:.12g}", std::max(0.0, o.per_step_s)));
      opts.sets.emplace_back("engine.overhead.per_request", fmt::format("{:.12g}", std::max(0.0, o.per_request_s)));
      opts.sets.emplace_back("engine.overhead.per_token", fmt::format("{:.12g}", std::max(0.0, o.per_token_s)));
      const ScenarioLoader loader(args->path, opts);
      return run_scenario(loader, true);
    };
    const ScenarioLoader initial(args->path, replay_options(args->options(), *measured));
    const auto& ovh = initial.scenario().step_model->overhead();
    OverheadFit fit{ovh.per_step.v, ovh.per_request.v, ovh.per_token.v, 0, 0.0};
    double rms = 0;
    for (int iter = 0; iter < 20; ++iter) {
      const OverheadFit next = fit_overhead(replay(fit).recorder, reqs, fit, group_window);
      const double change = std::abs(next.per_step_s - fit.per_step_s) + std::abs(next.per_request_s - fit.per_request_s) +
                            std::abs(next.per_token_s - fit.per_token_s);
      fit = next;
      rms = token_time_rms(replay(fit).recorder, reqs, t0);
      std::cout << fmt::format("iteration {}: per_step {:.3f} us, per_request {:.4f} us, per_token {:.5f} us "
                               "({} of {} gaps matched, residual {:.3f} us; token-time rms {:.3f} us)\n",
                               iter + 1, fit.per_step_s * 1e6, fit.per_request_s * 1e6, fit.per_token_s * 1e6, fit.rows,
                               fit.candidates,
                               fit.rms_residual_s * 1e6, rms * 1e6);
      if (change < 1e-9) break;
    }
    // The terms a scenario can use: a negative fitted term (noise around zero) is written as zero.
    fit.per_step_s = std::max(0.0, fit.per_step_s);
    fit.per_request_s = std::max(0.0, fit.per_request_s);
    fit.per_token_s = std::max(0.0, fit.per_token_s);
    const std::string toml = fmt::format(
        "# Engine overhead fitted by `servesim calibrate trace` to {} ({} requests, {} gaps in the regression)\n"
        "[engine.overhead]\nper_step = \"{:.4f}us\"\nper_request = \"{:.5f}us\"\nper_token = \"{:.6f}us\"\n",
        *measured, reqs.size(), fit.rows, fit.per_step_s * 1e6, fit.per_request_s * 1e6, fit.per_token_s * 1e6);
    std::cout << toml;
    if (!out->empty()) write_file_atomically(*out, toml);
  });
}

}  // namespace servesim
