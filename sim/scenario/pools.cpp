#include "sim/scenario/pools.h"

#include <algorithm>
#include <array>

#include "models/common/error.h"
#include "models/net/transport.h"
#include "models/net/transport_calibration.h"
#include "sim/cluster/router.h"

namespace servesim {
namespace {

// The keys a pool reads from its view of [parallel] and [engine] (recorded in PoolSpec::places).
constexpr std::array<const char*, 12> kParallelKeys = {
    "tensor_parallel_size", "pipeline_parallel_size", "expert_parallel_size", "data_parallel_size",
    "comm_overlap",         "collective_algo",        "collective_model",     "collective_proto",
    "collective_profile",   "enable_eplb",            "num_redundant_experts",
    "all2all_backend"};
constexpr std::array<const char*, 19> kEngineKeys = {
    "max_num_seqs",     "max_num_batched_tokens",   "enable_chunked_prefill",  "long_prefill_token_threshold",
    "block_size",       "max_model_len",            "allow_long_max_model_len", "num_gpu_blocks_override",
    "gpu_memory_utilization", "kv_cache_dtype",     "activation_reserve",      "scheduler",
    "overhead",         "jitter",                   "front_end",               "enforce_eager",
    "cudagraph_mode",   "cudagraph_capture_sizes",  "max_cudagraph_capture_size"};

bool present(const Config& c, const std::string& key) {
  // keys(), not has(): has() would mark the key as known (and list it as valid in unknown-key messages).
  const auto keys = c.keys();
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// [[cluster.pools]] entries.
void read_pools(const Config& cl, const Config& par, const Config& eng, ClusterSetup& out) {
  if (cl.has("replicas")) cl.fail("replicas", "with [[cluster.pools]], each pool gives its own num_replicas");
  if (par.has("gpus")) {
    par.fail("gpus", "with [[cluster.pools]], each pool lists its own GPUs (cluster.pools[i].parallel.gpus)");
  }
  const std::vector<Config> tables = cl.tables("pools");
  if (tables.empty()) cl.fail("pools", "lists no pool");
  std::int64_t total = 0;
  for (const Config& p : tables) {
    const std::string role_text = p.str("role");
    const auto role = parse_pool_role(role_text);
    if (!role) p.fail("role", "unknown pool role '" + role_text + "' (valid: aggregated, decode, prefill)");
    const std::string name = p.str_or("name", role_text);
    if (name.empty()) p.fail("name", "must not be empty");
    for (const PoolDecl& other : out.pools) {
      if (other.name == name) {
        p.fail(p.has("name") ? "name" : "role", "pool name '" + name + "' is also the name of " + other.table.path() +
                                                    " (give each pool a name of its own)");
      }
    }
    const std::int64_t n =
        p.positive_int_at_most_or("num_replicas", 1, kMaxReplicas, "the limit of replicas in a scenario");
    total += n;
    if (total > kMaxReplicas) {
      p.fail("num_replicas", "the pools have " + std::to_string(total) + " replicas up to this one: at most " +
                                 std::to_string(kMaxReplicas) + " replicas are modelled");
    }
    const std::optional<std::string> gpu = p.str_opt("gpu");
    const Config ppar = p.table_or_empty("parallel");
    if (present(ppar, "topology")) {
      ppar.fail("topology", "the pools share [parallel] topology: name it there (each pool's gpus are on it)");
    }
    const Config peng = p.table_or_empty("engine");
    out.pools.push_back(PoolDecl{true, name, *role, n, p, "num_replicas", gpu, LayeredTable(ppar, par),
                                 LayeredTable(peng, eng), ppar});
  }
  const auto first = [&](PoolRole r) {
    return std::find_if(out.pools.begin(), out.pools.end(), [r](const PoolDecl& d) { return d.role == r; });
  };
  const auto prefill = first(PoolRole::prefill);
  const auto decode = first(PoolRole::decode);
  if (prefill != out.pools.end() && decode == out.pools.end()) {
    prefill->table.fail("role", "a prefill pool hands its requests to a decode pool, and the scenario has none "
                                "(add a [[cluster.pools]] with role = \"decode\")");
  }
  if (decode != out.pools.end() && prefill == out.pools.end()) {
    decode->table.fail("role", "a decode pool takes its requests from a prefill pool, and the scenario has none "
                               "(add a [[cluster.pools]] with role = \"prefill\")");
  }
  if (decode != out.pools.end() && !par.has("topology")) {
    decode->table.fail("role", "prefill and decode pools need [parallel] topology: the KV cache goes from one to "
                               "the other over its links");
  }
}

// [cluster] decode_router and [cluster.kv_transfer]: for a cluster with prefill and decode pools.
void read_disaggregation(const Config& cl, const PathResolver& paths, ClusterSetup& out) {
  const bool disaggregated = std::any_of(out.pools.begin(), out.pools.end(),
                                         [](const PoolDecl& d) { return d.role == PoolRole::decode; });
  const char* only = "applies to a cluster with prefill and decode pools ([[cluster.pools]] role) only";
  if (cl.has("decode_router")) {
    if (!disaggregated) cl.fail("decode_router", only);
    out.decode_router = cl.str("decode_router");
    if (!router_registry().contains(out.decode_router)) {
      cl.fail("decode_router",
              "unknown router '" + out.decode_router + "' (valid: " + router_registry().names() + ")");
    }
  }
  const Config kt = cl.table_or_empty("kv_transfer");
  if (!kt.keys().empty() && !disaggregated) cl.fail("kv_transfer", only);
  const std::string mode = kt.str_or("mode", "after_prefill");
  if (mode == "layer_streamed") {
    out.kv_transfer.mode = KvTransferMode::layer_streamed;
  } else if (mode != "after_prefill") {
    kt.fail("mode", "unknown KV-transfer mode '" + mode + "' (valid: after_prefill, layer_streamed)");
  }
  out.kv_transfer.transport = kt.str_or("transport", "auto");
  if (out.kv_transfer.transport != "auto" && !transport_registry().contains(out.kv_transfer.transport)) {
    kt.fail("transport", "unknown transport '" + out.kv_transfer.transport + "' (valid: auto, " +
                             transport_names_text() + ")");
  }
  out.kv_transfer.transport_place = kt.place("transport");
  if (kt.has("profile")) {
    out.kv_transfer.profile = paths.resolve(kt, "profile");
    try {
      out.kv_transfer.calibration =
          std::make_shared<const TransportCalibration>(TransportCalibration::from_csv(out.kv_transfer.profile));
    } catch (const InputError& e) {
      kt.fail("profile", e.what());
    }
  }
}

}  // namespace

std::string_view to_string(PoolRole role) {
  switch (role) {
    case PoolRole::aggregated: return "aggregated";
    case PoolRole::prefill: return "prefill";
    case PoolRole::decode: return "decode";
  }
  return "aggregated";
}

std::optional<PoolRole> parse_pool_role(std::string_view text) {
  for (const PoolRole r : {PoolRole::aggregated, PoolRole::prefill, PoolRole::decode}) {
    if (text == to_string(r)) return r;
  }
  return std::nullopt;
}

std::string_view to_string(KvTransferMode mode) {
  return mode == KvTransferMode::layer_streamed ? "layer_streamed" : "after_prefill";
}

ErrorPlace PoolSpec::place(const std::string& k) const {
  if (const auto it = places.find(k); it != places.end()) return it->second;
  return ErrorPlace{"", std::nullopt, key.empty() ? k : key + "." + k};
}

ClusterSetup read_cluster(const Config& cl, const Config& par, const Config& eng, const PathResolver& paths) {
  ClusterSetup out;
  out.has_pools = cl.has("pools");
  if (out.has_pools) {
    read_pools(cl, par, eng, out);
  } else {
    const std::int64_t n = cl.positive_int_or("replicas", 1);
    if (n > kMaxReplicas) cl.fail("replicas", "at most " + std::to_string(kMaxReplicas) + " replicas are modelled");
    out.pools.push_back(PoolDecl{false, "aggregated", PoolRole::aggregated, n, cl, "replicas", std::nullopt,
                                 LayeredTable(par), LayeredTable(eng), par});
  }
  read_disaggregation(cl, paths, out);
  return out;
}

PlacementInput placement_input(const PoolDecl& d) {
  return PlacementInput{d.in_pool, d.name, d.parallel, d.num_replicas, d.table, d.count_key, d.parallel_table};
}

BuiltPool build_pool(const PoolDecl& d, const ModelSetup& model, const PoolGpu& gpu,
                     const std::string& predictor_impl, PoolPlacement placement, const Config& sim,
                     const Config& gpu_table, const std::string& gpu_key) {
  PoolSpec p;
  p.name = d.name;
  p.role = d.role;
  p.num_replicas = d.num_replicas;
  p.gpu = gpu.gpu;
  p.arch = model.arch;
  p.parallel = placement.parallel;
  p.predictor_impl = predictor_impl;
  p.replica_gpus = std::move(placement.replica_gpus);
  p.key = d.in_pool ? d.table.path() : "";

  EngineSetup e = read_engine(d.engine, sim, p.arch);
  // vLLM turns CUDA graphs off for DeepEP's high-throughput kernels with data parallelism ("optimized for prefill
  // and incompatible with CUDA Graphs", vllm/config/compilation.py).
  if (p.parallel.data > 1 && p.parallel.all2all_backend == "deepep_high_throughput") {
    e.graphs.mode = CudaGraphMode::none;
    e.graphs.capture_sizes.clear();
    e.graphs.off_reason = "DeepEP high-throughput with data parallelism: vLLM turns CUDA graphs off";
  }
  try {
    for (std::size_t r = 0; r < static_cast<std::size_t>(p.num_replicas); ++r) {
      // Without a topology every replica is one GPU of its own and needs no communication model.
      const auto comm = placement.comms.empty() ? nullptr : placement.comms[r];
      p.step_models.push_back(
          std::make_shared<const StepModel>(p.arch, p.gpu, p.parallel, gpu.predictor, e.overhead, comm,
                                            model.routing, e.graphs));
    }
  } catch (const InputError& err) {
    // "parallel.tensor_parallel_size: 64 attention heads ..." (key() = parallel.tensor_parallel_size): placed at
    // that key where the pool reads it, with its file:line; anything else at tensor_parallel_size.
    const std::string& key = err.key();
    if (key.starts_with("parallel.")) d.parallel.fail(key.substr(9), err.detail());
    d.parallel.fail("tensor_parallel_size", err.detail());
  }
  size_kv_cache(e, d.engine, gpu_table, gpu_key, p.arch, p.gpu, p.parallel, *p.step_models.front());
  p.kv = e.kv;
  p.engine = e.config;
  p.gpu_memory_utilization = e.gpu_memory_utilization;
  p.kv_cache_dtype = e.kv_cache_dtype;
  p.scheduler_impl = e.scheduler_impl;

  if (d.in_pool) {
    for (const char* k : {"name", "role"}) p.places[k] = d.table.place(k);
  }
  p.places["num_replicas"] = d.table.place(d.count_key);
  p.places["gpu"] = gpu_table.place(gpu_key);
  for (const char* k : kParallelKeys) p.places[std::string("parallel.") + k] = d.parallel.place(k);
  p.places["parallel.gpus"] = d.parallel_table.place("gpus");
  for (const char* k : kEngineKeys) p.places[std::string("engine.") + k] = d.engine.place(k);
  return BuiltPool{std::move(p), e.scheduler};
}

}  // namespace servesim
