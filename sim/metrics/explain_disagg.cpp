// `servesim explain` for runs with pools (sim/metrics/explain.h): the pools read back from summary.json, the
// decode_wait and kv_transfer diagnoses of a disaggregated run, and the levers that grow a pool.
#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "sim/metrics/explain_internal.h"

namespace servesim::explain_detail {
namespace {

const nlohmann::json& object_at(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (!j.is_object()) return kEmpty;
  const auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

std::int64_t int_at(const nlohmann::json& o, const char* key, std::int64_t dflt) {
  const auto it = o.find(key);
  return it != o.end() && it->is_number() ? static_cast<std::int64_t>(it->get<double>()) : dflt;
}

double num_at(const nlohmann::json& o, const char* key) {
  const auto it = o.find(key);
  return it != o.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::string str_at(const nlohmann::json& o, const char* key, const std::string& dflt) {
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : dflt;
}

// "[8, 9, 10, 11]": a TOML array, as --set takes it.
std::string toml_list(const std::vector<std::int64_t>& v) {
  std::string s;
  for (const auto g : v) s += (s.empty() ? "" : ", ") + std::to_string(g);
  return "[" + s + "]";
}

// "GPU 12", "GPUs 12-15", "GPUs 12-15, 20-23".
std::string gpus_text(const std::vector<std::int64_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    s += (s.empty() ? "" : ", ") + (j == i ? std::to_string(v[i]) : fmt::format("{}-{}", v[i], v[j]));
    i = j + 1;
  }
  return (v.size() == 1 ? "GPU " : "GPUs ") + s;
}

// The lever that gives pool `p` up to `replicas` replicas: its num_replicas and, with a topology, its GPU list
// grown by free groups of gpus_per_replica GPUs aligned to the group size (a TP-4 replica on GPUs 8-11 or 12-15,
// never across an 8-GPU node), those after the pool's last GPU first (its own node first), then from GPU 0.
// Fewer free groups than asked: as many replicas as they hold; none: nullopt.
struct PoolLever {
  std::vector<std::string> sets;
  std::int64_t replicas = 0;
  std::vector<std::int64_t> added;  // the GPUs the new replicas take
};
std::optional<PoolLever> grow_pool(const RunNumbers& n, std::size_t p, std::int64_t replicas) {
  const PoolNumbers& pool = n.pools.at(p);
  const std::string key = fmt::format("cluster.pools[{}]", p);
  PoolLever l;
  if (n.topology_gpus <= 0 || pool.gpus.empty()) {
    if (n.topology_gpus > 0) return std::nullopt;  // a topology whose GPUs summary.json does not list
    l.replicas = replicas;  // no topology: every replica is a GPU of its own
    l.sets = {fmt::format("{}.num_replicas={}", key, replicas)};
    return l;
  }
  std::set<std::int64_t> used;
  for (const PoolNumbers& q : n.pools) used.insert(q.gpus.begin(), q.gpus.end());
  const std::int64_t size = std::max<std::int64_t>(pool.gpus_per_replica(), 1);
  std::vector<std::int64_t> gpus = pool.gpus;
  l.replicas = pool.num_replicas;
  // Groups after the pool's last GPU first (the same node, as far as it has room), then from GPU 0.
  std::vector<std::int64_t> starts;
  const std::int64_t last = *std::max_element(pool.gpus.begin(), pool.gpus.end());
  for (const bool after : {true, false}) {
    for (std::int64_t first = 0; first + size <= n.topology_gpus; first += size) {
      if ((first > last) == after) starts.push_back(first);
    }
  }
  for (const std::int64_t first : starts) {
    if (l.replicas >= replicas) break;
    bool free = true;
    for (std::int64_t g = first; g < first + size; ++g) free = free && used.count(g) == 0;
    if (!free) continue;
    for (std::int64_t g = first; g < first + size; ++g) {
      gpus.push_back(g);
      l.added.push_back(g);
    }
    ++l.replicas;
  }
  if (l.replicas == pool.num_replicas) return std::nullopt;
  l.sets = {fmt::format("{}.num_replicas={}", key, l.replicas),
            fmt::format("{}.parallel.gpus={}", key, toml_list(gpus))};
  return l;
}

// " on GPUs 12-15" ("" without a topology).
std::string where_text(const PoolLever& l) { return l.added.empty() ? "" : " on " + gpus_text(l.added); }

// "; 4 would be, ..." when the free GPUs hold fewer replicas than `target`.
std::string short_text(const PoolLever& l, std::int64_t target) {
  return l.replicas < target ? fmt::format("; {} would be, the topology has no more free GPUs", target) : "";
}

bool in_pool(const RequestRow& r, const PoolNumbers& p) {
  return r.replica >= p.first_replica && r.replica < p.first_replica + p.num_replicas;
}

void diagnose_decode_wait(Explanation& e, const std::vector<RequestRow>& rows) {
  const RunNumbers& n = e.numbers;
  const ComponentGrowth& g = component(e.tpot, "decode_wait");
  // The decode pool whose requests waited longest in all (requests.csv's replica is the decode replica).
  std::optional<std::size_t> d;
  double worst = -1;
  for (std::size_t p = 0; p < n.pools.size(); ++p) {
    if (n.pools[p].role != "decode") continue;
    double wait = 0;
    for (const auto& r : rows) wait += in_pool(r, n.pools[p]) ? r.decode_wait_ms : 0.0;
    if (wait > worst) {
      d = p;
      worst = wait;
    }
  }
  if (!d) {
    diagnose_none(e, fmt::format("TPOT's tail grows most in decode_wait ({} of the growth), but summary.json lists "
                                 "no decode pool to grow.",
                                 pct(g.share)));
    return;
  }
  const PoolNumbers& pool = n.pools[*d];
  // Little's law on blocks: blocks in use = arrival rate x E[blocks held x time held]. A request holds blocks from
  // its reservation (the transfer's start) to its last token; on average about its prompt and half its output.
  double sum = 0;
  std::size_t m = 0;
  for (const auto& r : rows) {
    if (!in_pool(r, pool)) continue;
    const double tokens = double(r.prompt_tokens) + double(r.output_tokens) / 2;
    const double blocks = std::ceil(tokens / double(std::max<std::int64_t>(pool.block_size, 1)));
    const double held_s = (r.kv_transfer_ms + r.decode_ms + r.decode_stall_ms + r.decode_preempted_ms) / 1e3;
    sum += blocks * held_s;
    ++m;
  }
  const double rate = rows.empty() ? 0.0 : n.arrival_rate * double(m) / double(rows.size());
  const double in_use = m > 0 ? rate * sum / double(m) : 0.0;
  const double per_replica = double(std::max<std::int64_t>(pool.num_gpu_blocks, 1));
  const auto need = static_cast<std::int64_t>(std::ceil(in_use / (kTargetUtilisation * per_replica)));
  const std::int64_t target = std::min(kMaxLeverReplicas, std::max(pool.num_replicas + 1, need));
  e.cause = Cause::decode_wait;
  e.metric = "tpot";
  e.component = "decode_wait";
  e.cause_text = fmt::format(
      "Handed-off requests wait for KV blocks on the decode pool '{}' after their first token: the TPOT P99 "
      "cohort waits {:.2f} ms per output token against {:.2f} for the median cohort ({} of the growth). Its {} "
      "replica{} hold{} {} KV blocks of {} tokens each; at {:.2f} requests/s, each holding about its prompt and half "
      "its output from its transfer to its last token, about {:.0f} blocks are in use on average ({} of them; "
      "Little's law), and the pool is busy {} of the time.",
      pool.name, g.p99_ms, g.median_ms, pct(g.share), pool.num_replicas, pool.num_replicas == 1 ? "" : "s",
      pool.num_replicas == 1 ? "s" : "", pool.num_gpu_blocks * pool.num_replicas, pool.block_size, rate, in_use,
      pct(in_use / (per_replica * double(pool.num_replicas))), pct(pool.busy_fraction));
  if (const ComponentGrowth& q = component(e.ttft, "queue"); has_tail(e.ttft) && q.share >= kDominantShare) {
    e.cause_text += fmt::format(" Parked on their prefill replicas with their blocks, the waiting requests also "
                                "hold back admissions there: the TTFT P99 cohort queues {:.1f} ms against {:.1f} ms.",
                                q.p99_ms, q.median_ms);
  }
  if (const auto l = grow_pool(n, *d, target)) {
    e.lever_sets = l->sets;
    e.lever = fmt::format("decode pool '{}' replicas {} -> {}{} (sized for {} of the KV blocks at the arrival "
                          "rate{})",
                          pool.name, pool.num_replicas, l->replicas, where_text(*l), pct(kTargetUtilisation),
                          short_text(*l, target));
  } else if (pool.kv_cache_dtype.rfind("fp8", 0) != 0) {
    e.lever_sets = {fmt::format("cluster.pools[{}].engine.kv_cache_dtype=\"fp8\"", *d)};
    e.lever = fmt::format("decode pool '{}' kv_cache_dtype {} -> fp8 (no free GPUs for another replica; half the "
                          "bytes per cached token: about twice the KV blocks)",
                          pool.name, pool.kv_cache_dtype);
  } else {
    diagnose_none(e, fmt::format("TPOT's tail grows most in decode_wait ({} of the growth): the decode pool '{}' "
                                 "has too few KV blocks, the topology has no free GPUs for another of its replicas "
                                 "and its KV cache is fp8 already (move GPUs from the prefill pool to it).",
                                 pct(g.share), pool.name));
  }
}

void diagnose_kv_transfer(Explanation& e) {
  const RunNumbers& n = e.numbers;
  const ComponentGrowth& g = component(e.tpot, "kv_transfer");
  e.cause = Cause::kv_transfer;
  e.metric = "tpot";
  e.component = "kv_transfer";
  e.cause_text = fmt::format(
      "Handed-off requests wait for their KV cache to move from the prefill to the decode replica: the TPOT P99 "
      "cohort spends {:.2f} ms per output token in the transfer against {:.2f} for the median cohort ({} of the "
      "growth). A transfer takes {:.2f} ms at the median and {:.2f} ms at P99 (transport {}, {}); the client sees "
      "it once, between its first and second token, so short answers pay it over few tokens.",
      g.p99_ms, g.median_ms, pct(g.share), n.kv_transfer_p50_ms, n.kv_transfer_p99_ms, n.transport,
      n.kv_transfer_mode);
  if (n.transport != "auto") {
    e.lever_sets = {"cluster.kv_transfer.transport=\"auto\""};
    e.lever = fmt::format("KV transport {} -> auto (the fastest transport each GPU pair's route supports)",
                          n.transport);
  } else if (n.kv_transfer_mode != "layer_streamed") {
    e.lever_sets = {"cluster.kv_transfer.mode=\"layer_streamed\""};
    e.lever = fmt::format("KV-transfer mode {} -> layer_streamed (each layer's KV leaves as the prefill computes "
                          "it: only the last layer's share is left after the first token)",
                          n.kv_transfer_mode);
  } else {
    diagnose_none(e, fmt::format("TPOT's tail grows most in kv_transfer ({} of the growth): the transfers already "
                                 "take the fastest transport, layer-streamed; what is left is the links' bandwidth "
                                 "and contention, which no setting of this explain changes.",
                                 pct(g.share)));
  }
}

}  // namespace

void read_pool_numbers(const nlohmann::json& servesim, RunNumbers& n) {
  const nlohmann::json& cfg = object_at(servesim, "config");
  n.topology_gpus = int_at(cfg, "topology_gpus", 0);
  const auto pools = cfg.find("pools");
  std::int32_t next = 0;
  if (pools != cfg.end() && pools->is_array()) {
    for (const auto& j : *pools) {
      if (!j.is_object()) continue;
      PoolNumbers p;
      p.name = str_at(j, "name", "");
      p.role = str_at(j, "role", "aggregated");
      p.num_replicas = std::max<std::int64_t>(int_at(j, "num_replicas", 1), 1);
      p.tensor_parallel_size = int_at(j, "tensor_parallel_size", 1);
      p.pipeline_parallel_size = int_at(j, "pipeline_parallel_size", 1);
      p.num_gpu_blocks = int_at(j, "num_gpu_blocks", 0);
      p.block_size = int_at(j, "block_size", 16);
      p.kv_cache_dtype = str_at(j, "kv_cache_dtype", "auto");
      if (const auto g = j.find("gpus"); g != j.end() && g->is_array()) {
        for (const auto& v : *g) {
          if (v.is_number_integer()) p.gpus.push_back(v.get<std::int64_t>());
        }
      }
      p.first_replica = next;
      next += static_cast<std::int32_t>(std::min<std::int64_t>(p.num_replicas, kMaxLeverReplicas));
      n.pools.push_back(std::move(p));
    }
  }
  const auto d = servesim.is_object() ? servesim.find("disaggregation") : servesim.end();
  if (!servesim.is_object() || d == servesim.end() || !d->is_object()) return;
  n.disaggregated = true;
  n.kv_transfer_mode = str_at(*d, "kv_transfer_mode", "after_prefill");
  n.transport = str_at(*d, "transport", "auto");
  const nlohmann::json& kt = object_at(*d, "kv_transfer_ms");
  n.kv_transfer_p50_ms = num_at(kt, "p50");
  n.kv_transfer_p99_ms = num_at(kt, "p99");
  if (const auto busy = d->find("pools"); busy != d->end() && busy->is_array()) {
    for (std::size_t i = 0; i < busy->size() && i < n.pools.size(); ++i) {
      n.pools[i].busy_fraction = num_at((*busy)[i], "busy_fraction");
    }
  }
}

bool disaggregation_tail(const Explanation& e) {
  if (!e.numbers.disaggregated || !has_tail(e.tpot)) return false;
  const ComponentGrowth& g = e.tpot.top();
  return (g.name == "kv_transfer" || g.name == "decode_wait") && g.growth_ms > 0 && g.share >= kDominantShare;
}

void diagnose_disaggregation(Explanation& e, const std::vector<RequestRow>& rows) {
  if (e.tpot.top().name == "decode_wait") {
    diagnose_decode_wait(e, rows);
  } else {
    diagnose_kv_transfer(e);
  }
}

bool queueing_pool_lever(Explanation& e) {
  const RunNumbers& n = e.numbers;
  std::optional<std::size_t> entry;
  for (const char* role : {"prefill", "aggregated"}) {
    for (std::size_t p = 0; p < n.pools.size() && !entry; ++p) {
      if (n.pools[p].role == role) entry = p;
    }
  }
  if (!entry) return false;
  const PoolNumbers& pool = n.pools[*entry];
  std::int64_t target = pool.num_replicas + 1;
  if (n.completion_rate > 0 && n.arrival_rate > 0) {
    const double need = double(pool.num_replicas) * n.arrival_rate / n.completion_rate / kTargetUtilisation;
    target = std::max(target, static_cast<std::int64_t>(std::ceil(need)));
  }
  target = std::min(target, kMaxLeverReplicas);
  const auto l = grow_pool(n, *entry, target);
  if (!l) return false;
  e.lever_sets = l->sets;
  e.lever = fmt::format("{} pool '{}' replicas {} -> {}{} (sized for {} utilisation at the arrival rate{})", pool.role,
                        pool.name, pool.num_replicas, l->replicas, where_text(*l), pct(kTargetUtilisation),
                        short_text(*l, target));
  return true;
}

std::string pools_text(const RunNumbers& n) {
  if (n.pools.empty()) return "";
  std::string s;
  for (const PoolNumbers& p : n.pools) {
    s += fmt::format("{}{} ({}, {} x {} GPU{}{})", s.empty() ? "" : ", ", p.name, p.role, p.num_replicas,
                     p.gpus_per_replica(), p.gpus_per_replica() == 1 ? "" : "s",
                     n.disaggregated ? ", busy " + pct(p.busy_fraction) : "");
  }
  std::string out = "Pools: " + s;
  if (n.disaggregated) {
    out += fmt::format("; KV transfer {}, {}: median {:.2f} ms, P99 {:.2f} ms", n.transport, n.kv_transfer_mode,
                       n.kv_transfer_p50_ms, n.kv_transfer_p99_ms);
  }
  return out + "\n";
}

}  // namespace servesim::explain_detail
