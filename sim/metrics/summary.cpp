#include "sim/metrics/summary.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <iterator>
#include <ostream>

namespace servesim {

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const double pos = q / 100.0 * double(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - double(lo));
}

namespace {

// Stats of a weighted multiset given as `size` runs in ascending order of value: run k has value x(k) and count
// n(k) >= 0. One implementation for plain samples, (value, count) runs and the recorder's gap runs, so that equal
// data give the same bits whichever way they are stored.
template <class X, class N>
Stats stats_of_sorted_runs(std::size_t size, X x, N n) {
  Stats s;
  double sum = 0;
  for (std::size_t k = 0; k < size; ++k) {
    s.count += n(k);
    sum += x(k) * double(n(k));
  }
  if (s.count == 0) return s;
  s.mean = sum / double(s.count);
  double var = 0;
  for (std::size_t k = 0; k < size; ++k) var += (x(k) - s.mean) * (x(k) - s.mean) * double(n(k));
  s.std = std::sqrt(var / double(s.count));
  s.max = x(size - 1);
  // Order statistic i (0-based) of the expanded multiset.
  auto at = [&](std::int64_t i) {
    std::int64_t seen = 0;
    for (std::size_t k = 0; k < size; ++k) {
      seen += n(k);
      if (i < seen) return x(k);
    }
    return x(size - 1);
  };
  auto pct = [&](double q) {
    const double pos = q / 100.0 * double(s.count - 1);
    const auto lo = static_cast<std::int64_t>(std::floor(pos));
    const double a = at(lo);
    const double b = at(std::min(lo + 1, s.count - 1));
    return a + (b - a) * (pos - double(lo));
  };
  s.median = pct(50);
  s.p90 = pct(90);
  s.p99 = pct(99);
  return s;
}

// stats_of_runs of the recorder's (gap ns, count) runs as (gap x 1e-6 ms, count), without a copy of the runs: a
// sorted index instead (4 bytes a run, not 16). Sorting by (gap, count) is the order of (gap x 1e-6, count).
Stats stats_of_gap_runs(const std::vector<std::pair<std::int64_t, std::int64_t>>& runs) {
  if (runs.size() >= std::size_t{0xffffffffu}) {
    std::vector<std::pair<double, std::int64_t>> copy;
    copy.reserve(runs.size());
    for (const auto& [gap, n] : runs) copy.emplace_back(double(gap) * 1e-6, n);
    return stats_of_runs(std::move(copy));
  }
  std::vector<std::uint32_t> order(runs.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = static_cast<std::uint32_t>(k);
  std::sort(order.begin(), order.end(), [&runs](std::uint32_t a, std::uint32_t b) { return runs[a] < runs[b]; });
  return stats_of_sorted_runs(
      order.size(), [&](std::size_t k) { return double(runs[order[k]].first) * 1e-6; },
      [&](std::size_t k) { return runs[order[k]].second; });
}

}  // namespace

Stats stats_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return stats_of_sorted_runs(
      v.size(), [&](std::size_t k) { return v[k]; }, [](std::size_t) { return std::int64_t{1}; });
}

Stats stats_of_runs(std::vector<std::pair<double, std::int64_t>> runs) {
  std::sort(runs.begin(), runs.end());
  return stats_of_sorted_runs(
      runs.size(), [&](std::size_t k) { return runs[k].first; }, [&](std::size_t k) { return runs[k].second; });
}

nlohmann::ordered_json summarize(const Recorder& rec, const RunFacts& f) {
  const auto& r = rec.records();
  std::int64_t in_tokens = 0, out_tokens = 0, preempted_requests = 0;
  Ns first_arrival = kNever, last_finish{0};
  for (const auto& x : r) {
    in_tokens += x.prompt_tokens;
    out_tokens += x.output_tokens;
    preempted_requests += x.preemptions > 0 ? 1 : 0;
    first_arrival = std::min(first_arrival, x.arrival);
    last_finish = std::max(last_finish, x.finish);
  }
  // One metric's values at a time (a run of millions of requests holds one such vector, not four).
  auto metric = [&r](auto value) {
    std::vector<double> v;
    v.reserve(r.size());
    for (const auto& x : r) value(x, v);
    return stats_of(std::move(v));
  };
  const Stats ttft = metric([](const RequestRecord& x, auto& v) { v.push_back(ns_to_ms(x.first_token - x.arrival)); });
  const Stats tpot = metric([](const RequestRecord& x, auto& v) {
    if (x.output_tokens > 1) v.push_back(ns_to_ms(x.finish - x.first_token) / double(x.output_tokens - 1));
  });
  const Stats e2el = metric([](const RequestRecord& x, auto& v) { v.push_back(ns_to_ms(x.finish - x.arrival)); });
  const Stats q = metric([](const RequestRecord& x, auto& v) { v.push_back(ns_to_ms(x.first_scheduled - x.arrival)); });

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
  s["output_throughput_bound"] = f.output_throughput_bound;
  s["replicas"] = f.replicas;
  s["kv_blocks_per_replica"] = f.kv_blocks_per_replica;
  s["kv_capacity_tokens_per_replica"] = f.kv_blocks_per_replica * f.block_size;
  s["sim_end_s"] = f.sim_end_s;
  s["events"] = f.events;
  j["servesim"] = s;
  return j;
}

void append_request_row(std::string& line, const RequestRecord& r) {
  const double tpot = r.output_tokens > 1 ? ns_to_ms(r.finish - r.first_token) / double(r.output_tokens - 1) : 0.0;
  fmt::format_to(std::back_inserter(line), "{},{},{:.9f},{},{},{:.9f},{:.9f},{:.6f},{:.6f},{:.6f},{:.6f},{}\n", r.id,
                 r.replica, ns_to_s(r.arrival), r.prompt_tokens, r.output_tokens, ns_to_s(r.first_token),
                 ns_to_s(r.finish), ns_to_ms(r.first_token - r.arrival), tpot, ns_to_ms(r.finish - r.arrival),
                 ns_to_ms(r.first_scheduled - r.arrival), r.preemptions);
}

void write_requests_csv(std::ostream& out, const Recorder& rec) {
  out << kRequestsCsvHeader;
  std::vector<const RequestRecord*> rows;
  rows.reserve(rec.records().size());
  for (const auto& r : rec.records()) rows.push_back(&r);
  std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) { return a->id < b->id; });
  std::string line;
  for (const auto* r : rows) {
    line.clear();
    append_request_row(line, *r);
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
  o += fmt::format("{:<34}{:>14}\n", "KV cache size (tokens / replica)", x["kv_capacity_tokens_per_replica"].get<std::int64_t>());
  return o;
}

}  // namespace servesim
