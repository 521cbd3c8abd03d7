#include "models/net/topology.h"

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/dijkstra_shortest_paths.hpp>
#include <boost/graph/filtered_graph.hpp>
#include <boost/property_map/function_property_map.hpp>
#include <cmath>
#include <compare>
#include <limits>

#include "models/common/error.h"

namespace servesim {
namespace {

struct EdgeProps {
  int id = 0;
};
using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property, EdgeProps>;

constexpr struct {
  VertexKind kind;
  const char* name;
} kKinds[] = {{VertexKind::gpu, "gpu"}, {VertexKind::nvswitch, "nvswitch"}, {VertexKind::pcie_switch, "pcie_switch"},
              {VertexKind::cpu, "cpu"}, {VertexKind::nic, "nic"},           {VertexKind::net_switch, "net_switch"}};

// Path length used by Dijkstra: latency in integer picoseconds, then hops, then the sum of link ids.
struct PathCost {
  std::int64_t ps = 0;
  std::int64_t hops = 0;
  std::int64_t id_sum = 0;
  auto operator<=>(const PathCost&) const = default;
};

constexpr PathCost kInfinite{std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::max(),
                             std::numeric_limits<std::int64_t>::max()};

std::string prefix(const std::string& where) { return where.empty() ? std::string() : where + ": "; }

}  // namespace

std::string_view to_string(VertexKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "?";
}

std::optional<VertexKind> parse_vertex_kind(std::string_view text) {
  for (const auto& k : kKinds) {
    if (text == k.name) return k.kind;
  }
  return std::nullopt;
}

std::string vertex_kind_names() {
  std::string out;
  for (const auto& k : kKinds) {
    if (!out.empty()) out += ", ";
    out += k.name;
  }
  return out;
}

Topology::Topology(std::string name, std::string source) : name_(std::move(name)), source_(std::move(source)) {}

int Topology::add_vertex(TopoVertex v) {
  if (v.name.empty()) throw InputError(prefix(v.where) + "vertex name must not be empty");
  if (auto existing = find_vertex(v.name)) {
    const auto& first = vertices_[static_cast<std::size_t>(*existing)];
    throw InputError(prefix(v.where) + "duplicate vertex name '" + v.name + "'" +
                     (first.where.empty() ? std::string() : " (first declared at " + first.where + ")"));
  }
  if (v.node < 0) throw InputError(prefix(v.where) + "vertex '" + v.name + "': negative node index");
  const int id = static_cast<int>(vertices_.size());
  if (v.kind == VertexKind::gpu) gpus_.push_back(id);
  node_count_ = std::max(node_count_, v.node + 1);
  by_name_.emplace(v.name, id);
  vertices_.push_back(std::move(v));
  out_links_.emplace_back();
  return id;
}

void Topology::add_link(int a, int b, BytesPerSec bandwidth, Seconds latency, const std::string& where,
                        bool bidirectional, double efficiency) {
  const int n = static_cast<int>(vertices_.size());
  if (a < 0 || a >= n || b < 0 || b >= n) throw InputError(prefix(where) + "link names an unknown vertex id");
  if (a == b)
    throw InputError(prefix(where) + "link from '" + vertices_[static_cast<std::size_t>(a)].name + "' to itself");
  if (!(bandwidth.value() > 0.0) || !std::isfinite(bandwidth.value())) {
    throw InputError(prefix(where) + "link " + vertex(a).name + " - " + vertex(b).name +
                     ": bandwidth must be > 0 (got " + std::to_string(bandwidth.value()) + " B/s)");
  }
  // Routing sums latencies in integer picoseconds: a link latency is bounded (1 s is far beyond any real link).
  if (!(latency.value() >= 0.0) || !std::isfinite(latency.value()) || latency.value() > 1.0) {
    throw InputError(prefix(where) + "link " + vertex(a).name + " - " + vertex(b).name +
                     ": latency must be between 0 and 1 s");
  }
  if (!(efficiency > 0.0 && efficiency <= 1.0)) {
    throw InputError(prefix(where) + "link " + vertex(a).name + " - " + vertex(b).name + ": efficiency must be in (0, 1]");
  }
  auto add_one = [&](int from, int to) {
    if (auto existing = find_link(from, to)) {
      const auto& first = links_[static_cast<std::size_t>(*existing)];
      throw InputError(prefix(where) + "duplicate link " + vertex(from).name + " -> " + vertex(to).name +
                       (first.where.empty() ? std::string() : " (first declared at " + first.where + ")") +
                       "; declare one link with the summed bandwidth");
    }
    const int id = static_cast<int>(links_.size());
    links_.push_back(TopoLink{from, to, bandwidth, latency, where, efficiency});
    out_links_[static_cast<std::size_t>(from)].push_back(id);
  };
  add_one(a, b);
  if (bidirectional) add_one(b, a);
}

std::optional<int> Topology::find_vertex(std::string_view name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::optional<int> Topology::find_link(int a, int b) const {
  if (a < 0 || a >= static_cast<int>(vertices_.size())) return std::nullopt;
  for (int id : out_links_[static_cast<std::size_t>(a)]) {
    if (links_[static_cast<std::size_t>(id)].to == b) return id;
  }
  return std::nullopt;
}

int Topology::gpu_vertex(int gpu) const {
  check_gpu_index(gpu);
  return gpus_[static_cast<std::size_t>(gpu)];
}

void Topology::check_gpu_index(int gpu) const {
  if (gpu >= 0 && gpu < gpu_count()) return;
  const std::string& where = capacity_where_.empty() ? source_ : capacity_where_;
  throw InputError(prefix(where) + "topology '" + name_ + "' has " + std::to_string(gpu_count()) +
                   " GPUs (indices 0.." + std::to_string(gpu_count() - 1) + "); GPU index " + std::to_string(gpu) +
                   " requested");
}

int Topology::nodes_spanned(const std::vector<int>& gpu_indices) const {
  std::vector<int> nodes;
  for (const int g : gpu_indices) nodes.push_back(node_of_gpu(g));
  std::sort(nodes.begin(), nodes.end());
  return static_cast<int>(std::unique(nodes.begin(), nodes.end()) - nodes.begin());
}

std::vector<int> Topology::first_gpus(int ranks) const {
  const std::string& where = capacity_where_.empty() ? source_ : capacity_where_;
  if (ranks < 1)
    throw InputError(prefix(where) + "a GPU group needs at least 1 rank (got " + std::to_string(ranks) + ")");
  if (ranks > gpu_count()) {
    throw InputError(prefix(where) + "topology '" + name_ + "' has " + std::to_string(gpu_count()) + " GPUs but " +
                     std::to_string(ranks) + " ranks were requested");
  }
  std::vector<int> out(static_cast<std::size_t>(ranks));
  for (int i = 0; i < ranks; ++i) out[static_cast<std::size_t>(i)] = i;
  return out;
}

std::string Topology::describe_vertex(int id) const {
  const auto& v = vertex(id);
  return std::string(to_string(v.kind)) + " '" + v.name + "'" +
         (v.where.empty() ? "" : " (declared at " + v.where + ")");
}

std::vector<std::optional<Route>> Topology::routes_from(int from_vertex) const {
  const std::size_t n = vertices_.size();
  if (from_vertex < 0 || static_cast<std::size_t>(from_vertex) >= n) {
    throw InputError(prefix(source_) + "route from an unknown vertex id " + std::to_string(from_vertex));
  }
  Graph graph(n);
  for (const auto& l : links_) {
    boost::add_edge(static_cast<Graph::vertex_descriptor>(l.from), static_cast<Graph::vertex_descriptor>(l.to),
                    EdgeProps{static_cast<int>(&l - links_.data())}, graph);
  }
  // GPUs are endpoints: drop the out-edges of every GPU except the source.
  struct NoGpuTransit {
    const Graph* graph = nullptr;
    const std::vector<TopoVertex>* vertices = nullptr;
    int source = -1;
    bool operator()(const Graph::edge_descriptor& e) const {
      const int from = static_cast<int>(boost::source(e, *graph));
      return from == source || (*vertices)[static_cast<std::size_t>(from)].kind != VertexKind::gpu;
    }
  };
  const boost::filtered_graph<Graph, NoGpuTransit> fg(graph, NoGpuTransit{&graph, &vertices_, from_vertex});

  std::vector<PathCost> dist(n, kInfinite);
  std::vector<int> pred_link(n, -1);
  auto weight = boost::make_function_property_map<Graph::edge_descriptor, PathCost>(
      [this, &graph](const Graph::edge_descriptor& e) {
        const int id = graph[e].id;
        const auto& l = links_[static_cast<std::size_t>(id)];
        return PathCost{static_cast<std::int64_t>(std::llround(l.latency.value() * 1e12)), 1, id};
      });
  auto dist_map = boost::make_iterator_property_map(dist.begin(), boost::get(boost::vertex_index, graph));
  std::vector<Graph::vertex_descriptor> pred(n);
  auto pred_map = boost::make_iterator_property_map(pred.begin(), boost::get(boost::vertex_index, graph));
  struct RecordLink : boost::default_dijkstra_visitor {
    std::vector<int>* pred_link = nullptr;
    void edge_relaxed(const Graph::edge_descriptor& e, const boost::filtered_graph<Graph, NoGpuTransit>& g) const {
      (*pred_link)[boost::target(e, g)] = g[e].id;
    }
  };
  RecordLink vis;
  vis.pred_link = &pred_link;
  boost::dijkstra_shortest_paths(fg, static_cast<Graph::vertex_descriptor>(from_vertex),
                                 boost::weight_map(weight)
                                     .distance_map(dist_map)
                                     .predecessor_map(pred_map)
                                     .distance_compare([](const PathCost& a, const PathCost& b) { return a < b; })
                                     .distance_combine([](const PathCost& a, const PathCost& b) {
                                       return PathCost{a.ps + b.ps, a.hops + b.hops, a.id_sum + b.id_sum};
                                     })
                                     .distance_inf(kInfinite)
                                     .distance_zero(PathCost{})
                                     .visitor(vis));

  std::vector<std::optional<Route>> out(n);
  for (std::size_t v = 0; v < n; ++v) {
    if (static_cast<int>(v) == from_vertex) {
      out[v] = Route{};
      continue;
    }
    if (dist[v] == kInfinite) continue;
    Route r;
    double min_bw = std::numeric_limits<double>::infinity();
    double latency = 0.0;
    int at = static_cast<int>(v);
    while (at != from_vertex) {
      const int id = pred_link[static_cast<std::size_t>(at)];
      const auto& l = links_[static_cast<std::size_t>(id)];
      r.links.push_back(id);
      min_bw = std::min(min_bw, l.effective_bandwidth().value());
      latency += l.latency.value();
      at = l.from;
    }
    std::reverse(r.links.begin(), r.links.end());
    r.bottleneck = BytesPerSec{min_bw};
    r.latency = Seconds{latency};
    out[v] = std::move(r);
  }
  return out;
}

Route Topology::route(int from_vertex, int to_vertex) const {
  if (to_vertex < 0 || static_cast<std::size_t>(to_vertex) >= vertices_.size()) {
    throw InputError(prefix(source_) + "route to an unknown vertex id " + std::to_string(to_vertex));
  }
  auto all = routes_from(from_vertex);
  auto& r = all[static_cast<std::size_t>(to_vertex)];
  if (!r) {
    const auto& from = vertex(from_vertex);
    throw InputError(prefix(from.where.empty() ? source_ : from.where) + "topology '" + name_ + "': no route from " +
                     describe_vertex(from_vertex) + " to " + describe_vertex(to_vertex));
  }
  return std::move(*r);
}

std::optional<int> Topology::common_nvswitch(const std::vector<int>& gpu_indices) const {
  if (gpu_indices.empty()) return std::nullopt;
  for (std::size_t s = 0; s < vertices_.size(); ++s) {
    const auto& sw = vertices_[s];
    if (sw.kind != VertexKind::nvswitch || !sw.nvls) continue;
    bool all = true;
    for (int gpu : gpu_indices) {
      const int v = gpu_vertex(gpu);
      if (!find_link(v, static_cast<int>(s)) || !find_link(static_cast<int>(s), v)) {
        all = false;
        break;
      }
    }
    if (all) return static_cast<int>(s);
  }
  return std::nullopt;
}

BytesPerSec Topology::nic_bandwidth_per_gpu(int gpu) const {
  const int node = node_of_gpu(gpu);
  double nic = 0.0;
  int gpus_in_node = 0;
  for (const auto& v : vertices_) {
    if (v.node != node) continue;
    if (v.kind == VertexKind::nic) nic += v.nic_bandwidth.value();
    if (v.kind == VertexKind::gpu) ++gpus_in_node;
  }
  return BytesPerSec{gpus_in_node > 0 ? nic / gpus_in_node : 0.0};
}

}  // namespace servesim
