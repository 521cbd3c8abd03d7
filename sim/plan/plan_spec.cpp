#include "sim/plan/plan_spec.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "models/common/config.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/units.h"
#include "sim/scenario/catalogs.h"
#include "sim/scenario/scenario.h"
#include "sim/workload/workload.h"

namespace servesim {

namespace fs = std::filesystem;

std::string CandidateSpec::pd_ratio() const {
  return disaggregated() ? std::to_string(prefill) + ":" + std::to_string(decode) : "aggregated";
}

std::string CandidateSpec::label() const {
  std::string s = gpu + " tp" + std::to_string(tensor_parallel_size);
  if (pipeline_parallel_size > 1) s += " pp" + std::to_string(pipeline_parallel_size);
  if (disaggregated()) s += " " + std::to_string(prefill) + "P:" + std::to_string(decode) + "D";
  return s;
}

void parse_pd_ratio(const Config& t, const std::string& key, const std::string& text, CandidateSpec& c) {
  if (text == "aggregated") {
    c.prefill = c.decode = 0;
    return;
  }
  const auto colon = text.find(':');
  const auto number = [](const std::string& x, std::int64_t& v) {
    const auto [p, ec] = std::from_chars(x.data(), x.data() + x.size(), v);
    return !x.empty() && ec == std::errc() && p == x.data() + x.size() && v >= 1 && v <= 4096;
  };
  if (colon == std::string::npos || !number(text.substr(0, colon), c.prefill) ||
      !number(text.substr(colon + 1), c.decode)) {
    t.fail(key, "'" + text + "' is neither \"aggregated\" nor a P:D ratio of prefill to decode replicas (\"1:2\")");
  }
}

std::string toml_float(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // "20" would read back as an integer
  return s;
}

std::vector<std::pair<std::string, std::string>> RateControl::sets(double rate, std::int64_t num_requests) const {
  return {{"workload.num_requests", std::to_string(num_requests)}, {"workload.arrival.rate", toml_float(rate)}};
}

std::int64_t RateControl::max_requests() const { return available > 0 ? available : kMaxRequestsPerRun; }

namespace {

// The base scenario's GPU catalog and arrival process (checked: the planner sets the rate and the replicas), read
// from its document with the plan's `set` applied. The scenario is not built here: its own GPU and parallel sizes
// are replaced by every candidate's (a model that does not fit the base's GPU may fit the candidates'); each
// candidate's first probe loads it whole, and a candidate whose scenario does not load is skipped with the reason.
struct BaseFacts {
  std::shared_ptr<const GpuCatalog> catalog;
  RateControl rate;
};

BaseFacts read_base(const Config& plan, const std::string& scenario,
                    const std::vector<std::pair<std::string, std::string>>& sets) {
  check_input_file(scenario, "scenario", kMaxDocumentBytes);
  Config cfg = Config::from_file(scenario);
  for (const auto& [key, value] : sets) cfg.set(key, value);
  const PathResolver paths{fs::path(scenario).parent_path()};
  if (cfg.table_or_empty("cluster").has("pools")) {
    plan.fail("scenario", scenario + " has [[cluster.pools]]: the planner sizes the fleet itself ([cluster] replicas, "
                                     "or a prefill and a decode pool for a P:D candidate)");
  }
  BaseFacts out;
  const Config hw = cfg.table_or_empty("hardware");
  const std::string catalog =
      hw.has("catalog") ? paths.resolve(hw, "catalog")
                        : (find_data_root(paths.base) / "scenarios/hardware/gpus.toml").string();
  out.catalog = catalogs().gpu_catalog(catalog);
  const Config arrival = cfg.table("workload").table("arrival");
  out.rate.impl = arrival.str("impl");
  if (out.rate.impl != "poisson" && out.rate.impl != "gamma" && out.rate.impl != "trace" &&
      out.rate.impl != "measured") {
    plan.fail("scenario", scenario + ": [workload.arrival] impl '" + out.rate.impl +
                              "' has no rate in requests per second to set (the planner takes poisson, gamma, trace "
                              "or measured)");
  }
  if (arrival.has("time_scale")) {
    plan.fail("scenario", scenario + ": the planner sets [workload.arrival] rate: leave time_scale out");
  }
  out.rate.available = arrival_registry().create(out.rate.impl, arrival.key_path("impl"), arrival, paths)->available();
  return out;
}

// A topology value: a path relative to the plan when such a file exists, else the name as given (a catalogue
// name, or a path the scenario loader reports as missing).
std::string topology_value(const Config& t, const std::string& key, const fs::path& base) {
  const std::string resolved = t.path_value(key, base);
  return fs::exists(resolved) ? resolved : t.str(key);
}

}  // namespace

PlanSpec read_plan(const std::string& path) {
  check_input_file(path, "plan", kMaxDocumentBytes);
  const Config plan = Config::from_file(path);
  const fs::path base = fs::path(path).parent_path();
  PlanSpec p;
  p.file = path;

  p.scenario = plan.path_value("scenario", base);
  if (!fs::is_regular_file(p.scenario)) {
    plan.fail("scenario", "scenario '" + plan.str("scenario") + "' not found (as " + p.scenario + ")");
  }
  if (plan.has("set")) {
    for (const std::string& s : plan.str_list("set")) {
      const auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0) plan.fail("set", "'" + s + "': expected path=VALUE");
      p.sets.emplace_back(s.substr(0, eq), s.substr(eq + 1));
    }
  }
  p.target_rate = plan.positive("target_rate");

  const Config slo = plan.table("slo");
  p.slo.ttft_p99_ms = slo.positive("ttft_p99_ms");
  p.slo.tpot_p99_ms = slo.positive("tpot_p99_ms");
  if (slo.has("goodput")) {
    p.slo.goodput = slo.positive("goodput");
    if (*p.slo.goodput > 1.0) slo.fail("goodput", "is a share of requests: must be in (0, 1]");
  }

  const Config search = plan.table_or_empty("search");
  const std::vector<std::int64_t> seeds = search.integer_list_or("seeds", {1});
  if (seeds.empty()) search.fail("seeds", "lists no seed");
  p.seeds.clear();
  for (const std::int64_t s : seeds) {
    if (s < 0) search.fail("seeds", "must be integers >= 0");
    p.seeds.push_back(static_cast<std::uint64_t>(s));
  }
  p.bisect.rate_min = search.positive_or("rate_min", p.bisect.rate_min);
  p.bisect.rate_max = search.positive_or("rate_max", p.bisect.rate_max);
  if (!(p.bisect.rate_max > p.bisect.rate_min)) {
    search.fail("rate_max", "must be above rate_min (" + toml_float(p.bisect.rate_min) + ")");
  }
  p.bisect.tolerance = search.positive_or("tolerance", p.bisect.tolerance);
  p.bisect.max_probes = search.positive_int_or("max_probes", p.bisect.max_probes);
  if (p.bisect.max_probes < 2) search.fail("max_probes", "must be at least 2 (rate_min and rate_max)");
  p.num_requests =
      search.positive_int_at_most_or("num_requests", p.num_requests, kMaxRequestsPerRun, "the limit of requests per run");
  if (search.has("fleet_num_requests")) {
    p.fleet_num_requests = search.positive_int_at_most("fleet_num_requests", kMaxRequestsPerRun,
                                                       "the limit of requests per run");
  }
  p.max_extra_replicas = search.non_negative_int_or("max_extra_replicas", p.max_extra_replicas);

  const BaseFacts facts = read_base(plan, p.scenario, p.sets);
  p.rate = facts.rate;
  if (p.rate.available > 0) {
    const std::int64_t rows = p.rate.available;
    if (p.num_requests < 2 || p.num_requests > rows) {
      search.fail("num_requests", "the replay has " + std::to_string(rows) + " rows: must be in [2, " +
                                      std::to_string(rows) + "]");
    }
    if (p.fleet_num_requests && (*p.fleet_num_requests < 2 || *p.fleet_num_requests > rows)) {
      search.fail("fleet_num_requests", "the replay has " + std::to_string(rows) + " rows: must be in [2, " +
                                            std::to_string(rows) + "]");
    }
  }

  // Prices and topologies per GPU: every name must be in the catalog.
  const auto check_gpu = [&](const Config& t, const std::string& key, const std::string& name) {
    return facts.catalog->gpu(name, t.where(key) + ": " + t.key_path(key));
  };
  std::map<std::string, double> prices;
  const Config price_table = plan.table_or_empty("prices");
  for (const std::string& g : price_table.keys()) {
    (void)check_gpu(price_table, g, g);
    prices[g] = price_table.positive(g);
  }
  std::map<std::string, std::string> topologies;
  const Config topo_table = plan.table_or_empty("topology");
  for (const std::string& g : topo_table.keys()) {
    (void)check_gpu(topo_table, g, g);
    topologies[g] = topology_value(topo_table, g, base);
  }

  const auto add = [&](const Config& t, const std::string& key, CandidateSpec c, std::optional<double> own_price) {
    const GpuSpec gpu = check_gpu(t, key, c.gpu);
    if (own_price) {
      c.price_per_gpu_hour = *own_price;
    } else if (const auto it = prices.find(c.gpu); it != prices.end()) {
      c.price_per_gpu_hour = it->second;
    } else if (gpu.price_per_gpu_hour_usd) {
      c.price_per_gpu_hour = *gpu.price_per_gpu_hour_usd;
    } else {
      t.fail(key, "gpu '" + c.gpu + "' has no price (no price_per_gpu_hour_usd in the GPU catalog): give one in "
                  "[prices]");
    }
    if (const auto it = topologies.find(c.gpu); it != topologies.end()) c.topology = it->second;
    c.where = t.where(key);
    for (const CandidateSpec& o : p.candidates) {
      if (o.label() == c.label()) {
        t.fail(key, "candidate " + c.label() + " is listed twice (also at " + o.where + ")");
      }
    }
    p.candidates.push_back(std::move(c));
  };
  const auto sizes = [](const Config& t, const std::string& key) {
    const std::vector<std::int64_t> v = t.integer_list_or(key, {1});
    if (v.empty()) t.fail(key, "lists no size: the candidate set is empty");
    for (const std::int64_t x : v) {
      if (x < 1 || x > 65536) t.fail(key, "sizes must be integers in [1, 65536]");
    }
    return v;
  };
  if (plan.has("candidates")) {
    const Config grid = plan.table("candidates");
    const std::vector<std::string> gpus = grid.str_list("gpus");
    if (gpus.empty()) grid.fail("gpus", "lists no GPU: the candidate set is empty");
    const std::vector<std::int64_t> tps = sizes(grid, "tensor_parallel_size");
    const std::vector<std::int64_t> pps = sizes(grid, "pipeline_parallel_size");
    const std::vector<std::string> ratios =
        grid.has("pd_ratios") ? grid.str_list("pd_ratios") : std::vector<std::string>{"aggregated"};
    if (ratios.empty()) grid.fail("pd_ratios", "lists no ratio: the candidate set is empty");
    std::vector<CandidateSpec> shapes;  // the ratios, checked
    for (const std::string& r : ratios) parse_pd_ratio(grid, "pd_ratios", r, shapes.emplace_back());
    for (const std::string& g : gpus) {
      for (const std::int64_t tp : tps) {
        for (const std::int64_t pp : pps) {
          for (const CandidateSpec& shape : shapes) {
            CandidateSpec c = shape;
            c.gpu = g;
            c.tensor_parallel_size = tp;
            c.pipeline_parallel_size = pp;
            add(grid, "gpus", std::move(c), std::nullopt);
          }
        }
      }
    }
  }
  if (plan.has("candidate")) {
    for (const Config& c : plan.tables("candidate")) {
      CandidateSpec spec;
      spec.gpu = c.str("gpu");
      spec.tensor_parallel_size = c.positive_int_or("tensor_parallel_size", 1);
      spec.pipeline_parallel_size = c.positive_int_or("pipeline_parallel_size", 1);
      if (c.has("pd_ratio")) parse_pd_ratio(c, "pd_ratio", c.str("pd_ratio"), spec);
      std::optional<double> own;
      if (c.has("price_per_gpu_hour_usd")) own = c.positive("price_per_gpu_hour_usd");
      add(c, "gpu", std::move(spec), own);
    }
  }
  if (p.candidates.empty()) {
    throw InputError(ErrorPlace{path, std::nullopt, "candidates"},
                     "the candidate set is empty: give [candidates] gpus (x tensor_parallel_size x "
                     "pipeline_parallel_size) or [[candidate]] entries");
  }
  plan.check_unknown();
  return p;
}

}  // namespace servesim
