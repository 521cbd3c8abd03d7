// --verify: re-running a run's scenario with the lever of its explanation (sim/metrics/explain.h).
#include "models/common/error.h"
#include "sim/cli/run.h"
#include "sim/scenario/scenario.h"
#include "sim/metrics/explain.h"

namespace servesim {
namespace {

std::pair<std::string, std::string> split_set(const std::string& s) {
  const auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0) throw InputError("set '" + s + "': expected path=VALUE");
  return {s.substr(0, eq), s.substr(eq + 1)};
}

double p99_of(const RunRecipe& recipe, const std::vector<std::string>& extra, const std::string& metric) {
  ScenarioOptions opts;
  for (const auto& s : recipe.sets) opts.sets.push_back(split_set(s));
  for (const auto& s : extra) opts.sets.push_back(split_set(s));
  opts.seed = recipe.seed;
  opts.calibrations = recipe.calibrations;
  opts.allow_pools = true;
  const ScenarioLoader loader(recipe.scenario, opts);
  const RunOutput out = run_scenario(loader, RunStreams{});
  const std::string key = "p99_" + metric + "_ms";
  return out.summary.at(key).get<double>();
}

}  // namespace

Verification verify_lever(const Explanation& e, const RunRecipe& recipe) {
  if (e.cause == Cause::none || e.lever_sets.empty()) {
    throw InputError("explain --verify: no single dominant cause, so no lever to verify");
  }
  Verification v;
  v.metric = e.metric;
  v.sets = e.lever_sets;
  v.before_p99_ms = p99_of(recipe, {}, e.metric);
  v.after_p99_ms = p99_of(recipe, e.lever_sets, e.metric);
  return v;
}

}  // namespace servesim
