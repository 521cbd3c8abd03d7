#include "sim/metrics/explain.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "models/common/error.h"
#include "sim/metrics/explain_internal.h"
#include "sim/metrics/summary.h"

namespace servesim {
namespace explain_detail {

std::string pct(double x) { return fmt::format("{:.0f}%", 100.0 * x); }

}  // namespace explain_detail

namespace {

using namespace explain_detail;

// Thresholds of the diagnoses (this module's judgement, not measured constants; kDominantShare and
// kTargetUtilisation are in explain_internal.h):
// The preempted component needs less: preemption also lengthens the queue (freed blocks admit others later).
constexpr double kPreemptionShare = 0.3;
// A full KV cache: its peak usage (sampled at step starts) at 95% of the blocks or more.
constexpr double kKvFull = 0.95;
// A tail worth explaining: the P99 cohort's mean at least 1.5x the median cohort's (a healthy quickstart run stays
// below: its TPOT P99 cohort is ~1.4x its median cohort).
constexpr double kTailRatio = 1.5;
// Communication-bound: collectives take at least 30% of the TPOT P99 cohort's modeled step time.
constexpr double kCommunicationShare = 0.3;
// A backlog, not the scheduling granularity: the TTFT P99 cohort queues for at least 10 mean steps (a request that
// arrives during a long prefill step waits for it to end even on an idle engine).
constexpr double kQueueSteps = 10.0;
// Overloaded: requests arrive at least 10% faster than they complete.
constexpr double kOverloadRatio = 1.1;
// Prefill interference: at least 4 tokens per sequence in the mean step (decodes are 1 token each, so most of the
// step's tokens are prompt chunks), or a P99 cohort whose steps are 5 points more compute-bound than the median's.
constexpr double kPromptTokensPerSeq = 4.0;
constexpr double kComputeShift = 0.05;
// The smallest token budget the interference lever proposes (a quarter of the current one, at least this).
constexpr std::int64_t kMinTokenBudget = 512;
// The cohort band around the median (percentiles).
constexpr double kMedianLo = 45.0, kMedianHi = 55.0;

// One metric's per-request value and its components (ms).
struct Sample {
  double value = 0;
  std::vector<double> parts;
  double communication_share = 0, compute_share = 0;
};

CohortComparison compare(const std::string& metric, const std::vector<std::string>& names,
                         const std::vector<Sample>& samples) {
  CohortComparison c;
  c.metric = metric;
  c.requests = samples.size();
  for (const auto& n : names) c.components.push_back(ComponentGrowth{n});
  if (samples.empty()) return c;
  std::vector<double> sorted;
  sorted.reserve(samples.size());
  for (const auto& s : samples) sorted.push_back(s.value);
  std::sort(sorted.begin(), sorted.end());
  c.median = percentile(sorted, 50.0);
  c.p99 = percentile(sorted, 99.0);
  const double lo = percentile(sorted, kMedianLo), hi = percentile(sorted, kMedianHi);
  std::vector<const Sample*> tail, mid;
  for (const auto& s : samples) {
    if (s.value >= c.p99) tail.push_back(&s);
    if (s.value >= lo && s.value <= hi) mid.push_back(&s);
  }
  if (mid.empty()) {  // few requests: the band falls between two values; take the one nearest the median
    const auto* best = &samples.front();
    for (const auto& s : samples) {
      if (std::abs(s.value - c.median) < std::abs(best->value - c.median)) best = &s;
    }
    mid.push_back(best);
  }
  const auto mean = [](const std::vector<const Sample*>& v, const std::function<double(const Sample&)>& f) {
    double sum = 0;
    for (const auto* s : v) sum += f(*s);
    return sum / double(v.size());
  };
  c.p99_count = tail.size();
  c.median_count = mid.size();
  c.p99_mean = mean(tail, [](const Sample& s) { return s.value; });
  c.median_mean = mean(mid, [](const Sample& s) { return s.value; });
  c.p99_communication_share = mean(tail, [](const Sample& s) { return s.communication_share; });
  c.median_communication_share = mean(mid, [](const Sample& s) { return s.communication_share; });
  c.p99_compute_share = mean(tail, [](const Sample& s) { return s.compute_share; });
  c.median_compute_share = mean(mid, [](const Sample& s) { return s.compute_share; });
  const double growth = c.p99_mean - c.median_mean;
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto& g = c.components[i];
    g.p99_ms = mean(tail, [i](const Sample& s) { return s.parts[i]; });
    g.median_ms = mean(mid, [i](const Sample& s) { return s.parts[i]; });
    g.growth_ms = g.p99_ms - g.median_ms;
    g.share = growth > 0 ? g.growth_ms / growth : 0.0;
    if (g.growth_ms > c.components[c.dominant].growth_ms) c.dominant = i;
  }
  return c;
}

double num(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return 0.0;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::int64_t integer(const nlohmann::json& obj, const char* key, std::int64_t dflt) {
  if (!obj.is_object()) return dflt;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? static_cast<std::int64_t>(it->get<double>()) : dflt;
}

RunNumbers run_numbers(const nlohmann::json& summary, const std::vector<RequestRow>& rows) {
  RunNumbers n;
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const auto& s = summary.contains("servesim") ? summary["servesim"] : kEmpty;
  n.busy_fraction = num(s, "busy_fraction");
  n.mean_step_ms = num(s, "mean_step_ms");
  n.mean_batch_seqs = num(s, "mean_batch_seqs");
  n.mean_batch_tokens = num(s, "mean_batch_tokens");
  n.mean_kv_usage = num(s, "mean_kv_usage");
  n.peak_kv_usage = num(s, "peak_kv_usage");
  n.preemptions = integer(s, "preemptions", 0);
  n.preempted_requests = integer(s, "preempted_requests", 0);
  n.max_waiting = integer(s, "max_waiting", 0);
  const auto& ts = s.contains("time_share") ? s["time_share"] : kEmpty;
  n.compute_share = num(ts, "compute");
  n.memory_share = num(ts, "memory");
  n.communication_share = num(ts, "communication");
  n.overhead_share = num(ts, "overhead");
  n.completion_rate = num(summary, "request_throughput");
  if (rows.size() > 1) {
    const auto [lo, hi] = std::minmax_element(rows.begin(), rows.end(), [](const RequestRow& a, const RequestRow& b) {
      return a.arrival_s < b.arrival_s;
    });
    const double span = hi->arrival_s - lo->arrival_s;
    if (span > 0) n.arrival_rate = double(rows.size() - 1) / span;
  }
  const auto& cfg = s.contains("config") ? s["config"] : kEmpty;
  n.tensor_parallel_size = integer(cfg, "tensor_parallel_size", 1);
  n.num_replicas = integer(cfg, "num_replicas", integer(s, "replicas", 1));
  n.max_num_seqs = integer(cfg, "max_num_seqs", 0);
  n.max_num_batched_tokens = integer(cfg, "max_num_batched_tokens", 0);
  if (cfg.contains("enable_chunked_prefill") && cfg["enable_chunked_prefill"].is_boolean()) {
    n.enable_chunked_prefill = cfg["enable_chunked_prefill"].get<bool>();
  }
  if (cfg.contains("kv_cache_dtype") && cfg["kv_cache_dtype"].is_string()) {
    n.kv_cache_dtype = cfg["kv_cache_dtype"].get<std::string>();
  }
  read_pool_numbers(s, n);
  return n;
}

// `c`'s `g` (a preempted component, or the TTFT queue when admission waits for KV blocks) grows most.
void diagnose_preemption(Explanation& e, const CohortComparison& c, const ComponentGrowth& g) {
  const RunNumbers& n = e.numbers;
  e.cause = Cause::preemption;
  e.metric = c.metric;
  e.component = g.name;
  const bool tpot = c.metric == "tpot";
  const std::string where =
      g.name == "queue"
          ? fmt::format("New requests wait for free blocks: the TTFT P99 cohort queues {:.1f} ms against {:.1f} ms "
                        "for the median cohort ({} of the growth), and the waiting queue reached {} requests.",
                        g.p99_ms, g.median_ms, pct(g.share), n.max_waiting)
          : fmt::format("The {} P99 cohort spends {:.2f} {} preempted against {:.2f} for the median cohort ({} of "
                        "the growth).",
                        tpot ? "TPOT" : "TTFT", g.p99_ms, tpot ? "ms per output token" : "ms", g.median_ms,
                        pct(g.share));
  e.cause_text = fmt::format(
      "The KV cache is too small for the load: {} preemptions hit {} requests. The cache runs at {} of its blocks "
      "on average and {} at peak, so the scheduler frees running sequences' blocks (they recompute their prompt "
      "and tokens when readmitted) and admits new requests only as blocks free up. {}",
      n.preemptions, n.preempted_requests, pct(n.mean_kv_usage), pct(n.peak_kv_usage), where);
  const bool fp8 = n.kv_cache_dtype.rfind("fp8", 0) == 0;
  if (!fp8) {
    e.lever_sets = {"engine.kv_cache_dtype=\"fp8\""};
    e.lever = fmt::format("kv_cache_dtype {} -> fp8 (half the bytes per cached token: about twice the KV blocks)",
                          n.kv_cache_dtype);
  } else {
    const std::int64_t tp = n.tensor_parallel_size * 2;
    e.lever_sets = {fmt::format("parallel.tensor_parallel_size={}", tp)};
    e.lever = fmt::format("tensor_parallel_size {} -> {} (the weights spread over twice the GPUs leave more memory "
                          "for the KV cache)",
                          n.tensor_parallel_size, tp);
  }
}

void diagnose_communication(Explanation& e) {
  const RunNumbers& n = e.numbers;
  const CohortComparison& c = e.tpot;
  e.cause = Cause::communication;
  e.metric = "tpot";
  e.component = c.top().name;
  e.cause_text = fmt::format(
      "Decode steps are communication-bound: at tensor_parallel_size {} every layer's all-reduces cross the "
      "interconnect, and communication is {} of the modeled step time of the TPOT P99 cohort's steps ({} for the "
      "median cohort, {} of all steps' modeled time; compute {}, memory {}). The TPOT P99 is {:.2f} ms, its median "
      "{:.2f} ms: every token pays for the collectives.",
      n.tensor_parallel_size, pct(c.p99_communication_share), pct(c.median_communication_share),
      pct(n.communication_share), pct(n.compute_share), pct(n.memory_share), c.p99, c.median);
  const std::int64_t tp = n.tensor_parallel_size / 2;
  const std::int64_t replicas = n.num_replicas * 2;
  e.lever_sets = {fmt::format("parallel.tensor_parallel_size={}", tp), fmt::format("cluster.replicas={}", replicas)};
  e.lever = fmt::format("tensor_parallel_size {} -> {} with replicas {} -> {} (the same GPUs; each replica's "
                        "collectives span half as many, closer GPUs)",
                        n.tensor_parallel_size, tp, n.num_replicas, replicas);
}

void diagnose_queueing(Explanation& e) {
  const RunNumbers& n = e.numbers;
  const CohortComparison& c = e.ttft;
  const auto& q = component(c, "queue");
  e.cause = Cause::queueing;
  e.metric = "ttft";
  e.component = "queue";
  const bool overloaded = n.arrival_rate >= kOverloadRatio * n.completion_rate;
  const std::string why =
      overloaded ? fmt::format("Requests arrive at {:.2f}/s and complete at {:.2f}/s with the engines busy {} of the "
                               "time, so a backlog builds while arrivals last (overload).",
                               n.arrival_rate, n.completion_rate, pct(n.busy_fraction))
                 : fmt::format("Requests complete as fast as they arrive ({:.2f}/s, {:.2f}/s; engines busy {}): the "
                               "queue comes from bursts of arrivals or a batch limit (max_num_seqs {}, mean batch "
                               "{:.1f} sequences; KV usage peak {}).",
                               n.arrival_rate, n.completion_rate, pct(n.busy_fraction), n.max_num_seqs,
                               n.mean_batch_seqs, pct(n.peak_kv_usage));
  e.cause_text = fmt::format(
      "The TTFT tail is time spent waiting for a first step: the P99 cohort waits {:.1f} ms in the queue against "
      "{:.1f} ms for the median cohort ({} of the growth), and the waiting queue reached {} requests. {}",
      q.p99_ms, q.median_ms, pct(q.share), n.max_waiting, why);
  if (!n.pools.empty()) {  // [[cluster.pools]]: the entry pool's replicas (cluster.replicas is refused)
    if (!queueing_pool_lever(e)) {
      diagnose_none(e, fmt::format("TTFT's tail grows most in queue ({} of the growth), and the topology has no "
                                   "free GPUs for another replica of the pool that takes arrivals.",
                                   pct(q.share)));
    }
    return;
  }
  // Replicas for kTargetUtilisation at the arrival rate (the completion rate is the capacity when overloaded).
  std::int64_t replicas = n.num_replicas + 1;
  if (n.completion_rate > 0 && n.arrival_rate > 0) {
    const double need = double(n.num_replicas) * n.arrival_rate / n.completion_rate / kTargetUtilisation;
    replicas = std::max(replicas, static_cast<std::int64_t>(std::ceil(need)));
  }
  replicas = std::min<std::int64_t>(replicas, kMaxLeverReplicas);
  e.lever_sets = {fmt::format("cluster.replicas={}", replicas)};
  e.lever = fmt::format("replicas {} -> {} (sized for {} utilisation at the arrival rate)", n.num_replicas, replicas,
                        pct(kTargetUtilisation));
}

void diagnose_interference(Explanation& e) {
  const RunNumbers& n = e.numbers;
  const CohortComparison& c = e.tpot;
  e.cause = Cause::prefill_interference;
  e.metric = "tpot";
  e.component = c.top().name;
  const double per_seq = n.mean_batch_seqs > 0 ? n.mean_batch_tokens / n.mean_batch_seqs : 0.0;
  e.cause_text = fmt::format(
      "Decodes share their steps with long prompt chunks: the mean step carries {:.0f} tokens for {:.1f} "
      "sequences ({:.1f} tokens per sequence, a decode is 1), up to the token budget of {}. The TPOT P99 cohort's "
      "{} grows by {:.2f} ms per token ({} of the growth); its steps are {} compute-bound against {} for the median "
      "cohort: prompt chunks make every step of the batch long.",
      n.mean_batch_tokens, n.mean_batch_seqs, per_seq, n.max_num_batched_tokens, c.top().name, c.top().growth_ms,
      pct(c.top().share), pct(c.p99_compute_share), pct(c.median_compute_share));
  const std::int64_t budget = std::max(kMinTokenBudget, n.max_num_batched_tokens / 4);
  e.lever_sets.clear();
  if (!n.enable_chunked_prefill) e.lever_sets.push_back("engine.enable_chunked_prefill=true");
  e.lever_sets.push_back(fmt::format("engine.max_num_batched_tokens={}", budget));
  e.lever = fmt::format("max_num_batched_tokens {} -> {}{} (fewer prompt tokens per step)",
                        n.max_num_batched_tokens, budget, n.enable_chunked_prefill ? "" : " with chunked prefill");
}

std::string describe_none(const Explanation& e) {
  std::string out;
  for (const CohortComparison* c : {&e.ttft, &e.tpot}) {
    const std::string m = c->metric == "ttft" ? "TTFT" : "TPOT";
    if (c->p99_count == 0) {
      out += m + " has no requests. ";
    } else if (!has_tail(*c)) {
      out += fmt::format("{}'s P99 cohort ({:.2f} ms) is within {:.2f}x of its median cohort ({:.2f} ms). ", m,
                         c->p99_mean, kTailRatio, c->median_mean);
    } else {
      const auto& g = c->top();
      std::string why = ", with no configuration lever this explain knows";
      if (g.share < kDominantShare) {
        why = ", less than half of it";
      } else if (g.name == "prefill") {
        why = ": the tail requests have long prompts, work no setting removes";
      } else if (g.name == "queue") {
        why = fmt::format(": {:.1f} ms in the P99 cohort, under {:.0f} mean steps ({:.2f} ms): waiting for running "
                          "steps to end, not a backlog",
                          g.p99_ms, kQueueSteps, e.numbers.mean_step_ms);
      }
      out += fmt::format("{}'s tail grows most in {} ({} of the growth){}. ", m, g.name, pct(g.share), why);
    }
  }
  out.pop_back();
  return out;
}

void diagnose(Explanation& e, const std::vector<RequestRow>& rows) {
  const RunNumbers& n = e.numbers;
  const auto& pt = component(e.ttft, "prefill_preempted");
  const auto& pd = component(e.tpot, "decode_preempted");
  const auto dominates = [](const CohortComparison& c, const ComponentGrowth& g, double share) {
    return has_tail(c) && g.growth_ms > 0 && g.share >= share;
  };
  // Preemption shows as preempted time, or (admission waits for blocks) as TTFT queueing with the cache full.
  const bool kv_full = n.preemptions > 0 && n.peak_kv_usage >= kKvFull;
  const bool ttft_queue = has_tail(e.ttft) && e.ttft.top().name == "queue" && e.ttft.top().share >= kDominantShare &&
                          e.ttft.top().p99_ms >= kQueueSteps * n.mean_step_ms;
  const bool ttft_preempted = n.preemptions > 0 && dominates(e.ttft, pt, kPreemptionShare);
  const bool tpot_preempted = n.preemptions > 0 && dominates(e.tpot, pd, kPreemptionShare);
  const bool interference =
      has_tail(e.tpot) && (e.tpot.top().name == "decode" || e.tpot.top().name == "decode_stall") &&
      e.tpot.top().share >= kDominantShare && n.max_num_batched_tokens / 4 >= kMinTokenBudget &&
      ((n.mean_batch_seqs > 0 && n.mean_batch_tokens / n.mean_batch_seqs >= kPromptTokensPerSeq) ||
       e.tpot.p99_compute_share >= e.tpot.median_compute_share + kComputeShift);
  // Decode wait (disaggregated) is back-pressure: the waiting requests hold their prefill blocks, so a TTFT queue
  // behind it is its consequence, not a cause of its own.
  const bool disagg = disaggregation_tail(e);
  const bool back_pressure = disagg && e.tpot.top().name == "decode_wait";
  if (ttft_preempted || tpot_preempted || (kv_full && ttft_queue && !back_pressure)) {
    // The metric whose tail is the worse against its median, of those preemption explains.
    const bool ttft_ok = ttft_preempted || (kv_full && ttft_queue && !back_pressure);
    const bool use_tpot = tpot_preempted && (!ttft_ok || tail_ratio(e.tpot) > tail_ratio(e.ttft));
    if (use_tpot) {
      diagnose_preemption(e, e.tpot, pd);
    } else {
      diagnose_preemption(e, e.ttft, ttft_preempted ? pt : e.ttft.top());
    }
  } else if (disagg && (back_pressure || !ttft_queue || tail_ratio(e.tpot) > tail_ratio(e.ttft))) {
    diagnose_disaggregation(e, rows);  // before communication: the transfer or the wait, not the steps, grows
  } else if (n.tensor_parallel_size > 1 && e.tpot.p99_count > 0 &&
             e.tpot.p99_communication_share >= kCommunicationShare) {
    diagnose_communication(e);
  } else if (ttft_queue && (!interference || tail_ratio(e.ttft) >= tail_ratio(e.tpot))) {
    diagnose_queueing(e);  // both explain a tail: the one of the metric whose tail is the worse against its median
  } else if (interference) {
    diagnose_interference(e);
  } else {
    diagnose_none(e, describe_none(e));
  }
  if (!e.metric.empty()) e.metric_p99_ms = e.metric == "ttft" ? e.ttft.p99 : e.tpot.p99;
}

// `--set PATH=VALUE` as a shell word: quoted when VALUE holds anything but letters, digits and ._-=+:/ (a quote, a
// space or brackets of a TOML array).
std::string shell_set(const std::string& set) {
  const bool plain = set.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-=+:/") ==
                     std::string::npos;
  return plain ? "--set " + set : "--set '" + set + "'";
}

std::string format_comparison(const CohortComparison& c) {
  const std::string m = c.metric == "ttft" ? "TTFT" : "TPOT";
  if (c.p99_count == 0) return m + ": no requests (TPOT needs more than one output token)\n";
  std::string o = fmt::format(
      "{}: P99 {:.2f} ms, median {:.2f} ms over {} requests{}\n"
      "  P99 cohort {} requests (>= P99), mean {:.2f} ms; median cohort {} requests ({:.0f}th-{:.0f}th "
      "percentile), mean {:.2f} ms\n",
      m, c.p99, c.median, c.requests, c.metric == "tpot" ? " (ms per output token after the first)" : "",
      c.p99_count, c.p99_mean, c.median_count, kMedianLo, kMedianHi, c.median_mean);
  o += fmt::format("  {:<20}{:>12}{:>12}{:>12}{:>8}\n", "component", "median", "P99 cohort", "growth", "share");
  for (std::size_t i = 0; i < c.components.size(); ++i) {
    const auto& g = c.components[i];
    o += fmt::format("  {:<20}{:>12.2f}{:>12.2f}{:>+12.2f}{:>8}{}\n", g.name, g.median_ms, g.p99_ms, g.growth_ms,
                     pct(g.share), i == c.dominant && g.growth_ms > 0 ? "  <- grows most" : "");
  }
  o += fmt::format("  steps' modeled time: communication {} / compute {} (P99 cohort) vs {} / {} (median cohort)\n",
                   pct(c.p99_communication_share), pct(c.p99_compute_share), pct(c.median_communication_share),
                   pct(c.median_compute_share));
  return o;
}

std::string format_text(const Explanation& e) {
  const RunNumbers& n = e.numbers;
  std::string o = format_comparison(e.ttft) + format_comparison(e.tpot);
  o += fmt::format(
      "Run: busy {}, mean batch {:.1f} sequences / {:.0f} tokens, KV usage mean {} / peak {}, {} preemptions ({} "
      "requests), max waiting {}, step time compute {} / memory {} / communication {} / overhead {}\n",
      pct(n.busy_fraction), n.mean_batch_seqs, n.mean_batch_tokens, pct(n.mean_kv_usage), pct(n.peak_kv_usage),
      n.preemptions, n.preempted_requests, n.max_waiting, pct(n.compute_share), pct(n.memory_share),
      pct(n.communication_share), pct(n.overhead_share));
  o += pools_text(n);
  if (e.cause == Cause::none) {
    o += "Diagnosis: " + e.cause_text + "\n";
    return o;
  }
  const CohortComparison& c = e.metric == "ttft" ? e.ttft : e.tpot;
  const auto& g = component(c, e.component);
  o += fmt::format("Diagnosis: {} ({} P99 {:.2f} ms; {} grows by {:.2f} ms, {} of the growth)\n", cause_name(e.cause),
                   e.metric == "ttft" ? "TTFT" : "TPOT", e.metric_p99_ms, g.name, g.growth_ms, pct(g.share));
  o += e.cause_text + "\n";
  o += "Lever: " + e.lever + "\n ";
  for (const auto& s : e.lever_sets) o += " " + shell_set(s);
  o += "\n";
  return o;
}

nlohmann::json comparison_json(const CohortComparison& c) {
  nlohmann::json j = {{"metric", c.metric},
                      {"requests", c.requests},
                      {"median_ms", c.median},
                      {"p99_ms", c.p99},
                      {"p99_cohort", {{"requests", c.p99_count}, {"mean_ms", c.p99_mean},
                                      {"communication_share", c.p99_communication_share},
                                      {"compute_share", c.p99_compute_share}}},
                      {"median_cohort", {{"requests", c.median_count}, {"mean_ms", c.median_mean},
                                         {"communication_share", c.median_communication_share},
                                         {"compute_share", c.median_compute_share}}},
                      {"dominant", c.p99_count ? c.top().name : ""}};
  auto& comps = j["components"] = nlohmann::json::array();
  for (const auto& g : c.components) {
    comps.push_back({{"name", g.name}, {"median_ms", g.median_ms}, {"p99_ms", g.p99_ms}, {"growth_ms", g.growth_ms},
                     {"share", g.share}});
  }
  return j;
}

}  // namespace

namespace explain_detail {

bool has_tail(const CohortComparison& c) { return c.p99_count > 0 && c.p99_mean >= kTailRatio * c.median_mean; }

double tail_ratio(const CohortComparison& c) { return c.median_mean > 0 ? c.p99_mean / c.median_mean : 0.0; }

const ComponentGrowth& component(const CohortComparison& c, const std::string& name) {
  for (const auto& g : c.components) {
    if (g.name == name) return g;
  }
  throw std::logic_error("explain: no component " + name);
}

void diagnose_none(Explanation& e, const std::string& why) {
  e.cause = Cause::none;
  e.metric.clear();
  e.component.clear();
  e.lever_sets.clear();
  e.lever.clear();
  e.cause_text = "No single dominant cause: " + why;
}

}  // namespace explain_detail

const char* cause_name(Cause c) {
  switch (c) {
    case Cause::none: return "none";
    case Cause::preemption: return "preemption";
    case Cause::communication: return "communication";
    case Cause::queueing: return "queueing";
    case Cause::prefill_interference: return "prefill_interference";
    case Cause::decode_wait: return "decode_wait";
    case Cause::kv_transfer: return "kv_transfer";
  }
  return "none";
}

Explanation explain_requests(const nlohmann::json& summary, const std::vector<RequestRow>& rows) {
  if (rows.empty()) throw InputError("explain: the run has no finished requests to compare");
  std::vector<Sample> ttft, tpot;
  bool breakdown = false;
  for (const auto& r : rows) {
    breakdown = breakdown || r.front_end_ms != 0 || r.prefill_ms != 0 || r.decode_ms != 0;
    Sample t;
    t.value = r.ttft_ms;
    t.parts = {r.front_end_ms, r.queue_ms, r.prefill_ms, r.prefill_stall_ms, r.prefill_preempted_ms};
    t.communication_share = r.communication_share;
    t.compute_share = r.compute_share;
    ttft.push_back(t);
    if (r.output_tokens > 1) {
      const double k = double(r.output_tokens - 1);
      Sample p;
      p.value = r.tpot_ms;
      p.parts = {r.decode_ms / k, r.decode_stall_ms / k, r.decode_preempted_ms / k, r.kv_transfer_ms / k,
                 r.decode_wait_ms / k};
      p.communication_share = r.communication_share;
      p.compute_share = r.compute_share;
      tpot.push_back(p);
    }
  }
  Explanation e;
  e.ttft = compare("ttft", {"front_end", "queue", "prefill", "prefill_stall", "prefill_preempted"}, ttft);
  e.tpot = compare("tpot", {"decode", "decode_stall", "decode_preempted", "kv_transfer", "decode_wait"}, tpot);
  e.numbers = run_numbers(summary, rows);
  if (breakdown) {
    diagnose(e, rows);
  } else {
    diagnose_none(e,
                  "requests.csv has no per-request breakdown (front_end_ms, prefill_ms, decode_ms, ...): it was "
                  "written by an earlier servesim; run the scenario again to explain it.");
  }
  e.text = format_text(e);
  return e;
}

Explanation explain_run(const RunDir& run) { return explain_requests(run.summary, run.requests); }

nlohmann::json Explanation::to_json() const {
  return {{"cause", cause_name(cause)},
          {"metric", metric},
          {"component", component},
          {"metric_p99_ms", metric_p99_ms},
          {"lever", lever},
          {"lever_sets", lever_sets},
          {"cause_text", cause_text},
          {"ttft", comparison_json(ttft)},
          {"tpot", comparison_json(tpot)},
          {"run", {{"busy_fraction", numbers.busy_fraction},
                   {"mean_batch_seqs", numbers.mean_batch_seqs},
                   {"mean_batch_tokens", numbers.mean_batch_tokens},
                   {"mean_kv_usage", numbers.mean_kv_usage},
                   {"peak_kv_usage", numbers.peak_kv_usage},
                   {"preemptions", numbers.preemptions},
                   {"preempted_requests", numbers.preempted_requests},
                   {"max_waiting", numbers.max_waiting},
                   {"time_share", {{"compute", numbers.compute_share},
                                   {"memory", numbers.memory_share},
                                   {"communication", numbers.communication_share},
                                   {"overhead", numbers.overhead_share}}},
                   {"arrival_rate", numbers.arrival_rate},
                   {"completion_rate", numbers.completion_rate}}}};
}

}  // namespace servesim
