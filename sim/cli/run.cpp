#include "sim/cli/run.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

#include "models/common/error.h"
#include "sim/cluster/cluster.h"
#include "sim/core/simulator.h"
#include "sim/io/measured.h"
#include "sim/metrics/summary.h"

namespace servesim {

namespace {

// The configuration keys summary.json reports (vLLM's engine-argument names).
nlohmann::ordered_json run_config(const Scenario& sc) {
  const SchedulerLimits& l = sc.replica.limits;
  return {{"model", sc.arch.name},
          {"gpu", sc.gpu.name},
          {"topology", sc.topology},
          {"num_replicas", sc.num_replicas},
          {"tensor_parallel_size", sc.parallel.tensor},
          {"pipeline_parallel_size", sc.parallel.pipeline},
          {"data_parallel_size", sc.parallel.data},
          {"expert_parallel_size", sc.parallel.expert},
          {"max_num_seqs", l.max_num_seqs},
          {"max_num_batched_tokens", l.max_num_batched_tokens},
          {"enable_chunked_prefill", l.chunked_prefill},
          {"block_size", sc.replica.block_size},
          {"num_gpu_blocks", sc.replica.num_kv_blocks},
          {"kv_cache_dtype", sc.kv_cache_dtype},
          {"gpu_memory_utilization", sc.gpu_memory_utilization}};
}

RunOutput run_impl(const ScenarioLoader& loader, bool logs, const RunStreams& streams) {
  const Scenario& sc = loader.scenario();
  RunOutput out;
  if (logs) out.recorder.enable_logs();
  out.recorder.stream_to(streams.requests_csv, streams.tokens_jsonl);
  auto source = loader.make_workload();
  const std::int64_t n = source->num_requests();
  // With pipeline parallelism p, a replica runs p micro-batches in flight, as vLLM's virtual engines do: p
  // engines, each with its own scheduler and 1/p of the KV cache, whose micro-batches pass the replica's p
  // stages in turn (sim/engine/pipeline.h): one stage time each plus p-1 activation sends, waiting where a stage
  // is still busy with another engine's micro-batch.
  const std::int64_t engines = sc.parallel.pipeline;
  EngineConfig engine_cfg = sc.replica;
  engine_cfg.defer_itl = sc.horizon != kNever;
  engine_cfg.num_kv_blocks = sc.replica.num_kv_blocks / engines;
  engine_cfg.seed = sc.seed;
  // The Recorder sees every event first, then the caller's sinks.
  std::optional<SinkFanout> fanout;
  if (!streams.sinks.empty()) {
    std::vector<RunSink*> sinks{&out.recorder};
    sinks.insert(sinks.end(), streams.sinks.begin(), streams.sinks.end());
    fanout.emplace(std::move(sinks));
  }
  RunSink& sink = fanout ? static_cast<RunSink&>(*fanout) : out.recorder;
  std::vector<std::unique_ptr<Replica>> replicas;
  for (std::int64_t i = 0; i < sc.num_replicas; ++i) {
    const auto stages = engines > 1 ? std::make_shared<PipelineStages>(engines) : nullptr;
    const auto index = static_cast<std::int32_t>(i);
    std::vector<std::unique_ptr<Engine>> own;
    for (std::int64_t v = 0; v < engines; ++v) {
      engine_cfg.engine = static_cast<std::int32_t>(v);
      own.push_back(std::make_unique<Engine>(index, sc.step_models[static_cast<std::size_t>(i)],
                                             loader.make_scheduler(), engine_cfg, sink, stages));
    }
    replicas.push_back(std::make_unique<Replica>(index, std::move(own)));
  }
  const Config router_cfg = loader.config().table_or_empty("router");
  Cluster cluster(std::move(source), router_registry().create(sc.router_impl, "router.impl", router_cfg),
                  std::move(replicas));
  Simulator sim;
  cluster.start(sim);
  out.events = sim.run(sc.horizon);
  out.recorder.finish_streams();
  check_run_accounting(cluster.accounting(static_cast<std::int64_t>(out.recorder.records().size()),
                                          out.recorder.rejected_count()));
  if (cluster.arrived() > 0 && out.recorder.rejected_count() == cluster.arrived()) {
    throw InputError("every request was rejected at admission; the first: " + out.recorder.first_rejection());
  }

  RunFacts f;
  f.num_requests = cluster.arrived();
  f.unfinished = cluster.outstanding();
  // When the horizon stopped the arrivals, the cluster never saw its last arrival: the backlog is what is left.
  f.backlog_at_last_arrival = cluster.arrived() < n ? cluster.outstanding() : cluster.backlog_at_last_arrival();
  f.output_throughput_bound = sc.output_throughput_bound();
  f.events = out.events;
  f.sim_end_s = ns_to_s(sim.now());
  f.replicas = sc.num_replicas;
  f.engines = sc.num_replicas * sc.parallel.pipeline;
  f.kv_blocks_per_replica = sc.replica.num_kv_blocks;
  f.block_size = sc.replica.block_size;
  f.config = run_config(sc);
  nlohmann::ordered_json sets = nlohmann::ordered_json::array();
  for (const auto& [path, value] : loader.options().sets) sets.push_back(path + "=" + value);
  f.run = {{"scenario", sc.file}, {"sets", sets}, {"seed", sc.seed}};
  if (!loader.options().calibrations.empty()) f.run["calibrations"] = loader.options().calibrations;
  out.summary = summarize(out.recorder, f);
  return out;
}

}  // namespace

RunOutput run_scenario(const ScenarioLoader& loader, bool logs) { return run_impl(loader, logs, {}); }

RunOutput run_scenario(const ScenarioLoader& loader, const RunStreams& streams) {
  return run_impl(loader, false, streams);
}

RunOutput run_to_files(const ScenarioLoader& loader, OutputFiles& files, const std::string& dir,
                       const std::string& tokens_out) {
  RunStreams streams;
  streams.requests_csv = &files.stream((std::filesystem::path(dir) / "requests.csv").string());
  if (!tokens_out.empty()) streams.tokens_jsonl = &files.stream(tokens_out);
  RunOutput out = run_scenario(loader, streams);
  files.add((std::filesystem::path(dir) / "summary.json").string(), out.summary.dump(2) + "\n");
  return out;
}

void write_tokens_jsonl(std::ostream& out, const RunOutput& run) {
  const RecordStore& records = run.recorder.records();
  std::vector<MeasuredRequest> reqs;
  const auto& tokens = run.recorder.token_log();
  for (const std::size_t i : records_by_id(records)) {
    const RequestRecord r = records[i];
    MeasuredRequest m{ns_to_s(r.arrival), r.prompt_tokens, r.output_tokens, {}};
    if (r.id < tokens.size()) {
      for (const Ns t : tokens[r.id].times) m.token_times_s.push_back(ns_to_s(t));
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

namespace {

std::filesystem::path temp_of(const std::filesystem::path& p) {
  return p.parent_path() / ("." + p.filename().string() + ".tmp");
}

}  // namespace

OutputFiles::~OutputFiles() { abort(); }

void OutputFiles::abort() noexcept {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (auto& [path, f] : streams_) {
    f.reset();
    fs::remove(temp_of(path), ec);
  }
  streams_.clear();
  for (const auto& [path, text] : files_) fs::remove(temp_of(path), ec);
  files_.clear();
  // Only directories this command created, and only while empty (fs::remove refuses a non-empty one).
  for (const auto& d : created_dirs_) fs::remove(d, ec);
  created_dirs_.clear();
}

void OutputFiles::make_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> missing;
  for (fs::path p = fs::absolute(fs::path(dir), ec).lexically_normal(); !ec && !p.empty() && !fs::exists(p, ec);
       p = p.parent_path()) {
    missing.push_back(p.string());
    if (p == p.parent_path()) break;
  }
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw InputError(dir + ": cannot create output directory" + (ec ? " (" + ec.message() + ")" : ""));
  created_dirs_.insert(created_dirs_.end(), missing.begin(), missing.end());
}

void OutputFiles::expect(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  std::error_code ec;
  if (!p.parent_path().empty()) {
    try {
      make_directory(p.parent_path().string());
    } catch (const InputError&) {
      fs::create_directories(p.parent_path(), ec);
      throw InputError(path + ": cannot create its directory (" + (ec ? ec.message() : "not a directory") + ")");
    }
  }
  if (fs::is_directory(p)) throw InputError(path + ": is a directory");
  const fs::path tmp = temp_of(p);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw InputError(path + ": cannot write here");
  }
  fs::remove(tmp, ec);
}

void OutputFiles::add(const std::string& path, std::string text) { files_.emplace_back(path, std::move(text)); }

std::ostream& OutputFiles::stream(const std::string& path) {
  auto f = std::make_unique<std::ofstream>();
  f->open(temp_of(path), std::ios::binary | std::ios::trunc);
  if (!*f) throw InputError(path + ": cannot write here");
  std::ofstream& ref = *f;
  streams_.emplace_back(path, std::move(f));
  return ref;
}

void OutputFiles::commit() {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (auto& [path, f] : streams_) {
    f->close();
    if (f->fail()) {
      abort();
      throw InputError(path + ": write failed");
    }
  }
  for (const auto& [path, text] : files_) {
    std::ofstream f(temp_of(path), std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (f.fail()) {
      abort();
      throw InputError(path + ": write failed");
    }
  }
  auto rename_all = [&](const auto& list) {
    for (const auto& entry : list) {
      fs::rename(temp_of(entry.first), entry.first, ec);
      if (ec) {
        const std::string msg = entry.first + ": cannot write (" + ec.message() + ")";
        abort();
        throw InputError(msg);
      }
    }
  };
  rename_all(streams_);
  rename_all(files_);
  streams_.clear();
  files_.clear();
  created_dirs_.clear();
}

void write_file_atomically(const std::string& path, const std::string& text) {
  OutputFiles f;
  f.expect(path);
  f.add(path, text);
  f.commit();
}

void expect_run_outputs(OutputFiles& files, const std::string& dir) {
  files.make_directory(dir);
  files.expect((std::filesystem::path(dir) / "requests.csv").string());
  files.expect((std::filesystem::path(dir) / "summary.json").string());
}

}  // namespace servesim
