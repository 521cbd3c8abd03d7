#include "sim/metrics/summary.h"

#include <algorithm>
#include <array>
#include <boost/sort/pdqsort/pdqsort.hpp>
#include <cmath>
#include <fmt/format.h>
#include <iterator>
#include <ostream>
#include <string_view>

namespace servesim {

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const double pos = q / 100.0 * double(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - double(lo));
}

namespace {

// Stats of a weighted multiset given as runs in ascending order of value: visit(f) calls f(x, n) for every run
// (value x, count n >= 0) in that order, stopping when f returns false. One implementation for plain samples,
// (value, count) runs and the recorder's gap runs, so that equal data give the same bits whichever way they are
// stored. It visits the runs twice: the count and the sum, then the variance (both sums taken in ascending order,
// which fixes their bits) together with the six order statistics of the percentiles.
template <class Visit>
Stats stats_of_sorted_runs(Visit visit) {
  Stats s;
  double sum = 0;
  double last = 0;
  visit([&](double x, std::int64_t n) {
    s.count += n;
    sum += x * double(n);
    last = x;
    return true;
  });
  if (s.count == 0) return s;
  s.mean = sum / double(s.count);
  s.max = last;
  // numpy's linear percentile: between the order statistics (0-based) lo = floor(pos) and lo + 1 of the expanded
  // multiset, pos = q / 100 x (count - 1).
  constexpr std::array<double, 3> kQ = {50, 90, 99};
  std::array<double, 3> pos{};
  std::array<std::int64_t, 6> rank{};  // lo and hi of each percentile
  for (std::size_t k = 0; k < kQ.size(); ++k) {
    pos[k] = kQ[k] / 100.0 * double(s.count - 1);
    const auto lo = static_cast<std::int64_t>(std::floor(pos[k]));
    rank[2 * k] = lo;
    rank[2 * k + 1] = std::min(lo + 1, s.count - 1);
  }
  std::array<std::size_t, 6> order{0, 1, 2, 3, 4, 5};
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return rank[a] < rank[b]; });
  std::array<double, 6> value;
  value.fill(last);
  std::size_t next = 0;
  std::int64_t seen = 0;
  double var = 0;
  visit([&](double x, std::int64_t n) {
    var += (x - s.mean) * (x - s.mean) * double(n);
    seen += n;
    // Order statistic i is the value of the first run that brings the count past i.
    for (; next < order.size() && rank[order[next]] < seen; ++next) value[order[next]] = x;
    return true;
  });
  s.std = std::sqrt(var / double(s.count));
  auto pct = [&](std::size_t k) {
    const double a = value[2 * k];
    const double b = value[2 * k + 1];
    return a + (b - a) * (pos[k] - double(rank[2 * k]));
  };
  s.median = pct(0);
  s.p90 = pct(1);
  s.p99 = pct(2);
  return s;
}

// stats_of_runs of the recorder's (gap ns, count) runs as (gap x 1e-6 ms, count), in place: GapRuns sorts its
// runs by (gap, count), which is the order of (gap x 1e-6, count).
Stats stats_of_gap_runs(const GapRuns& runs) {
  return stats_of_sorted_runs([&runs](auto&& f) {
    runs.for_each_sorted([&f](std::int64_t gap, std::int64_t n) { return f(double(gap) * 1e-6, n); });
  });
}

}  // namespace

// Sorting: pattern-defeating quicksort (Boost.Sort), about twice std::sort's speed on these values; sorted is sorted,
// so the statistics keep their bits.
Stats stats_of(std::vector<double> v) {
  boost::sort::pdqsort(v.begin(), v.end());
  return stats_of_sorted_runs([&v](auto&& f) {
    for (const double x : v) {
      if (!f(x, std::int64_t{1})) return;
    }
  });
}

Stats stats_of_runs(std::vector<std::pair<double, std::int64_t>> runs) {
  boost::sort::pdqsort(runs.begin(), runs.end());
  return stats_of_sorted_runs([&runs](auto&& f) {
    for (const auto& [x, n] : runs) {
      if (!f(x, n)) return;
    }
  });
}

nlohmann::ordered_json summarize(const Recorder& rec, const RunFacts& f) {
  const auto& r = rec.records();
  std::int64_t in_tokens = 0, out_tokens = 0, preempted_requests = 0;
  std::int64_t cache_queries = 0, cache_hits = 0;
  Ns first_arrival = kNever, last_finish{0};
  // One metric's values at a time (a run of millions of requests holds one such vector, not four), in one pass over
  // the records each (RecordStore::for_each); the first pass also takes the totals.
  auto metric = [&r](auto value) {
    std::vector<double> v;
    v.reserve(r.size());
    r.for_each([&](const RequestRecord& x) { value(x, v); }, RecordStore::kCounts | RecordStore::kTimes);
    return stats_of(std::move(v));
  };
  const Stats ttft = metric([&](const RequestRecord& x, auto& v) {
    if (x.cached_tokens >= 0) {
      cache_queries += x.prompt_tokens;
      cache_hits += x.cached_tokens;
    }
    in_tokens += x.prompt_tokens;
    out_tokens += x.output_tokens;
    preempted_requests += x.preemptions > 0 ? 1 : 0;
    first_arrival = std::min(first_arrival, x.arrival);
    last_finish = std::max(last_finish, x.finish);
    v.push_back(ns_to_ms(x.first_token - x.arrival));
  });
  const Stats tpot = metric([](const RequestRecord& x, auto& v) {
    if (x.output_tokens > 1) v.push_back(ns_to_ms(x.finish - x.first_token) / double(x.output_tokens - 1));
  });
  const Stats e2el = metric([](const RequestRecord& x, auto& v) { v.push_back(ns_to_ms(x.finish - x.arrival)); });
  const Stats q = metric([](const RequestRecord& x, auto& v) { v.push_back(ns_to_ms(x.queue())); });

  const double duration = r.empty() ? 0.0 : ns_to_s(last_finish - first_arrival);
  const double per_s = duration > 0 ? 1.0 / duration : 0.0;
  nlohmann::ordered_json j;
  j["completed"] = r.size();
  j["total_input_tokens"] = in_tokens;
  j["total_output_tokens"] = out_tokens;
  j["duration"] = duration;
  j["request_throughput"] = double(r.size()) * per_s;
  j["output_throughput"] = double(out_tokens) * per_s;
  j["total_token_throughput"] = double(in_tokens + out_tokens) * per_s;
  auto put = [&](const char* name, const Stats& s) {
    j[fmt::format("mean_{}_ms", name)] = s.mean;
    j[fmt::format("median_{}_ms", name)] = s.median;
    j[fmt::format("std_{}_ms", name)] = s.std;
    j[fmt::format("p90_{}_ms", name)] = s.p90;
    j[fmt::format("p99_{}_ms", name)] = s.p99;
  };
  put("ttft", ttft);
  put("tpot", tpot);
  put("itl", stats_of_gap_runs(rec.itl_runs()));
  put("e2el", e2el);

  const auto& st = rec.steps();
  nlohmann::ordered_json s;
  s["num_requests"] = f.num_requests;
  s["rejected"] = rec.rejected_count();
  if (rec.rejected_count() > 0) {
    nlohmann::ordered_json by;
    for (std::size_t k = 0; k < kNumRejectReasons; ++k) {
      const auto why = static_cast<RejectReason>(k);
      by[reject_reason_name(why)] = rec.rejected_count(why);
    }
    s["rejected_by_reason"] = by;
  }
  s["unfinished"] = f.unfinished;
  s["backlog_at_last_arrival"] = f.backlog_at_last_arrival;
  s["max_waiting"] = rec.max_waiting();
  s["preemptions"] = st.preemptions;
  s["preempted_requests"] = preempted_requests;
  s["mean_queue_ms"] = q.mean;
  s["p99_queue_ms"] = q.p99;
  s["steps"] = st.steps;
  s["mean_step_ms"] = st.steps ? ns_to_ms(st.busy) / double(st.steps) : 0.0;
  s["mean_batch_tokens"] = st.steps ? double(st.tokens) / double(st.steps) : 0.0;
  s["mean_batch_seqs"] = st.steps ? double(st.seqs) / double(st.steps) : 0.0;
  s["busy_fraction"] = f.sim_end_s > 0 ? ns_to_s(st.busy) / (f.sim_end_s * double(f.engines)) : 0.0;
  const double modeled = st.compute_s + st.memory_s + st.communication_s + st.overhead_s;
  auto share = [modeled](double x) { return modeled > 0 ? x / modeled : 0.0; };
  s["time_share"] = {{"compute", share(st.compute_s)},
                     {"memory", share(st.memory_s)},
                     {"communication", share(st.communication_s)},
                     {"overhead", share(st.overhead_s)}};
  s["mean_kv_usage"] = st.steps ? st.kv_usage_sum / double(st.steps) : 0.0;
  s["peak_kv_usage"] = st.kv_usage_peak;
  s["mean_waiting"] = st.steps ? double(st.waiting_sum) / double(st.steps) : 0.0;
  if (cache_queries > 0) {
    s["prefix_cache"] = {{"queries", cache_queries},
                         {"hits", cache_hits},
                         {"hit_rate", double(cache_hits) / double(cache_queries)}};
  }
  s["output_throughput_bound"] = f.output_throughput_bound;
  s["replicas"] = f.replicas;
  s["kv_blocks_per_replica"] = f.kv_blocks_per_replica;
  s["kv_capacity_tokens_per_replica"] = f.kv_blocks_per_replica / f.kv_groups * f.block_size;
  if (f.kv_groups > 1) s["kv_cache_groups"] = f.kv_groups;
  s["sim_end_s"] = f.sim_end_s;
  s["events"] = f.events;
  if (!f.config.is_null()) s["config"] = f.config;
  if (!f.run.is_null()) s["run"] = f.run;
  j["servesim"] = s;
  return j;
}

namespace {

void append_uint(fmt::memory_buffer& b, std::uint64_t v) {
  const fmt::format_int f(v);
  b.append(f.data(), f.data() + f.size());
}

// Appends v / 10^digits with `digits` decimals (scale = 10^digits, digits <= 9), then `sep`.
void append_fixed(fmt::memory_buffer& b, std::uint64_t v, std::uint64_t scale, int digits, char sep) {
  append_uint(b, v / scale);
  char frac[10] = {'.'};
  std::uint64_t f = v % scale;
  for (int i = digits; i >= 1; --i, f /= 10) frac[i] = static_cast<char>('0' + f % 10);
  b.append(frac, frac + digits + 1);
  b.push_back(sep);
}

// Appends a duration in ns as ms with 6 decimals (exact), and a comma.
void append_ms(fmt::memory_buffer& b, Ns d) {
  if (d.v < 0) b.push_back('-');
  const std::uint64_t a = d.v < 0 ? std::uint64_t(0) - std::uint64_t(d.v) : std::uint64_t(d.v);
  append_fixed(b, a, 1000000, 6, ',');
}

}  // namespace

void append_request_row(std::string& line, const RequestRecord& r) {
  fmt::memory_buffer b;
  // Times (ns) in s with 9 decimals or ms with 6: exact.
  auto seconds = [&b](Ns t) {
    if (t.v < 0) b.push_back('-');
    append_fixed(b, t.v < 0 ? std::uint64_t(0) - std::uint64_t(t.v) : std::uint64_t(t.v), 1000000000, 9, ',');
  };
  append_uint(b, r.id);
  b.push_back(',');
  fmt::format_to(fmt::appender(b), "{},", r.replica);
  seconds(r.arrival);
  fmt::format_to(fmt::appender(b), "{},{},", r.prompt_tokens, r.output_tokens);
  seconds(r.first_token);
  seconds(r.finish);
  append_ms(b, r.first_token - r.arrival);
  const double tpot = r.output_tokens > 1 ? ns_to_ms(r.finish - r.first_token) / double(r.output_tokens - 1) : 0.0;
  fmt::format_to(fmt::appender(b), "{:.6f},", tpot);
  append_ms(b, r.finish - r.arrival);
  append_ms(b, r.queue());
  append_uint(b, static_cast<std::uint64_t>(std::max(r.preemptions, 0)));
  b.push_back(',');
  for (const Ns d : {r.front_end(), r.prefill, r.prefill_stall(), r.prefill_preempted, r.decode, r.decode_stall(),
                     r.decode_preempted, r.preempted()}) {
    append_ms(b, d);
  }
  append_ms(b, r.kv_transfer);
  append_ms(b, r.decode_wait);
  // Shares with 4 decimals, rounded to nearest.
  const double kinds = double(r.step_compute.v) + double(r.step_memory.v) + double(r.step_communication.v) +
                       double(r.step_overhead.v);
  const Ns parts[4] = {r.step_compute, r.step_memory, r.step_communication, r.step_overhead};
  for (int k = 0; k < 4; ++k) {
    const double q = kinds > 0 ? std::round(double(std::max<std::int64_t>(parts[k].v, 0)) / kinds * 1e4) : 0.0;
    append_fixed(b, static_cast<std::uint64_t>(q), 10000, 4, ',');
  }
  fmt::format_to(fmt::appender(b), "{},{},{},{}\n", r.prefill_replica, r.replica,
                 std::max<std::int64_t>(r.cached_tokens, 0), r.dp_rank);
  line.append(b.data(), b.size());
}

std::vector<std::size_t> records_by_id(const RecordStore& records) {
  std::vector<std::pair<std::uint64_t, std::size_t>> ids;
  ids.reserve(records.size());
  records.for_each([&ids](const RequestRecord& r) { ids.emplace_back(r.id, ids.size()); }, RecordStore::kIds);
  std::sort(ids.begin(), ids.end());
  std::vector<std::size_t> order;
  order.reserve(ids.size());
  for (const auto& [id, i] : ids) order.push_back(i);
  return order;
}

void write_requests_csv(std::ostream& out, const Recorder& rec) {
  out << kRequestsCsvHeader;
  const RecordStore& records = rec.records();
  std::string line;
  for (const std::size_t i : records_by_id(records)) {
    line.clear();
    append_request_row(line, records[i]);
    out << line;
  }
}

std::string format_summary(const nlohmann::ordered_json& s) {
  std::string o;
  const auto& x = s["servesim"];
  o += fmt::format("{:<34}{:>14}\n", "Completed requests", s["completed"].get<std::int64_t>());
  o += fmt::format("{:<34}{:>14}\n", "Rejected / unfinished",
                   fmt::format("{} / {}", x["rejected"].get<std::int64_t>(), x["unfinished"].get<std::int64_t>()));
  if (const auto by = x.find("rejected_by_reason"); by != x.end()) {
    for (const auto& [why, n] : by->items()) {
      if (n.get<std::int64_t>() > 0) o += fmt::format("  {:<32}{:>14}\n", "rejected: " + why, n.get<std::int64_t>());
    }
  }
  o += fmt::format("{:<34}{:>14.2f}\n", "Duration (s)", s["duration"].get<double>());
  o += fmt::format("{:<34}{:>14}\n", "Total input / output tokens",
                   fmt::format("{} / {}", s["total_input_tokens"].get<std::int64_t>(),
                               s["total_output_tokens"].get<std::int64_t>()));
  o += fmt::format("{:<34}{:>14.2f}\n", "Request throughput (req/s)", s["request_throughput"].get<double>());
  o += fmt::format("{:<34}{:>14.1f}\n", "Output throughput (tok/s)", s["output_throughput"].get<double>());
  o += fmt::format("{:<34}{:>14.1f}\n", "Total token throughput (tok/s)", s["total_token_throughput"].get<double>());
  o += fmt::format("{:<10}{:>12}{:>12}{:>12}{:>12}{:>12}\n", "(ms)", "mean", "median", "std", "p90", "p99");
  for (const char* m : {"ttft", "tpot", "itl", "e2el"}) {
    auto g = [&](const char* stat) { return s[fmt::format("{}_{}_ms", stat, m)].get<double>(); };
    std::string name(m);
    for (auto& c : name) c = static_cast<char>(std::toupper(c));
    o += fmt::format("{:<10}{:>12.2f}{:>12.2f}{:>12.2f}{:>12.2f}{:>12.2f}\n", name, g("mean"), g("median"), g("std"),
                     g("p90"), g("p99"));
  }
  o += fmt::format("{:<34}{:>14.2f}\n", "Mean / p99 queueing (ms)", x["mean_queue_ms"].get<double>());
  o.pop_back();
  o += fmt::format(" / {:.2f}\n", x["p99_queue_ms"].get<double>());
  o += fmt::format("{:<34}{:>14}\n", "Backlog at last arrival (reqs)", x["backlog_at_last_arrival"].get<std::int64_t>());
  o += fmt::format("{:<34}{:>14}\n", "Max waiting queue (reqs)", x["max_waiting"].get<std::int64_t>());
  o += fmt::format("{:<34}{:>14}\n", "Preemptions", x["preemptions"].get<std::int64_t>());
  o += fmt::format("{:<34}{:>14.1f}\n", "Mean batch (tokens / step)", x["mean_batch_tokens"].get<double>());
  o += fmt::format("{:<34}{:>14.1f}\n", "Mean batch (sequences / step)", x["mean_batch_seqs"].get<double>());
  o += fmt::format("{:<34}{:>14.3f}\n", "Mean step time (ms)", x["mean_step_ms"].get<double>());
  o += fmt::format("{:<34}{:>14.3f}\n", "Busy fraction", x["busy_fraction"].get<double>());
  const auto config = x.find("config");
  if (config != x.end() && config->contains("pools")) {
    // Each pool's own (the top-level figure is pool 0's).
    for (const auto& p : (*config)["pools"]) {
      o += fmt::format("{:<34}{:>14}\n", "KV cache size, pool " + p["name"].get<std::string>(),
                       p["num_gpu_blocks"].get<std::int64_t>() / p.value("kv_cache_groups", std::int64_t{1}) *
                           p["block_size"].get<std::int64_t>());
    }
  } else {
    o += fmt::format("{:<34}{:>14}\n", "KV cache size (tokens / replica)",
                     x["kv_capacity_tokens_per_replica"].get<std::int64_t>());
  }
  if (const auto g = x.find("kv_cache_groups"); g != x.end()) {
    // vLLM's hybrid manager: the size above is vLLM's (blocks / groups); a sliding group holds only the window.
    o += fmt::format("{:<34}{:>14}\n", "KV cache groups (hybrid)", g->get<std::int64_t>());
  }
  if (const auto pc = x.find("prefix_cache"); pc != x.end()) {
    o += fmt::format("{:<34}{:>13.1f}%\n", "Prefix cache hit rate (tokens)", 100.0 * (*pc)["hit_rate"].get<double>());
  }
  if (x.contains("disaggregation")) {
    const auto& d = x["disaggregation"];
    o += fmt::format("{:<34}{:>14}\n", "Handed off (prefill -> decode)", d["handed_off"].get<std::int64_t>());
    o += fmt::format("{:<34}{:>14}\n", "KV transfer p50 / p99 (ms)",
                     fmt::format("{:.3f} / {:.3f}", d["kv_transfer_ms"]["p50"].get<double>(),
                                 d["kv_transfer_ms"]["p99"].get<double>()));
    o += fmt::format("{:<34}{:>14}\n", "Decode wait p50 / p99 (ms)",
                     fmt::format("{:.3f} / {:.3f}", d["decode_wait_ms"]["p50"].get<double>(),
                                 d["decode_wait_ms"]["p99"].get<double>()));
    for (const auto& p : d["pools"]) {
      o += fmt::format("{:<34}{:>14.3f}\n", "Busy fraction, " + p["role"].get<std::string>() + " pool " +
                                                 p["name"].get<std::string>(),
                       p["busy_fraction"].get<double>());
    }
  }
  if (x.contains("network")) {
    const auto& n = x["network"];
    o += fmt::format("{:<34}{:>14}\n", "Steps slowed on the network",
                     fmt::format("{} / {}", n["steps_slowed"].get<std::int64_t>(), n["steps"].get<std::int64_t>()));
    o += fmt::format("{:<34}{:>14.3f}\n", "Communication added (ms)", n["added_communication_ms"].get<double>());
  }
  return o;
}

}  // namespace servesim
