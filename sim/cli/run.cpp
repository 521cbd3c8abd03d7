#include "sim/cli/run.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/common/error.h"
#include "sim/cluster/cluster.h"
#include "sim/core/simulator.h"
#include "sim/metrics/measured.h"
#include "sim/metrics/summary.h"

namespace servesim {

RunOutput run_scenario(const ScenarioLoader& loader, bool logs) {
  const Scenario& sc = loader.scenario();
  RunOutput out;
  if (logs) out.recorder.enable_logs();
  auto source = loader.make_workload();
  const std::int64_t n = source->num_requests();
  out.recorder.reserve(static_cast<std::size_t>(n));
  // With pipeline parallelism p, a replica runs p micro-batches in flight, as vLLM's virtual engines do: p
  // engines, each with its own scheduler and 1/p of the KV cache, whose steps take the whole pipeline's latency
  // (p stage times + p-1 activation sends). Contention between micro-batches of unequal size is not modelled:
  // the pipeline delivers one micro-batch per stage time.
  const std::int64_t engines = sc.parallel.pipeline;
  ReplicaConfig engine_cfg = sc.replica;
  engine_cfg.num_kv_blocks = sc.replica.num_kv_blocks / engines;
  std::vector<std::unique_ptr<Replica>> replicas;
  for (std::int64_t i = 0; i < sc.num_replicas; ++i) {
    for (std::int64_t v = 0; v < engines; ++v) {
      replicas.push_back(std::make_unique<Replica>(static_cast<std::int32_t>(i), sc.step_model, loader.make_scheduler(),
                                                   engine_cfg, out.recorder));
    }
  }
  const Config router_cfg = loader.config().table_or_empty("router");
  Cluster cluster(std::move(source), router_registry().create(sc.router_impl, "router.impl", router_cfg),
                  std::move(replicas));
  Simulator sim;
  cluster.start(sim);
  out.events = sim.run(sc.horizon);

  RunFacts f;
  f.num_requests = cluster.arrived();
  f.unfinished = cluster.outstanding();
  f.backlog_at_last_arrival = cluster.backlog_at_last_arrival();
  f.output_throughput_bound = sc.output_throughput_bound();
  f.events = out.events;
  f.sim_end_s = ns_to_s(sim.now());
  f.replicas = sc.num_replicas;
  f.engines = sc.num_replicas * sc.parallel.pipeline;
  f.kv_blocks_per_replica = sc.replica.num_kv_blocks;
  f.block_size = sc.replica.block_size;
  out.summary = summarize(out.recorder, f);
  return out;
}

void write_tokens_jsonl(std::ostream& out, const RunOutput& run) {
  std::vector<const RequestRecord*> rows;
  for (const auto& r : run.recorder.records()) rows.push_back(&r);
  std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) { return a->id < b->id; });
  std::vector<MeasuredRequest> reqs;
  const auto& tokens = run.recorder.token_log();
  for (const auto* r : rows) {
    MeasuredRequest m{ns_to_s(r->arrival), r->prompt_tokens, r->output_tokens, {}};
    if (r->id < tokens.size()) {
      for (const Ns t : tokens[r->id].times) m.token_times_s.push_back(ns_to_s(t));
    }
    reqs.push_back(std::move(m));
  }
  write_measured_jsonl(out, reqs);
}

ScenarioOptions replay_options(ScenarioOptions base, const std::string& measured_path) {
  const std::string abs = std::filesystem::absolute(measured_path).lexically_normal().string();
  if (abs.find('\'') != std::string::npos) throw InputError(measured_path + ": path must not contain a quote");
  base.sets.emplace_back("workload", "{arrival={impl=\"measured\", path='" + abs + "'}}");
  return base;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::filesystem::path p(path);
  const std::filesystem::path tmp = p.parent_path() / ("." + p.filename().string() + ".tmp");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw InputError(tmp.string() + ": cannot write");
    f << text;
    if (!f) throw InputError(tmp.string() + ": write failed");
  }
  std::filesystem::rename(tmp, p);
}

void write_outputs(const std::string& dir, const RunOutput& out) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError(dir + ": cannot create output directory (" + ec.message() + ")");
  std::ostringstream csv;
  write_requests_csv(csv, out.recorder);
  const std::string summary = out.summary.dump(2) + "\n";
  write_file_atomically((std::filesystem::path(dir) / "requests.csv").string(), csv.str());
  write_file_atomically((std::filesystem::path(dir) / "summary.json").string(), summary);
}

}  // namespace servesim
