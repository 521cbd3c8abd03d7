// TransportPath's cost formula and the building blocks the transports share (link classes, GPU -> NIC / CPU
// affinity, routes through given vertices). Formulas: models/net/transport.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include <fmt/format.h>

#include "models/common/error.h"
#include "models/net/transport.h"

namespace servesim {

std::string_view to_string(LinkClass c) {
  switch (c) {
    case LinkClass::nvlink: return "nvlink";
    case LinkClass::pcie: return "pcie";
    case LinkClass::network: return "network";
    case LinkClass::socket: return "socket";
  }
  return "?";
}

LinkClass classify_link(const Topology& topo, int link_id) {
  const TopoLink& l = topo.link(link_id);
  const VertexKind a = topo.vertex(l.from).kind;
  const VertexKind b = topo.vertex(l.to).kind;
  auto either = [&](VertexKind k) { return a == k || b == k; };
  if (either(VertexKind::net_switch) || (a == VertexKind::nic && b == VertexKind::nic)) return LinkClass::network;
  if (either(VertexKind::nvswitch) || (a == VertexKind::gpu && b == VertexKind::gpu)) return LinkClass::nvlink;
  if (a == VertexKind::cpu && b == VertexKind::cpu) return LinkClass::socket;
  return LinkClass::pcie;
}

std::vector<BytesPerSec> transfer_link_capacities(const Topology& topo) {
  const LinkEfficiency eff;
  std::vector<BytesPerSec> capacity;
  capacity.reserve(topo.links().size());
  for (std::size_t l = 0; l < topo.links().size(); ++l) {
    capacity.push_back(topo.links()[l].bandwidth * eff.of(classify_link(topo, static_cast<int>(l))));
  }
  return capacity;
}

double LinkEfficiency::of(LinkClass c) const {
  switch (c) {
    case LinkClass::nvlink: return nvlink;
    case LinkClass::pcie: return pcie;
    case LinkClass::network: return network;
    case LinkClass::socket: return socket;
  }
  return 1.0;
}

std::int64_t TransportPath::messages(Bytes bytes) const {
  if (!(bytes.value() > 0.0)) return 1;
  const double n = std::ceil(bytes.value() / message_size.value());
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(n));
}

Seconds TransportPath::fill(Bytes bytes) const {
  if (staging_copies == 0 || !(staging_rate.value() > 0.0)) return Seconds{0};
  const double b = std::min(std::max(bytes.value(), 0.0), message_size.value());
  return Seconds{static_cast<double>(staging_copies) * b / staging_rate.value()};
}

Seconds TransportPath::time_alone(Bytes bytes) const {
  return start_delay(bytes) + per_message * static_cast<double>(messages(bytes)) + bytes / rate;
}

BytesPerSec TransportPath::effective_rate(Bytes bytes) const {
  if (!(bytes.value() > 0.0)) return rate;
  const Seconds data = per_message * static_cast<double>(messages(bytes)) + bytes / rate;
  return BytesPerSec{bytes.value() / data.value()};
}

FlowDemand TransportPath::flow_demand(Bytes bytes) const {
  FlowDemand d;
  d.cap = effective_rate(bytes);
  for (const int l : links) {
    if (std::find(d.links.begin(), d.links.end(), l) == d.links.end()) d.links.push_back(l);
  }
  return d;
}

std::string TransportPath::route_text(const Topology& topo) const {
  if (links.empty()) return topo.vertex(topo.gpu_vertex(src_gpu)).name;
  std::string out = topo.vertex(topo.link(links.front()).from).name;
  for (const int l : links) out += " -> " + topo.vertex(topo.link(l).to).name;
  return out;
}

namespace {

std::string gbps(double bytes_per_s) { return fmt::format("{:g} GB/s", bytes_per_s / 1e9); }

// Nearest vertex of `kind` in the GPU's node: smallest route latency (integer picoseconds), hop count, id.
std::optional<int> nearest_of_kind(const Topology& topo, int gpu, VertexKind kind) {
  topo.check_gpu_index(gpu);
  std::vector<int> candidates;
  for (const int v : topo.node_vertices(topo.node_of_gpu(gpu))) {
    if (topo.vertex(v).kind == kind) candidates.push_back(v);
  }
  if (candidates.empty()) return std::nullopt;
  const auto routes = topo.routes_to(topo.gpu_vertex(gpu), candidates);
  std::optional<std::tuple<std::int64_t, std::size_t, int>> best;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (!routes[i]) continue;
    const auto key = std::make_tuple(static_cast<std::int64_t>(std::llround(routes[i]->latency.value() * 1e12)),
                                     routes[i]->links.size(), candidates[i]);
    if (!best || key < *best) best = key;
  }
  if (!best) return std::nullopt;
  return std::get<2>(*best);
}

}  // namespace

void set_rate_from_links(const Topology& topo, const LinkEfficiency& eff, TransportPath& path) {
  if (path.links.empty()) throw InputError("transport " + path.transport + ": a path without links");
  double best = std::numeric_limits<double>::infinity();
  for (const int id : path.links) {
    const TopoLink& l = topo.link(id);
    const double e = eff.of(classify_link(topo, id));
    const double r = l.bandwidth.value() * e;
    if (r < best) {
      best = r;
      path.limit = fmt::format("link {} -> {} ({} x {:.3g})", topo.vertex(l.from).name, topo.vertex(l.to).name,
                               gbps(l.bandwidth.value()), e);
    }
  }
  // A NIC's line rate may be below its links' (a 200 Gb/s card in a Gen5 slot on a 400 Gb/s port).
  for (std::size_t i = 1; i < path.links.size(); ++i) {
    const TopoVertex& v = topo.vertex(topo.link(path.links[i]).from);
    if (v.kind != VertexKind::nic || !(v.nic_bandwidth.value() > 0.0)) continue;
    const double r = v.nic_bandwidth.value() * eff.network;
    if (r < best) {
      best = r;
      path.limit = fmt::format("NIC {} line rate ({} x {:.3g})", v.name, gbps(v.nic_bandwidth.value()), eff.network);
    }
  }
  path.rate = BytesPerSec{best};
}

std::optional<int> nic_of_gpu(const Topology& topo, int gpu) { return nearest_of_kind(topo, gpu, VertexKind::nic); }

std::optional<int> cpu_of_gpu(const Topology& topo, int gpu) { return nearest_of_kind(topo, gpu, VertexKind::cpu); }

std::optional<std::vector<int>> route_through(const Topology& topo, const std::vector<int>& vertices) {
  std::vector<int> links;
  for (std::size_t i = 0; i + 1 < vertices.size(); ++i) {
    auto r = std::move(topo.routes_to(vertices[i], {vertices[i + 1]}).front());
    if (!r) return std::nullopt;
    links.insert(links.end(), r->links.begin(), r->links.end());
  }
  return links;
}

bool path_crosses(const Topology& topo, const std::vector<int>& links, VertexKind kind) {
  for (std::size_t i = 1; i < links.size(); ++i) {
    if (topo.vertex(topo.link(links[i]).from).kind == kind) return true;
  }
  return false;
}

std::string gpu_label(const Topology& topo, int gpu) {
  return fmt::format("GPU {} ({})", gpu, topo.vertex(topo.gpu_vertex(gpu)).name);
}

}  // namespace servesim

namespace servesim {
namespace {

// Rate of one leg alone (for the staging copies).
double leg_rate(const Topology& topo, const std::vector<int>& links, const LinkEfficiency& eff) {
  double best = std::numeric_limits<double>::infinity();
  for (const int id : links) best = std::min(best, topo.link(id).bandwidth.value() * eff.of(classify_link(topo, id)));
  return best;
}

std::string vertex_name(const Topology& topo, int v) { return topo.vertex(v).name; }

}  // namespace

void set_costs(const TransportCosts& costs, TransportPath& path) {
  path.setup = costs.setup;
  path.per_message = costs.per_message;
  path.message_size = costs.message_size;
}

TransportSupport plan_network_path(const Topology& topo, int src, int dst, bool host_staged, bool allow_same_node,
                                   const std::string& transport, const TransportCosts& costs,
                                   const LinkEfficiency& eff) {
  topo.check_gpu_index(src);
  topo.check_gpu_index(dst);
  const int gs = topo.gpu_vertex(src);
  const int gd = topo.gpu_vertex(dst);
  const int node_s = topo.node_of_gpu(src);
  const int node_d = topo.node_of_gpu(dst);
  const bool same_node = node_s == node_d;
  TransportPath p;
  p.transport = transport;
  p.src_gpu = src;
  p.dst_gpu = dst;
  std::vector<std::vector<int>> legs;
  auto add_leg = [&](int a, int b) -> bool {
    auto r = std::move(topo.routes_to(a, {b}).front());
    if (!r) return false;
    legs.push_back(std::move(r->links));
    return true;
  };
  auto no_route = [&](int a, int b) {
    return TransportSupport{std::nullopt,
                            fmt::format("no route from {} to {}", vertex_name(topo, a), vertex_name(topo, b))};
  };
  if (same_node && !(host_staged && allow_same_node)) {
    return {std::nullopt, fmt::format("{} and {} are on the same node (this transport goes through the NICs between "
                                      "nodes)",
                                      gpu_label(topo, src), gpu_label(topo, dst))};
  }
  std::optional<int> nic_s;
  std::optional<int> nic_d;
  if (!same_node) {
    nic_s = nic_of_gpu(topo, src);
    nic_d = nic_of_gpu(topo, dst);
    if (!nic_s || !nic_d) {
      return {std::nullopt, fmt::format("node {} of {} has no NIC", nic_s ? node_d : node_s,
                                        gpu_label(topo, nic_s ? dst : src))};
    }
  }
  if (!host_staged) {
    if (!add_leg(gs, *nic_s)) return no_route(gs, *nic_s);
    if (!add_leg(*nic_s, *nic_d)) return no_route(*nic_s, *nic_d);
    if (!add_leg(*nic_d, gd)) return no_route(*nic_d, gd);
    for (const std::size_t i : {std::size_t{0}, std::size_t{2}}) {
      for (std::size_t k = 1; k < legs[i].size(); ++k) {
        const int v = topo.link(legs[i][k]).from;
        if (topo.vertex(v).kind == VertexKind::cpu) {
          const int gpu = i == 0 ? src : dst;
          return {std::nullopt,
                  fmt::format("{} reaches its NIC {} through the CPU {}: GPUDirect RDMA needs the GPU and the NIC "
                              "under one PCIe switch (NCCL's default NCCL_NET_GDR_LEVEL)",
                              gpu_label(topo, gpu), vertex_name(topo, i == 0 ? *nic_s : *nic_d), vertex_name(topo, v))};
        }
      }
    }
  } else {
    const auto cpu_s = cpu_of_gpu(topo, src);
    const auto cpu_d = cpu_of_gpu(topo, dst);
    if (!cpu_s || !cpu_d) {
      return {std::nullopt, fmt::format("node {} of {} has no CPU (host memory) vertex", cpu_s ? node_d : node_s,
                                        gpu_label(topo, cpu_s ? dst : src))};
    }
    if (!add_leg(gs, *cpu_s)) return no_route(gs, *cpu_s);
    double staging = leg_rate(topo, legs.back(), eff);
    if (same_node) {
      if (*cpu_s != *cpu_d && !add_leg(*cpu_s, *cpu_d)) return no_route(*cpu_s, *cpu_d);
    } else {
      if (!add_leg(*cpu_s, *nic_s)) return no_route(*cpu_s, *nic_s);
      if (!add_leg(*nic_s, *nic_d)) return no_route(*nic_s, *nic_d);
      if (!add_leg(*nic_d, *cpu_d)) return no_route(*nic_d, *cpu_d);
    }
    if (!add_leg(*cpu_d, gd)) return no_route(*cpu_d, gd);
    staging = std::min(staging, leg_rate(topo, legs.back(), eff));
    p.staging_copies = 2;
    p.staging_rate = BytesPerSec{staging};
  }
  for (auto& leg : legs) p.links.insert(p.links.end(), leg.begin(), leg.end());
  set_costs(costs, p);
  set_rate_from_links(topo, eff, p);
  return {std::move(p), ""};
}

}  // namespace servesim
