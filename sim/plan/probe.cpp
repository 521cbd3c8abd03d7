#include "sim/plan/probe.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <limits>
#include <string_view>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>

#include "models/common/units.h"
#include "sim/cli/run.h"

namespace servesim {

namespace {

// A TOML basic string holding `s`.
std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// `s` as one shell word: as is when it has only safe characters, else in single quotes.
std::string shell_word(const std::string& s) {
  const bool safe = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || std::string_view("._-/=+:,").find(c) != std::string_view::npos;
  });
  if (safe) return s;
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> point_sets(const PlanSpec& plan, const ProbePoint& p) {
  const CandidateSpec& c = plan.candidates.at(p.candidate);
  std::vector<std::pair<std::string, std::string>> sets = plan.sets;
  sets.emplace_back("hardware.gpu", toml_string(c.gpu));
  sets.emplace_back("parallel.tensor_parallel_size", std::to_string(c.tensor_parallel_size));
  sets.emplace_back("parallel.pipeline_parallel_size", std::to_string(c.pipeline_parallel_size));
  // A topology where it matters: replicas of several GPUs, KV transfers between pools. Single-GPU aggregated
  // replicas need none, and without one any number of them can be placed.
  if (!c.topology.empty() && (c.tensor_parallel_size * c.pipeline_parallel_size > 1 || c.disaggregated())) {
    sets.emplace_back("parallel.topology", toml_string(c.topology));
  }
  if (c.disaggregated()) {
    sets.emplace_back("cluster.pools", fmt::format("[{{name = \"prefill\", role = \"prefill\", num_replicas = {}}}, "
                                                   "{{name = \"decode\", role = \"decode\", num_replicas = {}}}]",
                                                   p.replicas * c.prefill, p.replicas * c.decode));
  } else {
    sets.emplace_back("cluster.replicas", std::to_string(p.replicas));
  }
  for (auto& s : plan.rate.sets(p.rate, p.num_requests)) sets.push_back(std::move(s));
  return sets;
}

std::string run_command(const PlanSpec& plan, const ProbePoint& p) {
  std::string cmd = "servesim run " + shell_word(plan.scenario);
  for (const auto& [key, value] : point_sets(plan, p)) cmd += " --set " + shell_word(key + "=" + value);
  return cmd + " --seed " + std::to_string(p.seed);
}

ProbeMetrics run_point(const PlanSpec& plan, const ProbePoint& p) {
  ScenarioOptions opts;
  opts.sets = point_sets(plan, p);
  opts.seed = p.seed;
  opts.allow_pools = plan.candidates.at(p.candidate).disaggregated();
  const ScenarioLoader loader(plan.scenario, opts);
  const RunOutput out = run_scenario(loader);
  const auto& s = out.summary;
  ProbeMetrics m;
  m.p99_ttft_ms = s.at("p99_ttft_ms").get<double>();
  m.p99_tpot_ms = s.at("p99_tpot_ms").get<double>();
  m.completed = s.at("completed").get<std::int64_t>();
  m.rejected = s.at("servesim").at("rejected").get<std::int64_t>();
  const std::int64_t admitted = m.completed + s.at("servesim").at("unfinished").get<std::int64_t>();
  std::int64_t good = 0;
  for (const RequestRecord r : out.recorder.records()) {
    const double ttft = ns_to_ms(r.first_token - r.arrival);
    const double tpot = r.output_tokens > 1 ? ns_to_ms(r.finish - r.first_token) / double(r.output_tokens - 1) : 0.0;
    if (ttft <= plan.slo.ttft_p99_ms && tpot <= plan.slo.tpot_p99_ms) ++good;
  }
  m.goodput = admitted > 0 ? static_cast<double>(good) / static_cast<double>(admitted) : 0.0;
  return m;
}

ProbeMetrics worst_of(const std::vector<ProbeMetrics>& runs) {
  ProbeMetrics w = runs.at(0);
  w.completed = 0;
  w.rejected = 0;
  for (const ProbeMetrics& m : runs) {
    w.p99_ttft_ms = std::max(w.p99_ttft_ms, m.p99_ttft_ms);
    w.p99_tpot_ms = std::max(w.p99_tpot_ms, m.p99_tpot_ms);
    w.goodput = std::min(w.goodput, m.goodput);
    w.completed += m.completed;
    w.rejected += m.rejected;
  }
  return w;
}

std::string SloVerdict::missed() const {
  std::string s;
  const auto add = [&](bool ok, const char* name) {
    if (!ok) s += (s.empty() ? "" : ", ") + std::string(name);
  };
  add(ttft, "P99 TTFT");
  add(tpot, "P99 TPOT");
  add(goodput, "goodput");
  return s;
}

SloVerdict check_slo(const SloSpec& slo, const ProbeMetrics& m) {
  SloVerdict v;
  v.ttft = m.p99_ttft_ms <= slo.ttft_p99_ms;
  v.tpot = m.p99_tpot_ms <= slo.tpot_p99_ms;
  v.worst_ratio = std::max(m.p99_ttft_ms / slo.ttft_p99_ms, m.p99_tpot_ms / slo.tpot_p99_ms);
  if (slo.goodput) {
    v.goodput = m.goodput >= *slo.goodput;
    v.worst_ratio = std::max(v.worst_ratio, m.goodput > 0 ? *slo.goodput / m.goodput : std::numeric_limits<double>::infinity());
  }
  return v;
}

ParallelFor thread_pool_for(unsigned threads) {
  return [threads](std::size_t n, const std::function<void(std::size_t)>& job) {
    std::vector<std::exception_ptr> errors(n);
    const auto guarded = [&](std::size_t i) {
      try {
        job(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    };
    if (threads <= 1 || n <= 1) {
      for (std::size_t i = 0; i < n; ++i) guarded(i);
    } else {
      boost::asio::thread_pool pool(std::min<std::size_t>(threads, n));
      for (std::size_t i = 0; i < n; ++i) boost::asio::post(pool, [&guarded, i] { guarded(i); });
      pool.join();
    }
    for (const std::exception_ptr& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  };
}

}  // namespace servesim
