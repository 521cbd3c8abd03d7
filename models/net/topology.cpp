#include "models/net/topology.h"

#include <algorithm>
#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>

#include "models/common/error.h"

namespace servesim {
namespace {

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

struct HeapEntry {
  PathCost cost;
  int vertex = 0;
  // std::push_heap keeps the largest on top: the "largest" entry is the nearest vertex (the smaller id on ties).
  bool operator<(const HeapEntry& o) const { return o.cost < cost || (o.cost == cost && o.vertex < vertex); }
};

// The state of one shortest-path search, reused by the searches of one thread: an entry of dist / pred_link is
// valid only where its stamp equals the search's, so a search costs what it explores, not the whole graph.
struct SearchSpace {
  std::vector<PathCost> dist;
  std::vector<int> pred_link;
  std::vector<std::uint32_t> reached;  // == stamp: dist and pred_link hold this search's values
  std::vector<std::uint32_t> settled;  // == stamp: dist is final
  std::vector<std::uint32_t> target;   // == stamp: a vertex the search was asked for
  std::vector<HeapEntry> heap;
  std::uint32_t stamp = 0;

  void begin(std::size_t n) {
    if (dist.size() < n) {
      dist.resize(n);
      pred_link.resize(n, -1);
      reached.resize(n, 0);
      settled.resize(n, 0);
      target.resize(n, 0);
    }
    if (++stamp == 0) {  // wrapped: forget every old stamp
      std::fill(reached.begin(), reached.end(), 0u);
      std::fill(settled.begin(), settled.end(), 0u);
      std::fill(target.begin(), target.end(), 0u);
      stamp = 1;
    }
    heap.clear();
  }
  [[nodiscard]] bool has(int v) const { return reached[static_cast<std::size_t>(v)] == stamp; }
};

thread_local SearchSpace t_search;

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
  node_vertices_[v.node].push_back(id);
  by_name_.emplace(v.name, id);
  vertices_.push_back(std::move(v));
  out_links_.emplace_back();
  in_links_.emplace_back();
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
    link_ps_.push_back(static_cast<std::int64_t>(std::llround(latency.value() * 1e12)));
    out_links_[static_cast<std::size_t>(from)].push_back(id);
    in_links_[static_cast<std::size_t>(to)].push_back(id);
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
  const int n = static_cast<int>(vertices_.size());
  if (a < 0 || a >= n || b < 0 || b >= n) return std::nullopt;
  // The shorter of a's out-links and b's in-links (a leaf switch of a large cluster has thousands of either).
  const auto& out = out_links_[static_cast<std::size_t>(a)];
  const auto& in = in_links_[static_cast<std::size_t>(b)];
  if (out.size() <= in.size()) {
    for (int id : out) {
      if (links_[static_cast<std::size_t>(id)].to == b) return id;
    }
  } else {
    for (int id : in) {
      if (links_[static_cast<std::size_t>(id)].from == a) return id;
    }
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

const std::vector<int>& Topology::node_vertices(int node) const {
  static const std::vector<int> kNone;
  const auto it = node_vertices_.find(node);
  return it == node_vertices_.end() ? kNone : it->second;
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

void Topology::search(int from_vertex, const std::vector<int>* targets) const {
  const std::size_t n = vertices_.size();
  if (from_vertex < 0 || static_cast<std::size_t>(from_vertex) >= n) {
    throw InputError(prefix(source_) + "route from an unknown vertex id " + std::to_string(from_vertex));
  }
  SearchSpace& s = t_search;
  s.begin(n);
  std::size_t left = 0;  // targets not settled yet
  if (targets) {
    for (const int t : *targets) {
      if (s.target[static_cast<std::size_t>(t)] != s.stamp) ++left;
      s.target[static_cast<std::size_t>(t)] = s.stamp;
    }
    if (left == 0) return;
  }
  const auto src = static_cast<std::size_t>(from_vertex);
  s.dist[src] = PathCost{};
  s.pred_link[src] = -1;
  s.reached[src] = s.stamp;
  s.heap.push_back(HeapEntry{PathCost{}, from_vertex});
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end());
    const HeapEntry top = s.heap.back();
    s.heap.pop_back();
    const auto u = static_cast<std::size_t>(top.vertex);
    if (s.settled[u] == s.stamp) continue;  // a stale entry: u was settled nearer
    s.settled[u] = s.stamp;
    if (targets && s.target[u] == s.stamp && --left == 0) return;
    // GPUs are endpoints: no route leaves a GPU other than the source.
    if (u != src && vertices_[u].kind == VertexKind::gpu) continue;
    const PathCost du = s.dist[u];
    for (const int id : out_links_[u]) {
      const auto& l = links_[static_cast<std::size_t>(id)];
      const auto v = static_cast<std::size_t>(l.to);
      const PathCost dv{du.ps + link_ps_[static_cast<std::size_t>(id)], du.hops + 1, du.id_sum + id};
      // Strictly shorter only: of equal paths the one found first stays.
      if (s.reached[v] == s.stamp && !(dv < s.dist[v])) continue;
      s.dist[v] = dv;
      s.pred_link[v] = id;
      s.reached[v] = s.stamp;
      s.heap.push_back(HeapEntry{dv, l.to});
      std::push_heap(s.heap.begin(), s.heap.end());
    }
  }
}

std::optional<Route> Topology::found_route(int from_vertex, int to_vertex) const {
  const SearchSpace& s = t_search;
  if (!s.has(to_vertex)) return std::nullopt;
  Route r;
  if (to_vertex == from_vertex) return r;
  double min_bw = std::numeric_limits<double>::infinity();
  double latency = 0.0;
  int at = to_vertex;
  while (at != from_vertex) {
    const int id = s.pred_link[static_cast<std::size_t>(at)];
    const auto& l = links_[static_cast<std::size_t>(id)];
    r.links.push_back(id);
    min_bw = std::min(min_bw, l.effective_bandwidth().value());
    latency += l.latency.value();
    at = l.from;
  }
  std::reverse(r.links.begin(), r.links.end());
  r.bottleneck = BytesPerSec{min_bw};
  r.latency = Seconds{latency};
  return r;
}

std::vector<std::optional<Route>> Topology::routes_from(int from_vertex) const {
  search(from_vertex, nullptr);
  std::vector<std::optional<Route>> out(vertices_.size());
  for (std::size_t v = 0; v < out.size(); ++v) out[v] = found_route(from_vertex, static_cast<int>(v));
  return out;
}

std::vector<std::optional<Route>> Topology::routes_to(int from_vertex, const std::vector<int>& to_vertices) const {
  for (const int v : to_vertices) {
    if (v < 0 || static_cast<std::size_t>(v) >= vertices_.size()) {
      throw InputError(prefix(source_) + "route to an unknown vertex id " + std::to_string(v));
    }
  }
  search(from_vertex, &to_vertices);
  std::vector<std::optional<Route>> out;
  out.reserve(to_vertices.size());
  for (const int v : to_vertices) out.push_back(found_route(from_vertex, v));
  return out;
}

Route Topology::route(int from_vertex, int to_vertex) const {
  auto r = std::move(routes_to(from_vertex, {to_vertex}).front());
  if (!r) {
    const auto& from = vertex(from_vertex);
    throw InputError(prefix(from.where.empty() ? source_ : from.where) + "topology '" + name_ + "': no route from " +
                     describe_vertex(from_vertex) + " to " + describe_vertex(to_vertex));
  }
  return std::move(*r);
}

std::optional<int> Topology::common_nvswitch(const std::vector<int>& gpu_indices) const {
  if (gpu_indices.empty()) return std::nullopt;
  // The candidates are the switches the first GPU links to (not every vertex of a large cluster).
  std::optional<int> best;
  for (const int out : out_links_[static_cast<std::size_t>(gpu_vertex(gpu_indices.front()))]) {
    const int s = links_[static_cast<std::size_t>(out)].to;
    const auto& sw = vertices_[static_cast<std::size_t>(s)];
    if (sw.kind != VertexKind::nvswitch || !sw.nvls || (best && *best < s)) continue;
    bool all = true;
    for (int gpu : gpu_indices) {
      const int v = gpu_vertex(gpu);
      if (!find_link(v, s) || !find_link(s, v)) {
        all = false;
        break;
      }
    }
    if (all) best = s;
  }
  return best;
}

BytesPerSec Topology::nic_bandwidth_per_gpu(int gpu) const {
  const int node = node_of_gpu(gpu);
  double nic = 0.0;
  int gpus_in_node = 0;
  for (const int id : node_vertices(node)) {
    const auto& v = vertices_[static_cast<std::size_t>(id)];
    if (v.kind == VertexKind::nic) nic += v.nic_bandwidth.value();
    if (v.kind == VertexKind::gpu) ++gpus_in_node;
  }
  return BytesPerSec{gpus_in_node > 0 ? nic / gpus_in_node : 0.0};
}

}  // namespace servesim
