// --verify: the scenario a run came from (summary.json "servesim"."run") and re-running it with the lever of its
// explanation (sim/metrics/explain.h).
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

RunRecipe run_recipe(const nlohmann::json& summary) {
  const auto s = summary.find("servesim");
  if (s == summary.end() || !s->is_object() || !s->contains("run") || !(*s)["run"].is_object()) {
    throw InputError("summary.json: no \"servesim\".\"run\" (the scenario the run came from); give --scenario");
  }
  const auto& run = (*s)["run"];
  RunRecipe r;
  if (!run.contains("scenario") || !run["scenario"].is_string()) {
    throw InputError("summary.json: \"servesim\".\"run\".\"scenario\" is not a string");
  }
  r.scenario = run["scenario"].get<std::string>();
  if (run.contains("sets")) {
    if (!run["sets"].is_array()) throw InputError("summary.json: \"servesim\".\"run\".\"sets\" is not an array");
    for (const auto& v : run["sets"]) {
      if (!v.is_string()) throw InputError("summary.json: \"servesim\".\"run\".\"sets\" holds a non-string");
      r.sets.push_back(v.get<std::string>());
    }
  }
  if (run.contains("calibrations")) {
    if (!run["calibrations"].is_array()) {
      throw InputError("summary.json: \"servesim\".\"run\".\"calibrations\" is not an array");
    }
    for (const auto& v : run["calibrations"]) {
      if (!v.is_string()) throw InputError("summary.json: \"servesim\".\"run\".\"calibrations\" holds a non-string");
      r.calibrations.push_back(v.get<std::string>());
    }
  }
  if (run.contains("seed") && !run["seed"].is_null()) {
    if (!run["seed"].is_number_unsigned()) {
      throw InputError("summary.json: \"servesim\".\"run\".\"seed\" is not a non-negative integer");
    }
    r.seed = run["seed"].get<std::uint64_t>();
  }
  return r;
}

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
