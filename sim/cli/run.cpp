#include "sim/cli/run.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "models/common/error.h"
#include "models/cost/kv_transfer.h"
#include "models/net/transport.h"
#include "sim/cluster/cluster.h"
#include "sim/cluster/kv_handoff.h"
#include "sim/cluster/step_network.h"
#include "sim/core/simulator.h"
#include "sim/engine/dp_group.h"
#include "sim/io/measured.h"
#include "sim/metrics/link_stats_writer.h"
#include "sim/metrics/summary.h"

namespace servesim {

namespace {

// The configuration keys summary.json reports (vLLM's engine-argument names).
nlohmann::ordered_json run_config(const Scenario& sc) {
  const SchedulerLimits& l = sc.replica.limits;
  std::int64_t replicas = 0;
  for (const PoolSpec& pool : sc.pools) replicas += pool.num_replicas;
  nlohmann::ordered_json c = {{"model", sc.arch.name},
          {"gpu", sc.gpu.name},
          {"topology", sc.topology},
          {"num_replicas", replicas},
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
  if (sc.parallel.enable_eplb) {
    c["enable_eplb"] = true;
    c["num_redundant_experts"] = sc.parallel.num_redundant_experts;
  }
  if (sc.parallel.data > 1) c["all2all_backend"] = sc.parallel.all2all_backend;
  // With several pools, the keys above are pool 0's (num_replicas: all pools'); each pool's own follow.
  if (sc.pools.size() > 1 || sc.disaggregated()) {
    nlohmann::ordered_json pools = nlohmann::ordered_json::array();
    for (const PoolSpec& pool : sc.pools) {
      std::vector<int> gpus;  // on the topology, replica after replica (as the pool's parallel.gpus lists them)
      for (const auto& r : pool.replica_gpus) gpus.insert(gpus.end(), r.begin(), r.end());
      pools.push_back({{"name", pool.name},
                       {"role", std::string(to_string(pool.role))},
                       {"num_replicas", pool.num_replicas},
                       {"gpu", pool.gpu.name},
                       {"tensor_parallel_size", pool.parallel.tensor},
                       {"pipeline_parallel_size", pool.parallel.pipeline},
                       {"max_num_seqs", pool.engine.limits.max_num_seqs},
                       {"max_num_batched_tokens", pool.engine.limits.max_num_batched_tokens},
                       {"num_gpu_blocks", pool.engine.num_kv_blocks},
                       {"block_size", pool.engine.block_size},
                       {"kv_cache_dtype", pool.kv_cache_dtype},
                       {"gpus", gpus}});
      if (pool.kv.groups > 1) pools.back()["kv_cache_groups"] = pool.kv.groups;
      if (pool.parallel.data > 1) {
        pools.back()["data_parallel_size"] = pool.parallel.data;
        pools.back()["expert_parallel_size"] = pool.parallel.expert;
        pools.back()["all2all_backend"] = pool.parallel.all2all_backend;
      }
    }
    c["pools"] = pools;
    if (sc.topo) c["topology_gpus"] = sc.topo->gpu_count();
  }
  return c;
}

// The hand-off of a disaggregated cluster (sim/cluster/kv_handoff.h). Checked before anything runs: a topology
// (the transfers run on its links), no data-parallel attention in a prefill or decode pool, and a transport (the
// forced one, when [cluster.kv_transfer] transport names one) for every GPU pair a transfer would use.
std::unique_ptr<KvHandOff> make_handoff(const Scenario& sc, const ScenarioLoader& loader,
                                        const std::vector<std::vector<int>>& replica_gpus,
                                        const std::vector<KvLayout>& layouts, const std::vector<EngineRole>& roles,
                                        const std::vector<std::unique_ptr<Replica>>& decode, FlowNetwork& network,
                                        RunSink& sink) {
  if (!sc.topo) {
    throw InputError(ErrorPlace{sc.file, std::nullopt, "parallel.topology"},
                     "prefill and decode pools need a topology: their KV transfers run on its links");
  }
  const PoolSpec* prefill_pool = nullptr;
  for (const PoolSpec& pool : sc.pools) {
    if (pool.role == PoolRole::aggregated) continue;
    if (pool.role == PoolRole::prefill && prefill_pool == nullptr) prefill_pool = &pool;
  }
  KvHandOffConfig c;
  c.arch = prefill_pool->arch;
  c.layer_streamed = sc.kv_transfer.mode == KvTransferMode::layer_streamed;
  if (sc.kv_transfer.transport != "auto") c.transport = sc.kv_transfer.transport;
  // A forced transport that cannot carry a pair is the transport key's fault; with "auto", the pools' placement's.
  ErrorPlace where = sc.kv_transfer.transport_place;
  if (!c.transport) {
    for (const PoolSpec& pool : sc.pools) {
      if (pool.role == PoolRole::decode) {
        where = pool.place("parallel.gpus");
        break;
      }
    }
  }
  if (where.key.empty()) where.key = "cluster.kv_transfer.transport";
  c.transport_key = InputError::format(where, "");
  c.transport_key.resize(c.transport_key.size() - 2);  // without the trailing ": "
  c.replica_gpus = replica_gpus;
  c.replica_layout = layouts;
  c.calibration = sc.kv_transfer.calibration;
  std::set<std::pair<int, int>> checked;
  for (std::size_t p = 0; p < roles.size(); ++p) {
    if (roles[p] != EngineRole::prefill) continue;
    for (std::size_t d = 0; d < roles.size(); ++d) {
      if (roles[d] != EngineRole::decode) continue;
      const auto& a = replica_gpus[p];
      const auto& b = replica_gpus[d];
      // Every data-parallel rank's pairs (a sequence lives on one rank on each side).
      for (const KvShard& k : kv_transfer_pairs(c.arch, 1, layouts[p], layouts[d])) {
        for (int sr = 0; sr < layouts[p].dp; ++sr) {
          for (int dr = 0; dr < layouts[d].dp; ++dr) {
            const int from = a.at(layouts[p].gpu(k.sender_stage, sr, k.sender_rank));
            const int to = b.at(layouts[d].gpu(k.receiver_stage, dr, k.receiver_rank));
            if (from == to || !checked.emplace(from, to).second) continue;
            (void)select_transport(*sc.topo, from, to, Bytes{1 << 20}, c.transport, nullptr, std::nullopt,
                                   c.transport_key);
          }
        }
      }
    }
  }
  auto router = router_registry().create(sc.decode_router, "cluster.decode_router",
                                         loader.config().table_or_empty("router"));
  router->start(sc.seed, "decode_router");
  return std::make_unique<KvHandOff>(std::move(c), *sc.topo, network, decode, std::move(router), sink);
}

// summary.json's "disaggregation": the transfer mode and transport, the hand-off counts, KV transfer and decode
// wait (ms over the completed requests that were handed over), and each pool's busy fraction (time in steps over
// the run's simulated time, per engine).
nlohmann::ordered_json disaggregation_summary(const Scenario& sc, const Cluster& cluster, const RunOutput& out,
                                              const RunFacts& f) {
  nlohmann::ordered_json j;
  j["kv_transfer_mode"] = std::string(to_string(sc.kv_transfer.mode));
  j["transport"] = sc.kv_transfer.transport;
  j["decode_router"] = sc.decode_router;
  const HandOffCounts& c = cluster.handoff()->counts();
  j["handed_off"] = c.handed_off;
  j["received"] = c.received;
  std::vector<double> transfer;
  std::vector<double> wait;
  const RecordStore& records = out.recorder.records();
  for (std::size_t i = 0; i < records.size(); ++i) {
    const RequestRecord r = records[i];
    if (r.prefill_replica == r.replica) continue;
    transfer.push_back(ns_to_ms(r.kv_transfer));
    wait.push_back(ns_to_ms(r.decode_wait));
  }
  const auto stats = [](std::vector<double> v) {
    const Stats st = stats_of(std::move(v));
    return nlohmann::ordered_json{{"mean", st.mean}, {"p50", st.median}, {"p99", st.p99}, {"max", st.max}};
  };
  j["kv_transfer_ms"] = stats(transfer);
  j["decode_wait_ms"] = stats(wait);
  nlohmann::ordered_json pools = nlohmann::ordered_json::array();
  std::int32_t next = 0;
  std::map<std::int32_t, const Replica*> by_index;
  for (const auto* list : {&cluster.replicas(), &cluster.decode_replicas()}) {
    for (const auto& r : *list) by_index[r->index()] = r.get();
  }
  for (const PoolSpec& pool : sc.pools) {
    Ns busy{0};
    std::int64_t engines = 0;
    for (std::int64_t i = 0; i < pool.num_replicas; ++i) {
      for (const auto& e : by_index.at(next++)->engines()) {
        busy += e->busy_time();
        ++engines;
      }
    }
    const double span = f.sim_end_s * double(engines);
    pools.push_back({{"name", pool.name},
                     {"role", std::string(to_string(pool.role))},
                     {"replicas", pool.num_replicas},
                     {"gpus", pool.gpus()},
                     {"busy_fraction", span > 0 ? ns_to_s(busy) / span : 0.0}});
  }
  j["pools"] = pools;
  return j;
}

// The inter-node traffic of replica `r` of `pool` when it crosses nodes and [sim] network_contention is on, else
// nullopt (sim/cluster/step_network.h).
std::optional<StepTraffic> crossing_traffic(const Scenario& sc, const PoolSpec& pool, std::size_t r) {
  if (!sc.topo || !sc.network_contention || r >= pool.replica_gpus.size()) return std::nullopt;
  const std::vector<int>& gpus = pool.replica_gpus[r];
  if (sc.topo->nodes_spanned(gpus) < 2) return std::nullopt;
  StepTraffic t(*sc.topo, gpus, pool.parallel, pool.arch);
  if (!t.spans_nodes()) return std::nullopt;
  return t;
}

// Replicas whose communication crosses nodes, over all pools.
std::int64_t spanning_replicas(const Scenario& sc) {
  std::int64_t n = 0;
  for (const PoolSpec& pool : sc.pools) {
    for (std::size_t r = 0; r < pool.replica_gpus.size(); ++r) n += crossing_traffic(sc, pool, r) ? 1 : 0;
  }
  return n;
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
  // The Recorder sees every event first, then the caller's sinks.
  std::optional<SinkFanout> fanout;
  if (!streams.sinks.empty()) {
    std::vector<RunSink*> sinks{&out.recorder};
    sinks.insert(sinks.end(), streams.sinks.begin(), streams.sinks.end());
    fanout.emplace(std::move(sinks));
  }
  RunSink& sink = fanout ? static_cast<RunSink&>(*fanout) : out.recorder;
  // Replicas are numbered over the pools in order; aggregated and prefill replicas take arrivals, decode replicas
  // only hand-offs.
  std::vector<std::unique_ptr<Replica>> entry;
  std::vector<std::unique_ptr<Replica>> decode;
  std::vector<std::vector<int>> replica_gpus;
  std::vector<KvLayout> layouts;
  std::vector<EngineRole> roles;
  std::int64_t engines_total = 0;
  // Replicas whose communication crosses nodes (sim/cluster/step_network.h), with their engines.
  struct Spanning {
    std::int32_t replica;
    std::shared_ptr<const StepModel> model;
    StepTraffic traffic;
    std::vector<Engine*> engines;
    DataParallelGroup* group = nullptr;
  };
  std::vector<Spanning> spanning;
  // Data-parallel attention: one engine per rank, in lockstep (sim/engine/dp_group.h).
  std::vector<std::unique_ptr<DataParallelGroup>> groups;
  for (std::size_t p = 0; p < sc.pools.size(); ++p) {
    const PoolSpec& pool = sc.pools[p];
    const std::int64_t ranks = pool.parallel.data;
    const std::int64_t engines = pool.parallel.pipeline * ranks;
    EngineConfig engine_cfg = pool.engine;
    engine_cfg.defer_itl = sc.horizon != kNever;
    engine_cfg.num_kv_blocks = pool.engine.num_kv_blocks / engines;
    // Every engine here holds its own pool (a data-parallel rank's engine its rank's), which bounds its sequences.
    engine_cfg.kv_blocks_per_rank = 0;
    engine_cfg.seed = sc.seed;
    const EngineRole role = pool.role == PoolRole::prefill  ? EngineRole::prefill
                            : pool.role == PoolRole::decode ? EngineRole::decode
                                                            : EngineRole::aggregated;
    for (std::int64_t i = 0; i < pool.num_replicas; ++i) {
      const auto stages =
          pool.parallel.pipeline > 1 ? std::make_shared<PipelineStages>(pool.parallel.pipeline) : nullptr;
      const auto index = static_cast<std::int32_t>(replica_gpus.size());
      std::vector<std::unique_ptr<Engine>> own;
      for (std::int64_t v = 0; v < engines; ++v) {
        engine_cfg.engine = static_cast<std::int32_t>(v);
        own.push_back(std::make_unique<Engine>(index, pool.step_models[static_cast<std::size_t>(i)],
                                               loader.make_scheduler(p), engine_cfg, sink, stages));
      }
      engines_total += engines;
      DataParallelGroup* group = nullptr;
      if (ranks > 1) {
        std::vector<Engine*> members;
        for (const auto& e : own) members.push_back(e.get());
        groups.push_back(std::make_unique<DataParallelGroup>(members));
        group = groups.back().get();
        for (const auto& e : own) e->attach_group(group);
      }
      if (auto traffic = crossing_traffic(sc, pool, static_cast<std::size_t>(i))) {
        std::vector<Engine*> es;
        for (const auto& e : own) es.push_back(e.get());
        spanning.push_back(Spanning{index, pool.step_models[static_cast<std::size_t>(i)], std::move(*traffic),
                                    std::move(es), group});
      }
      replica_gpus.push_back(pool.replica_gpus.empty() ? std::vector<int>{}
                                                       : pool.replica_gpus[static_cast<std::size_t>(i)]);
      layouts.push_back(KvLayout{static_cast<int>(pool.parallel.tensor), static_cast<int>(pool.parallel.pipeline),
                                 static_cast<int>(pool.parallel.data)});
      roles.push_back(role);
      const EngineEntry entry_policy = ranks > 1 ? EngineEntry::data_parallel_balance : EngineEntry::fewest_outstanding;
      (role == EngineRole::decode ? decode : entry)
          .push_back(std::make_unique<Replica>(index, std::move(own), entry_policy));
    }
  }
  const Config router_cfg = loader.config().table_or_empty("router");
  auto router = router_registry().create(sc.router_impl, "router.impl", router_cfg);
  router->start(sc.seed, "router");
  // The shared flow-level network: KV transfers, and the inter-node traffic of replicas that cross nodes when
  // something else uses the network (KV transfers, or another such replica). Declared before the cluster, which
  // refers to it.
  const bool steps_on_network = !spanning.empty() && (sc.disaggregated() || spanning.size() >= 2);
  std::optional<FlowNetwork> network;
  if (sc.disaggregated() || steps_on_network) network.emplace(transfer_link_capacities(*sc.topo));
  std::optional<StepNetwork> step_network;
  if (steps_on_network) {
    step_network.emplace(*network);
    for (Spanning& s : spanning) {
      step_network->add_replica(s.replica, s.model, std::move(s.traffic));
      if (s.group != nullptr) {
        s.group->attach_network(&*step_network);
      } else {
        for (Engine* e : s.engines) e->attach_network(&*step_network);
      }
    }
  }
  Cluster cluster(std::move(source), std::move(router), std::move(entry), std::move(decode));
  cluster.set_admission(sc.admission, sink);
  if (sc.disaggregated()) {
    cluster.set_handoff(
        make_handoff(sc, loader, replica_gpus, layouts, roles, cluster.decode_replicas(), *network, sink));
    for (const auto* list : {&cluster.replicas(), &cluster.decode_replicas()}) {
      for (const auto& r : *list) {
        const EngineRole role = roles[static_cast<std::size_t>(r->index())];
        if (role == EngineRole::aggregated) continue;
        for (const auto& e : r->engines()) e->attach(cluster.mutable_handoff(), role);
      }
    }
  }
  if (streams.link_stats != nullptr && !network) throw InputError(no_network_message(sc.file));
  Simulator sim;
  std::optional<LinkStatsSampler> links;
  if (streams.link_stats != nullptr) {
    links.emplace(*network, *sc.topo, *streams.link_stats, streams.link_stats_interval);
    if (cluster.mutable_handoff() != nullptr) cluster.mutable_handoff()->observe_network(&*links);
    if (step_network) step_network->observe_network(&*links);
  }
  cluster.start(sim);
  out.events = sim.run(sc.horizon);
  if (links) links->finish(sim.now());
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
  f.replicas = static_cast<std::int64_t>(replica_gpus.size());
  f.engines = engines_total;
  f.kv_blocks_per_replica = sc.replica.num_kv_blocks;
  f.block_size = sc.replica.block_size;
  f.kv_groups = sc.kv.groups;
  f.config = run_config(sc);
  nlohmann::ordered_json sets = nlohmann::ordered_json::array();
  for (const auto& [path, value] : loader.options().sets) sets.push_back(path + "=" + value);
  f.run = {{"scenario", sc.file}, {"sets", sets}, {"seed", sc.seed}};
  if (!loader.options().calibrations.empty()) f.run["calibrations"] = loader.options().calibrations;
  out.summary = summarize(out.recorder, f);
  if (sc.disaggregated()) out.summary["servesim"]["disaggregation"] = disaggregation_summary(sc, cluster, out, f);
  if (step_network) {
    // Replicas whose communication crosses nodes, on the shared network: their steps, the steps contention
    // slowed, the flows they started and the communication time contention added (sim/cluster/step_network.h).
    const StepNetworkCounts& c = step_network->counts();
    out.summary["servesim"]["network"] = {{"replicas_on_network", c.replicas},
                                          {"steps", c.steps},
                                          {"steps_slowed", c.slowed},
                                          {"flows", c.flows},
                                          {"added_communication_ms", ns_to_ms(c.extra)}};
  }
  return out;
}

}  // namespace

bool has_shared_network(const Scenario& sc) { return sc.disaggregated() || spanning_replicas(sc) >= 2; }

std::string no_network_message(const std::string& file) {
  return "--link-stats: " + file +
         " has no prefill and decode pools (no KV transfers) and fewer than two replicas whose communication crosses "
         "nodes, so no shared network";
}

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
