#include "sim/metrics/link_stats_writer.h"

#include <fmt/format.h>

namespace servesim {

LinkStatsSampler::LinkStatsSampler(const FlowNetwork& net, const Topology& topo, std::ostream& out, Ns interval)
    : net_(net),
      topo_(topo),
      out_(out),
      interval_(interval),
      prev_(net.link_count(), 0.0),
      at_boundary_(net.link_count(), 0.0) {
  out_ << "start_s,end_s,link,from,to,bytes,utilisation\n";
}

void LinkStatsSampler::observe(Ns now) {
  if (now < prev_t_) return;
  const std::vector<LinkStats> stats = net_.link_stats(now);
  std::vector<double> cur(stats.size());
  for (std::size_t l = 0; l < stats.size(); ++l) cur[l] = stats[l].bytes.v;
  // Every boundary up to `now`: the rates were constant since prev_t_.
  while (boundary_ + interval_ <= now) {
    const Ns b = boundary_ + interval_;
    std::vector<double> at(cur.size());
    const double span = double((now - prev_t_).v);
    const double f = span > 0 ? double((b - prev_t_).v) / span : 1.0;
    for (std::size_t l = 0; l < cur.size(); ++l) at[l] = prev_[l] + (cur[l] - prev_[l]) * f;
    write(boundary_, b, at_boundary_, at);
    boundary_ = b;
    at_boundary_ = std::move(at);
  }
  prev_ = std::move(cur);
  prev_t_ = now;
}

void LinkStatsSampler::finish(Ns end) {
  observe(end);
  if (end > boundary_) write(boundary_, end, at_boundary_, prev_);
}

void LinkStatsSampler::write(Ns from, Ns to, const std::vector<double>& a, const std::vector<double>& b) {
  const double span = ns_to_s(to - from);
  fmt::memory_buffer buf;
  for (std::size_t l = 0; l < b.size(); ++l) {
    const double bytes = b[l] - a[l];
    if (!(bytes > 0.5)) continue;
    const TopoLink& link = topo_.link(static_cast<int>(l));
    const double util = span > 0 ? bytes / (net_.capacity(static_cast<int>(l)).v * span) : 0.0;
    fmt::format_to(fmt::appender(buf), "{:.6f},{:.6f},{},{},{},{:.0f},{:.6f}\n", ns_to_s(from), ns_to_s(to), l,
                   topo_.vertex(link.from).name, topo_.vertex(link.to).name, bytes, util);
  }
  out_.write(buf.data(), static_cast<std::streamsize>(buf.size()));
}

}  // namespace servesim
