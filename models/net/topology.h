// Interconnect topology of one machine or a cluster of machines: a directed graph whose vertices are GPUs,
// NVSwitch fabrics, PCIe switches, CPUs (host bridge / host memory), NICs and network switches, and whose edges
// are links with a bandwidth per direction and a latency. A link declared in a catalogue file is bidirectional
// (two directed edges with the same per-direction bandwidth and latency) unless it says `bidirectional = false`.
//
// Routing: route(a, b) is the shortest path by total latency, then by hop count, then by the smallest sum of
// link ids (links are numbered in declaration order, so ties go to the links declared first). Latencies are
// compared in integer picoseconds, so equal sums compare equal exactly. GPUs are endpoints only: no route passes
// *through* a GPU (NCCL's PXN forwarding is a choice of the collective algorithm, not of the fabric). The result
// depends only on the declarations, never on pointer values or hash order.
//
// GPU indices: "GPU i" is the i-th GPU vertex in declaration (catalogue) order; in a cluster GPU i of node k is
// global GPU k * gpus_per_node + i. All group-level APIs (CommGroup, first_gpus) speak GPU indices; route() and
// vertices() speak vertex ids.
//
// The catalogue format (scenarios/topologies/README.md) is read by from_config() / load_topology().
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/common/units.h"

namespace servesim {

class Config;

enum class VertexKind { gpu, nvswitch, pcie_switch, cpu, nic, net_switch };

[[nodiscard]] std::string_view to_string(VertexKind kind);
[[nodiscard]] std::optional<VertexKind> parse_vertex_kind(std::string_view text);
// "gpu, nvswitch, pcie_switch, cpu, nic, net_switch"
[[nodiscard]] std::string vertex_kind_names();

struct TopoVertex {
  std::string name;
  VertexKind kind = VertexKind::gpu;
  int node = 0;                  // machine index in a cluster; 0 in a single-machine topology
  std::string where;             // "file:line" of the declaration (empty for hand-built vertices)
  BytesPerSec nic_bandwidth{0};  // nic: line rate per direction
  bool nvls = false;             // nvswitch: supports NVLink SHARP in-network reduction (NVLS)
  double nvls_efficiency = 0.0;  // nvswitch: fraction of the GPU link bandwidth an NVLS collective reaches
  // gpu: CUDA compute capability x 10 (90 = Hopper), catalogue key `compute_capability` (default 90). NCCL's
  // tuning model reads it (per-link NVLink bandwidth, per-architecture constants, NVLS, LL128).
  int compute_capability = 90;
};

struct TopoLink {
  int from = 0;
  int to = 0;
  BytesPerSec bandwidth{0};  // per direction, as the datasheet gives it
  Seconds latency{0};
  std::string where;  // "file:line" of the declaration
  double efficiency = 1.0;  // fraction of `bandwidth` NCCL's point-to-point transfers (rings, trees) reach
  [[nodiscard]] BytesPerSec effective_bandwidth() const { return bandwidth * efficiency; }
};

struct Route {
  std::vector<int> links;  // directed link ids, from source to destination (empty when source == destination)
  BytesPerSec bottleneck{std::numeric_limits<double>::infinity()};  // smallest effective link bandwidth on the route
  Seconds latency{0};                                               // sum of link latencies
};

class Topology {
 public:
  // Per-step software latency of a collective step when the catalogue does not set `step_latency`
  // (kernel-side synchronisation and flag polling between steps; see models/net/collective.h).
  static constexpr double kDefaultStepLatencySeconds = 1e-6;

  explicit Topology(std::string name = "", std::string source = "");

  // Reads a topology description (format: scenarios/topologies/README.md). A cluster description
  // (`node = "..."`) loads its node from `catalog_dir`. Rejects unknown keys within `cfg`.
  [[nodiscard]] static Topology from_config(const Config& cfg, const std::string& catalog_dir = "");

  // Building by hand (tests, generated topologies). Both throw InputError naming `where` on bad input:
  // duplicate vertex names; unknown ids, self links, duplicate links and bandwidth <= 0.
  int add_vertex(TopoVertex v);
  void add_link(int a, int b, BytesPerSec bandwidth, Seconds latency, const std::string& where = "",
                bool bidirectional = true, double efficiency = 1.0);
  void set_step_latency(Seconds s) { step_latency_ = s; }
  void set_name(std::string name) { name_ = std::move(name); }
  // Where "how many GPUs there are" was declared; named by first_gpus() when too many ranks are requested.
  void set_capacity_where(std::string where) { capacity_where_ = std::move(where); }

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& source() const { return source_; }
  [[nodiscard]] Seconds step_latency() const { return step_latency_; }
  [[nodiscard]] const std::vector<TopoVertex>& vertices() const { return vertices_; }
  [[nodiscard]] const std::vector<TopoLink>& links() const { return links_; }
  [[nodiscard]] const TopoVertex& vertex(int id) const { return vertices_.at(static_cast<std::size_t>(id)); }
  [[nodiscard]] const TopoLink& link(int id) const { return links_.at(static_cast<std::size_t>(id)); }
  [[nodiscard]] std::optional<int> find_vertex(std::string_view name) const;
  // Id of the directed link a -> b, if any.
  [[nodiscard]] std::optional<int> find_link(int a, int b) const;

  // GPU vertex ids in catalogue order; GPU index i is gpus()[i].
  [[nodiscard]] const std::vector<int>& gpus() const { return gpus_; }
  [[nodiscard]] int gpu_count() const { return static_cast<int>(gpus_.size()); }
  [[nodiscard]] int gpu_vertex(int gpu) const;
  [[nodiscard]] int node_of_gpu(int gpu) const { return vertex(gpu_vertex(gpu)).node; }
  [[nodiscard]] int node_count() const { return node_count_; }
  // Ids of the vertices whose `node` is `node`, ascending (empty for a node without vertices).
  [[nodiscard]] const std::vector<int>& node_vertices(int node) const;
  // Distinct machines a group of GPU indices spans.
  [[nodiscard]] int nodes_spanned(const std::vector<int>& gpu_indices) const;
  // GPUs 0 .. ranks-1; throws InputError naming the GPU declaration when ranks > gpu_count() or ranks < 1.
  [[nodiscard]] std::vector<int> first_gpus(int ranks) const;
  // Throws InputError when a GPU index is out of range (naming the GPU declaration).
  void check_gpu_index(int gpu) const;

  // Shortest route between two vertices; throws InputError naming both declarations when there is none.
  [[nodiscard]] Route route(int from_vertex, int to_vertex) const;
  [[nodiscard]] Route gpu_route(int gpu_a, int gpu_b) const { return route(gpu_vertex(gpu_a), gpu_vertex(gpu_b)); }
  // Routes from one vertex to every vertex (nullopt where unreachable): one Dijkstra run over the whole graph.
  [[nodiscard]] std::vector<std::optional<Route>> routes_from(int from_vertex) const;
  // Routes from one vertex to each of `to_vertices`, in their order (nullopt where unreachable; repeats allowed):
  // the same routes as routes_from(), from one Dijkstra run that stops once every listed vertex is settled. Its
  // cost grows with the part of the graph nearer than the farthest target, not with the graph: the routes among
  // the GPUs of one node of a 4,096-node cluster explore that node only. Throws InputError for an unknown id.
  // Searches of one thread share a scratch space (a thread_local, sized to the largest topology searched); a
  // Topology may be routed from several threads at once.
  [[nodiscard]] std::vector<std::optional<Route>> routes_to(int from_vertex, const std::vector<int>& to_vertices) const;
  // Ids of the links leaving a vertex, in declaration order (ascending).
  [[nodiscard]] const std::vector<int>& out_links(int vertex_id) const {
    return out_links_.at(static_cast<std::size_t>(vertex_id));
  }

  // An NVLS-capable NVSwitch vertex that every listed GPU links to directly in both directions (the smallest
  // such vertex id), or nullopt. NVLS collectives need one.
  [[nodiscard]] std::optional<int> common_nvswitch(const std::vector<int>& gpu_indices) const;
  [[nodiscard]] bool shares_nvswitch(const std::vector<int>& gpu_indices) const {
    return common_nvswitch(gpu_indices).has_value();
  }
  // Sum of the line rates of the NICs in the GPU's node divided by the GPUs in that node (0 without NICs).
  [[nodiscard]] BytesPerSec nic_bandwidth_per_gpu(int gpu) const;

 private:
  [[nodiscard]] std::string describe_vertex(int id) const;
  // Dijkstra from `from_vertex` into this thread's scratch space; with `targets`, stops once all are settled.
  void search(int from_vertex, const std::vector<int>* targets) const;
  // The route to `to_vertex` found by the last search() from `from_vertex` on this thread (nullopt: unreached).
  [[nodiscard]] std::optional<Route> found_route(int from_vertex, int to_vertex) const;

  std::string name_;
  std::string source_;
  std::string capacity_where_;
  Seconds step_latency_{kDefaultStepLatencySeconds};
  std::vector<TopoVertex> vertices_;
  std::vector<TopoLink> links_;
  std::vector<int> gpus_;
  std::map<std::string, int, std::less<>> by_name_;
  int node_count_ = 1;
  std::vector<std::vector<int>> out_links_;  // per vertex, link ids in declaration order
  std::vector<std::vector<int>> in_links_;   // per vertex, ids of the links arriving there, in declaration order
  std::map<int, std::vector<int>> node_vertices_;  // node -> its vertex ids, ascending
  std::vector<std::int64_t> link_ps_;        // per link, its latency in integer picoseconds (the routing length)
};

// Loads a catalogue topology. `name_or_path` is a catalogue name ("dgx-h100" -> catalog_dir/dgx-h100.toml) or
// a path to a .toml file (anything containing '/' or ending in ".toml"). An unknown name lists the catalogue.
// Throws InputError for a file that is not a regular file (or over 256 MiB), for a cluster whose `node` chain comes
// back to a file being read (naming the chain "a.toml -> b.toml -> a.toml"), and for chains deeper than 8 files.
[[nodiscard]] Topology load_topology(const std::string& name_or_path, const std::string& catalog_dir);
// Names (file stems) of the catalogue's *.toml files, sorted.
[[nodiscard]] std::vector<std::string> topology_catalog_names(const std::string& catalog_dir);

}  // namespace servesim
