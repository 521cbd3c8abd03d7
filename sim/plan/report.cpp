#include "sim/plan/report.h"

#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "models/common/input_file.h"

namespace servesim {

namespace {

using Status = CandidateResult::Status;
using json = nlohmann::ordered_json;

const char* status_name(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::misses: return "misses";
    case Status::skipped: return "skipped";
  }
  return "skipped";
}

std::string num(double v) { return fmt::format("{}", v); }

std::string ms_text(double ms) {
  if (ms >= 1000.0) return fmt::format("{:.2f} s", ms / 1000.0);
  return fmt::format("{:.1f} ms", ms);
}

std::string slo_ms(double ms) { return ms >= 1000.0 ? fmt::format("{} s", ms / 1000.0) : fmt::format("{} ms", ms); }

std::string metrics_text(const PlanSpec& plan, const ProbeMetrics& m) {
  std::string s = "P99 TTFT " + ms_text(m.p99_ttft_ms) + ", P99 TPOT " + ms_text(m.p99_tpot_ms);
  if (plan.slo.goodput) s += fmt::format(", goodput {:.4f}", m.goodput);
  return s;
}

std::string verdict_text(const PlanSpec& plan, const ProbeMetrics& m) {
  const SloVerdict v = check_slo(plan.slo, m);
  if (v.meets()) return plan.slo.goodput ? "meets every SLO" : "meets both SLOs";
  return "misses " + v.missed();
}

// "h100-sxm tp1 x 2 replicas ($13.76/h)", "h100-sxm tp1 1P:2D x 2 units = 6 replicas ($41.28/h)".
std::string fleet_name(const PlanSpec& plan, std::size_t c, std::int64_t size, double cost) {
  const CandidateSpec& spec = plan.candidates[c];
  if (spec.disaggregated()) {
    return fmt::format("{} x {} unit{} = {} replicas (${:.2f}/h)", spec.label(), size, size == 1 ? "" : "s",
                       size * spec.replicas_per_unit(), cost);
  }
  return fmt::format("{} x {} replica{} (${:.2f}/h)", spec.label(), size, size == 1 ? "" : "s", cost);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Ranks: 1.. for the candidates that meet, in ranking order.
std::map<std::size_t, std::size_t> ranks(const PlanResult& r) {
  std::map<std::size_t, std::size_t> out;
  for (const std::size_t i : r.ranking) {
    if (r.candidates[i].meets) out[i] = out.size() + 1;
  }
  return out;
}

json metrics_json(const ProbeMetrics& m) {
  return json{{"p99_ttft_ms", m.p99_ttft_ms}, {"p99_tpot_ms", m.p99_tpot_ms}, {"goodput", m.goodput},
              {"completed", m.completed},     {"rejected", m.rejected}};
}

ProbeMetrics metrics_of(const json& j) {
  ProbeMetrics m;
  m.p99_ttft_ms = j.at("p99_ttft_ms").get<double>();
  m.p99_tpot_ms = j.at("p99_tpot_ms").get<double>();
  m.goodput = j.at("goodput").get<double>();
  m.completed = j.at("completed").get<std::int64_t>();
  m.rejected = j.at("rejected").get<std::int64_t>();
  return m;
}

}  // namespace

std::string format_plan(const PlanSpec& plan, const PlanResult& result) {
  std::string out = fmt::format("plan {}: {} req/s; SLO P99 TTFT <= {}, P99 TPOT <= {}", plan.file,
                                num(plan.target_rate), slo_ms(plan.slo.ttft_p99_ms), slo_ms(plan.slo.tpot_p99_ms));
  if (plan.slo.goodput) out += fmt::format(", goodput >= {}", *plan.slo.goodput);
  out += fmt::format("; {} candidates; seeds", plan.candidates.size());
  for (std::size_t i = 0; i < plan.seeds.size(); ++i) out += (i ? "," : " ") + std::to_string(plan.seeds[i]);
  out += fmt::format(" (worst seed decides); {} requests a probe\n", plan.num_requests);
  // GPUs and max req/s are a replica's (a unit's of P + D replicas when disaggregated); units and replicas the
  // fleet's: $/h = units x GPUs x $/GPU-h.
  out += fmt::format("{:>4}  {:<22} {:>4} {:>8} {:>10} {:>5} {:>8} {:>8} {:>12} {:>12} {:>8}  {}\n", "rank",
                     "candidate", "GPUs", "$/GPU-h", "max req/s", "units", "replicas", "$/h", "P99 TTFT ms",
                     "P99 TPOT ms", "goodput", "meets");
  const auto rank_of = ranks(result);
  for (const std::size_t i : result.ranking) {
    const CandidateResult& r = result.candidates[i];
    const CandidateSpec& c = plan.candidates[i];
    const std::string rank = rank_of.count(i) ? std::to_string(rank_of.at(i)) : "-";
    out += fmt::format("{:>4}  {:<22} {:>4} {:>8} ", rank, c.label(), c.gpus_per_unit(), num(c.price_per_gpu_hour));
    if (r.status == Status::skipped) {
      out += "skipped: " + r.note + "\n";
      continue;
    }
    if (r.status == Status::misses) {
      out += fmt::format("misses at {} req/s: {}\n", num(plan.bisect.rate_min),
                         metrics_text(plan, r.at_rate_min));
      continue;
    }
    const std::string max_rate = (r.search.capped ? ">=" : "") + fmt::format("{:.2f}", *r.search.max_rate);
    if (r.fleet_runs.empty()) {
      out += fmt::format("{:>10} {}\n", max_rate, r.note);
      continue;
    }
    out += fmt::format("{:>10} {:>5} {:>8} {:>8.2f} {:>12.1f} {:>12.1f} {:>8.4f}  {}\n", max_rate, r.replicas,
                       r.replicas * c.replicas_per_unit(),
                       r.cost_per_hour, r.fleet.p99_ttft_ms, r.fleet.p99_tpot_ms, r.fleet.goodput,
                       r.meets ? "yes" : "no");
  }
  out += "Pareto front (cost, P99 TTFT):";
  for (std::size_t k = 0; k < result.pareto.size(); ++k) {
    const CandidateResult& r = result.candidates[result.pareto[k]];
    out += fmt::format("{} {} x {} (${:.2f}/h, {})", k ? ";" : "", plan.candidates[r.index].label(), r.replicas,
                       r.cost_per_hour, ms_text(r.fleet.p99_ttft_ms));
  }
  out += "\n";
  const CandidateResult& chosen = result.candidates[result.chosen];
  out += fmt::format("chosen: {}: {} at {} req/s: {}\n", fleet_name(plan, chosen.index, chosen.replicas, chosen.cost_per_hour),
                     metrics_text(plan, chosen.fleet), num(plan.target_rate), verdict_text(plan, chosen.fleet));
  if (const auto& ch = result.cheaper) {
    out += "cheaper fleet: " + fleet_name(plan, ch->candidate, ch->replicas, ch->cost_per_hour) + ": ";
    if (!ch->note.empty()) {
      out += "does not load: " + ch->note + "\n";
    } else {
      out += fmt::format("{} at {} req/s: {}\n", metrics_text(plan, ch->metrics), num(plan.target_rate),
                         verdict_text(plan, ch->metrics));
    }
  } else {
    out += fmt::format("cheaper fleet: none (no candidate's fleet costs less than ${:.2f}/h)\n", chosen.cost_per_hour);
  }
  out += "confirm: " + run_command(plan, fleet_points(plan, chosen.index, chosen.replicas).front()) + "\n";
  return out;
}

std::string plan_csv(const PlanSpec& plan, const PlanResult& result) {
  std::string out =
      "rank,candidate,gpu,tensor_parallel_size,pipeline_parallel_size,pd_ratio,gpus_per_unit,price_per_gpu_hour_usd,"
      "status,max_rate_per_unit,max_rate_capped,probes,units,replicas,cost_per_hour_usd,p99_ttft_ms,p99_tpot_ms,goodput,"
      "meets,note\n";
  const auto rank_of = ranks(result);
  for (const std::size_t i : result.ranking) {
    const CandidateResult& r = result.candidates[i];
    const CandidateSpec& c = plan.candidates[i];
    out += fmt::format("{},{},{},{},{},{},{},{},{},", rank_of.count(i) ? std::to_string(rank_of.at(i)) : "",
                       csv_field(c.label()), csv_field(c.gpu), c.tensor_parallel_size, c.pipeline_parallel_size,
                       c.pd_ratio(), c.gpus_per_unit(), num(c.price_per_gpu_hour), status_name(r.status));
    out += r.search.max_rate ? fmt::format("{:.4f},", *r.search.max_rate) : std::string(",");
    out += fmt::format("{},{},", r.search.capped ? "true" : "false", r.search.probes.size());
    if (r.fleet_runs.empty()) {
      out += ",,,,,,";
    } else {
      out += fmt::format("{},{},{:.4f},{:.3f},{:.3f},{:.4f},", r.replicas, r.replicas * c.replicas_per_unit(),
                         r.cost_per_hour, r.fleet.p99_ttft_ms, r.fleet.p99_tpot_ms, r.fleet.goodput);
    }
    out += fmt::format("{},{}\n", r.meets ? "true" : "false", csv_field(r.note));
  }
  return out;
}

std::string pareto_csv(const PlanSpec& plan, const PlanResult& result) {
  std::string out = "candidate,gpu,tensor_parallel_size,pipeline_parallel_size,pd_ratio,units,replicas,"
                    "cost_per_hour_usd,p99_ttft_ms,p99_tpot_ms,goodput\n";
  for (const std::size_t i : result.pareto) {
    const CandidateResult& r = result.candidates[i];
    const CandidateSpec& c = plan.candidates[i];
    out += fmt::format("{},{},{},{},{},{},{},{:.4f},{:.3f},{:.3f},{:.4f}\n", csv_field(c.label()), csv_field(c.gpu),
                       c.tensor_parallel_size, c.pipeline_parallel_size, c.pd_ratio(), r.replicas,
                       r.replicas * c.replicas_per_unit(), r.cost_per_hour, r.fleet.p99_ttft_ms, r.fleet.p99_tpot_ms,
                       r.fleet.goodput);
  }
  return out;
}

std::vector<std::size_t> shard_candidates(std::size_t n, const Shard& s) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < n; ++i) {
    if (in_shard(i, s)) out.push_back(i);
  }
  return out;
}

std::string plan_fingerprint(const PlanSpec& plan) {
  std::string f = fmt::format("target_rate={};slo={},{},{};seeds=", num(plan.target_rate),
                              toml_float(plan.slo.ttft_p99_ms), toml_float(plan.slo.tpot_p99_ms),
                              plan.slo.goodput ? toml_float(*plan.slo.goodput) : "-");
  for (const std::uint64_t s : plan.seeds) f += std::to_string(s) + ",";
  f += fmt::format(";search={},{},{},{},{},{},{}", num(plan.bisect.rate_min), toml_float(plan.bisect.rate_max),
                   toml_float(plan.bisect.tolerance), plan.bisect.max_probes, plan.num_requests,
                   plan.fleet_num_requests ? std::to_string(*plan.fleet_num_requests) : "-", plan.max_extra_replicas);
  for (const auto& [k, v] : plan.sets) f += ";set " + k + "=" + v;
  for (const CandidateSpec& c : plan.candidates) {
    f += ";" + c.label() + " $" + num(c.price_per_gpu_hour) + " " + c.topology;
  }
  return f;
}

std::string plan_part(const PlanSpec& plan, const Shard& s, const std::vector<CandidateResult>& results) {
  json rs = json::array();
  for (const CandidateResult& r : results) {
    json probes = json::array();
    for (const RateProbe& p : r.search.probes) probes.push_back(json::array({p.rate, p.pass}));
    json fleets = json::array();
    for (const FleetRun& f : r.fleet_runs) {
      fleets.push_back(json{{"replicas", f.replicas}, {"meets", f.meets}, {"metrics", metrics_json(f.metrics)}});
    }
    rs.push_back(json{{"index", r.index},
                      {"candidate", plan.candidates[r.index].label()},
                      {"status", status_name(r.status)},
                      {"note", r.note},
                      {"max_rate", r.search.max_rate ? json(*r.search.max_rate) : json(nullptr)},
                      {"capped", r.search.capped},
                      {"probes", probes},
                      {"at_rate_min", metrics_json(r.at_rate_min)},
                      {"fleet_runs", fleets},
                      {"replicas", r.replicas},
                      {"meets", r.meets},
                      {"fleet", metrics_json(r.fleet)},
                      {"cost_per_hour", r.cost_per_hour}});
  }
  const json part{{"servesim_plan_part", 1},
                  {"plan", plan_fingerprint(plan)},
                  {"shard", to_string(s)},
                  {"results", rs}};
  return part.dump(1) + "\n";
}

std::vector<CandidateResult> read_plan_parts(const PlanSpec& plan, const std::vector<std::string>& paths) {
  const std::string fingerprint = plan_fingerprint(plan);
  std::vector<std::optional<CandidateResult>> all(plan.candidates.size());
  std::map<std::int64_t, std::string> shards;  // index -> file
  std::int64_t count = 0;
  for (const std::string& path : paths) {
    const std::string text = read_input_file(path, "plan part");
    try {
      const json part = json::parse(text);
      if (!part.is_object() || part.value("servesim_plan_part", 0) != 1) {
        throw InputError(path + ": not a part file of servesim plan --shard");
      }
      if (part.at("plan").get<std::string>() != fingerprint) {
        throw InputError(path + ": a part of another plan (its target, SLOs, search settings or candidates differ "
                                "from " + plan.file + "'s)");
      }
      const Shard shard = parse_shard(part.at("shard").get<std::string>(), path + ": shard");
      if (count != 0 && shard.count != count) {
        throw InputError(fmt::format("{}: shard {} does not go with {} (of {} shards)", path, to_string(shard),
                                     shards.begin()->second, count));
      }
      count = shard.count;
      if (const auto it = shards.find(shard.index); it != shards.end()) {
        throw InputError(fmt::format("{}: shard {} is also {}", path, to_string(shard), it->second));
      }
      shards[shard.index] = path;
      for (const json& j : part.at("results")) {
        CandidateResult r;
        r.index = j.at("index").get<std::size_t>();
        if (r.index >= all.size() || j.at("candidate").get<std::string>() != plan.candidates[r.index].label() ||
            !in_shard(r.index, shard) || all[r.index]) {
          throw InputError(path + ": a result for candidate " + std::to_string(r.index) + " that is not its shard's");
        }
        const std::string status = j.at("status").get<std::string>();
        r.status = status == "ok" ? Status::ok : status == "misses" ? Status::misses : Status::skipped;
        r.note = j.at("note").get<std::string>();
        if (!j.at("max_rate").is_null()) r.search.max_rate = j.at("max_rate").get<double>();
        r.search.capped = j.at("capped").get<bool>();
        for (const json& p : j.at("probes")) r.search.probes.push_back({p.at(0).get<double>(), p.at(1).get<bool>()});
        r.at_rate_min = metrics_of(j.at("at_rate_min"));
        for (const json& f : j.at("fleet_runs")) {
          r.fleet_runs.push_back({f.at("replicas").get<std::int64_t>(), metrics_of(f.at("metrics")),
                                  f.at("meets").get<bool>()});
        }
        r.replicas = j.at("replicas").get<std::int64_t>();
        r.meets = j.at("meets").get<bool>();
        r.fleet = metrics_of(j.at("fleet"));
        r.cost_per_hour = j.at("cost_per_hour").get<double>();
        all[r.index] = std::move(r);
      }
    } catch (const json::exception& e) {
      throw InputError(path + ": not a part file of servesim plan --shard (" + e.what() + ")");
    }
  }
  std::vector<CandidateResult> out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!all[i]) {
      if (count == 0) throw InputError(plan.file + ": no part given to merge");
      throw InputError(fmt::format("{}: no part holds candidate {} ({}, shard {}): {} of {} shards given", plan.file,
                                   i, plan.candidates[i].label(),
                                   to_string(Shard{static_cast<std::int64_t>(i) % count, count}), shards.size(),
                                   count));
    }
    out.push_back(std::move(*all[i]));
  }
  return out;
}

}  // namespace servesim
