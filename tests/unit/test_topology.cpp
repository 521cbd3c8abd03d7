// Topology: routing on hand-built graphs, the catalogue files, and the one-line errors for bad topologies.
#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/dijkstra_shortest_paths.hpp>
#include <boost/property_map/function_property_map.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "helpers.h"
#include "models/common/config.h"
#include "models/common/error.h"
#include "models/net/comm_group.h"
#include "models/net/topology.h"

using namespace servesim;
using servesim::test::input_error;

namespace {

const std::string kCatalog = test::source_dir() + "/scenarios/topologies";
const std::string kFixtures = test::source_dir() + "/tests/data/topologies";

int add(Topology& t, const std::string& name, VertexKind kind, int node = 0) {
  TopoVertex v;
  v.name = name;
  v.kind = kind;
  v.node = node;
  v.nvls = kind == VertexKind::nvswitch;
  v.nvls_efficiency = 0.85;
  return t.add_vertex(v);
}

std::string names_of(const Topology& t, const Route& r) {
  std::string out = t.vertex(t.link(r.links.front()).from).name;
  for (int id : r.links) out += ">" + t.vertex(t.link(id).to).name;
  return out;
}


}  // namespace

TEST_CASE("topology: route bottleneck and latency on a hand-built chain", "[topology]") {
  Topology t("chain");
  const int g0 = add(t, "g0", VertexKind::gpu);
  const int s1 = add(t, "s1", VertexKind::pcie_switch);
  const int s2 = add(t, "s2", VertexKind::pcie_switch);
  const int g1 = add(t, "g1", VertexKind::gpu);
  t.add_link(g0, s1, BytesPerSec{64e9}, us(0.5));
  t.add_link(s1, s2, BytesPerSec{16e9}, us(1.0));
  t.add_link(s2, g1, BytesPerSec{32e9}, us(0.25));

  const Route r = t.route(g0, g1);
  REQUIRE(r.links.size() == 3);
  CHECK(names_of(t, r) == "g0>s1>s2>g1");
  CHECK(r.bottleneck.value() == 16e9);
  CHECK(r.latency.value() == Approx(1.75e-6).epsilon(1e-12));
  // A bidirectional link is two directed links with the same bandwidth.
  const Route back = t.route(g1, g0);
  CHECK(names_of(t, back) == "g1>s2>s1>g0");
  CHECK(back.bottleneck.value() == 16e9);
  CHECK(t.links().size() == 6);
  // To itself: empty, free.
  const Route self = t.route(g0, g0);
  CHECK(self.links.empty());
  CHECK(self.latency.value() == 0.0);
  CHECK(t.gpus() == std::vector<int>{g0, g1});
}

TEST_CASE("topology: shortest by latency, then hops, then earliest links", "[topology]") {
  Topology t("diamond");
  const int a = add(t, "a", VertexKind::gpu);
  const int fast = add(t, "fast", VertexKind::pcie_switch);
  const int mid1 = add(t, "mid1", VertexKind::pcie_switch);
  const int mid2 = add(t, "mid2", VertexKind::pcie_switch);
  const int b = add(t, "b", VertexKind::gpu);
  // a-fast-b: 2 hops, 2 us.  a-mid1-mid2-b: 3 hops, 1.5 us (wins on latency despite more hops).
  t.add_link(a, fast, BytesPerSec{100e9}, us(1.0));
  t.add_link(fast, b, BytesPerSec{100e9}, us(1.0));
  t.add_link(a, mid1, BytesPerSec{10e9}, us(0.5));
  t.add_link(mid1, mid2, BytesPerSec{10e9}, us(0.5));
  t.add_link(mid2, b, BytesPerSec{10e9}, us(0.5));
  CHECK(names_of(t, t.route(a, b)) == "a>mid1>mid2>b");

  // Equal latency: fewer hops wins.
  Topology h("hops");
  const int x = add(h, "x", VertexKind::gpu);
  const int p = add(h, "p", VertexKind::pcie_switch);
  const int q = add(h, "q", VertexKind::pcie_switch);
  const int r = add(h, "r", VertexKind::pcie_switch);
  const int y = add(h, "y", VertexKind::gpu);
  h.add_link(x, p, BytesPerSec{1e9}, us(0.5));
  h.add_link(p, q, BytesPerSec{1e9}, us(0.5));
  h.add_link(q, y, BytesPerSec{1e9}, us(0.5));
  h.add_link(x, r, BytesPerSec{1e9}, us(0.75));
  h.add_link(r, y, BytesPerSec{1e9}, us(0.75));
  CHECK(names_of(h, h.route(x, y)) == "x>r>y");

  // Equal latency and hops: the links declared first win, every time.
  Topology e("tie");
  const int u = add(e, "u", VertexKind::gpu);
  const int s_late = add(e, "s_late", VertexKind::pcie_switch);
  const int s_early = add(e, "s_early", VertexKind::pcie_switch);
  const int v = add(e, "v", VertexKind::gpu);
  e.add_link(u, s_early, BytesPerSec{1e9}, us(1));
  e.add_link(s_early, v, BytesPerSec{1e9}, us(1));
  e.add_link(u, s_late, BytesPerSec{2e9}, us(1));
  e.add_link(s_late, v, BytesPerSec{2e9}, us(1));
  for (int i = 0; i < 3; ++i) CHECK(names_of(e, e.route(u, v)) == "u>s_early>v");
}

TEST_CASE("topology: routes never pass through a GPU", "[topology]") {
  Topology t("no-transit");
  const int g0 = add(t, "g0", VertexKind::gpu);
  const int g1 = add(t, "g1", VertexKind::gpu);
  const int g2 = add(t, "g2", VertexKind::gpu);
  const int sw = add(t, "sw", VertexKind::pcie_switch);
  t.add_link(g0, g1, BytesPerSec{50e9}, us(0.1));  // a direct GPU-GPU link
  t.add_link(g1, sw, BytesPerSec{50e9}, us(0.1));
  t.add_link(g2, sw, BytesPerSec{50e9}, us(0.1));
  CHECK(names_of(t, t.route(g0, g1)) == "g0>g1");
  CHECK(names_of(t, t.route(g1, g2)) == "g1>sw>g2");
  // g0 reaches g2 only through g1: no route.
  const std::string msg = input_error([&] { (void)t.route(g0, g2); });
  CHECK_THAT(msg, Catch::Contains("no route from gpu 'g0'"));
  CHECK_THAT(msg, Catch::Contains("'g2'"));
}

TEST_CASE("topology: one-way links and hand-built validation", "[topology]") {
  Topology t("oneway");
  const int a = add(t, "a", VertexKind::gpu);
  const int b = add(t, "b", VertexKind::gpu);
  t.add_link(a, b, BytesPerSec{1e9}, us(1), "here:3", /*bidirectional=*/false);
  CHECK(t.route(a, b).links.size() == 1);
  CHECK_THROWS_AS(t.route(b, a), InputError);
  CHECK_THAT(input_error([&] { t.add_link(a, b, BytesPerSec{1e9}, us(1), "here:4"); }),
             Catch::Contains("here:4: duplicate link a -> b (first declared at here:3)"));
  CHECK_THAT(input_error([&] { t.add_link(a, a, BytesPerSec{1e9}, us(1), "here:5"); }),
             Catch::Contains("here:5: link from 'a' to itself"));
  CHECK_THAT(input_error([&] { t.add_link(b, a, BytesPerSec{0}, us(1), "here:6"); }),
             Catch::Contains("here:6: link b - a: bandwidth must be > 0"));
  CHECK_THAT(input_error([&] { add(t, "a", VertexKind::cpu); }), Catch::Contains("duplicate vertex name 'a'"));
}

TEST_CASE("topology: compact [[vertex]] / [[link]] format", "[topology]") {
  const Config cfg = Config::from_string(R"(
name = "tiny"
step_latency = "2us"
[[vertex]]
name = "gpu[0-3]"
kind = "gpu"
[[vertex]]
name = "pcie[0-1]"
kind = "pcie_switch"
[[vertex]]
name = "nic0"
kind = "nic"
bandwidth = "200Gb/s"
[[vertex]]
name = "host"
kind = "cpu"
[[link]]
a = "gpu[0-3]"
b = "pcie[0,0,1,1]"
bandwidth = "32GB/s"
latency = "0.5us"
[[link]]
a = "pcie[0-1]"
b = "host"
bandwidth = "16GB/s"
latency = "1us"
[[link]]
a = "nic0"
b = "pcie1"
bandwidth = "32GB/s"
latency = "0.5us"
bidirectional = false
)",
                                         "tiny.toml");
  const Topology t = Topology::from_config(cfg);
  CHECK(t.name() == "tiny");
  CHECK(t.gpu_count() == 4);
  CHECK(t.vertices().size() == 8);
  CHECK(t.links().size() == 4 * 2 + 2 * 2 + 1);
  CHECK(t.step_latency().value() == Approx(2e-6));
  CHECK(t.vertex(t.gpu_vertex(2)).name == "gpu2");
  CHECK(t.node_of_gpu(3) == 0);
  CHECK(t.node_count() == 1);
  CHECK(t.nic_bandwidth_per_gpu(0).value() == Approx(25e9 / 4));
  CHECK_FALSE(t.shares_nvswitch({0, 1}));
  const Route r = t.gpu_route(0, 3);
  CHECK(names_of(t, r) == "gpu0>pcie0>host>pcie1>gpu3");
  CHECK(r.bottleneck.value() == 16e9);
  CHECK(r.latency.value() == Approx(3e-6).epsilon(1e-12));
  CHECK(*t.find_vertex("nic0") == 6);
  CHECK_FALSE(t.find_link(*t.find_vertex("pcie1"), *t.find_vertex("nic0")).has_value());
}

TEST_CASE("topology: catalogue files load", "[topology][catalog]") {
  const auto names = topology_catalog_names(kCatalog);
  for (const char* n : {"dgx-h100", "hgx-h200", "pcie-8x-l40s", "cluster-2x-dgx-h100", "cluster-4x-dgx-h100"}) {
    INFO(n);
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
    const Topology t = load_topology(n, kCatalog);
    CHECK(t.name() == n);
    CHECK(t.gpu_count() % 8 == 0);
    // Every GPU reaches every other one.
    const auto all = t.first_gpus(t.gpu_count());
    CHECK_NOTHROW(CommGroup(std::make_shared<const Topology>(t), all));
  }

  const Topology dgx = load_topology("dgx-h100", kCatalog);
  CHECK(dgx.gpu_count() == 8);
  const Route nv = dgx.gpu_route(0, 5);
  CHECK(names_of(dgx, nv) == "gpu0>nvswitch>gpu5");
  // NVLink4's 450 GB/s at the 0.816 NCCL rings reach.
  CHECK(dgx.link(nv.links.front()).bandwidth.value() == 450e9);
  CHECK(nv.bottleneck.value() == Approx(450e9 * 0.816).epsilon(1e-12));
  CHECK(nv.latency.value() == Approx(1e-6).epsilon(1e-12));
  CHECK(dgx.shares_nvswitch(dgx.first_gpus(8)));
  CHECK(dgx.nic_bandwidth_per_gpu(3).value() == 50e9);
  CHECK(dgx.step_latency().value() == Approx(1e-6));

  const Topology l40s = load_topology("pcie-8x-l40s", kCatalog);
  CHECK_FALSE(l40s.shares_nvswitch({0, 1}));
  const Route cross = l40s.gpu_route(0, 7);
  CHECK(names_of(l40s, cross) == "gpu0>pcie0>cpu0>cpu1>pcie1>gpu7");
  CHECK(cross.bottleneck.value() == 31.5e9);
  CHECK(cross.latency.value() == Approx(2.2e-6).epsilon(1e-12));
  CHECK(names_of(l40s, l40s.gpu_route(1, 2)) == "gpu1>pcie0>gpu2");
  CHECK(l40s.nic_bandwidth_per_gpu(0).value() == Approx(2 * 25e9 / 8));

  const Topology c2 = load_topology("cluster-2x-dgx-h100", kCatalog);
  CHECK(c2.gpu_count() == 16);
  CHECK(c2.node_count() == 2);
  CHECK(c2.node_of_gpu(7) == 0);
  CHECK(c2.node_of_gpu(8) == 1);
  CHECK(c2.vertex(c2.gpu_vertex(11)).name == "n1.gpu3");
  // Same rail: NIC 3 of both nodes on leaf 3, no spine.
  const Route rail = c2.gpu_route(3, 11);
  CHECK(names_of(c2, rail) == "n0.gpu3>n0.pcie3>n0.nic3>leaf3>n1.nic3>n1.pcie3>n1.gpu3");
  CHECK(rail.bottleneck.value() == 50e9);
  CHECK(rail.latency.value() == Approx(3e-6).epsilon(1e-12));
  // Across rails: through the spine.
  CHECK(names_of(c2, c2.gpu_route(0, 15)) == "n0.gpu0>n0.pcie0>n0.nic0>leaf0>spine>leaf7>n1.nic7>n1.pcie7>n1.gpu7");
  // Inside a node: NVLink.
  CHECK(names_of(c2, c2.gpu_route(8, 9)) == "n1.gpu0>n1.nvswitch>n1.gpu1");
  CHECK(c2.shares_nvswitch(c2.first_gpus(8)));
  CHECK_FALSE(c2.shares_nvswitch(c2.first_gpus(16)));
  CHECK(c2.nic_bandwidth_per_gpu(12).value() == 50e9);

  const Topology c4 = load_topology("cluster-4x-dgx-h100", kCatalog);
  CHECK(c4.gpu_count() == 32);
  CHECK(c4.node_count() == 4);
  CHECK(c4.node_of_gpu(31) == 3);
}

TEST_CASE("topology: cluster without rails, node by relative path", "[topology]") {
  const Topology t = load_topology(kFixtures + "/cluster_tor.toml", kCatalog);
  CHECK(t.gpu_count() == 16);
  // All NICs of node k on leaf k: GPU 3 of node 0 to GPU 3 of node 1 goes through the spine, whose links are
  // the two 100 GB/s uplinks of a leaf summed.
  const Route r = t.gpu_route(3, 11);
  CHECK(names_of(t, r) == "n0.gpu3>n0.pcie3>n0.nic3>leaf0>spine>leaf1>n1.nic3>n1.pcie3>n1.gpu3");
  CHECK(r.bottleneck.value() == 50e9);
  CHECK(r.latency.value() == Approx(3.5e-6).epsilon(1e-12));
  const auto up = t.find_link(*t.find_vertex("leaf0"), *t.find_vertex("spine"));
  REQUIRE(up.has_value());
  CHECK(t.link(*up).bandwidth.value() == 200e9);
  // Default uplinks are non-blocking: a leaf's 8 x 50 GB/s of NICs.
  const Topology rail = load_topology("cluster-4x-dgx-h100", kCatalog);
  CHECK(rail.link(*rail.find_link(*rail.find_vertex("leaf5"), *rail.find_vertex("spine"))).bandwidth.value() ==
        4 * 50e9);
}

TEST_CASE("topology: routing is deterministic", "[topology]") {
  const Topology a = load_topology("cluster-4x-dgx-h100", kCatalog);
  const Topology b = load_topology("cluster-4x-dgx-h100", kCatalog);
  for (int i = 0; i < 32; i += 5) {
    for (int j = 0; j < 32; j += 3) CHECK(a.gpu_route(i, j).links == b.gpu_route(i, j).links);
  }
}

TEST_CASE("topology: unknown catalogue name lists the catalogue", "[topology][errors]") {
  const std::string msg = input_error([] { (void)load_topology("dgx-h999", kCatalog); });
  CHECK_THAT(msg, Catch::Contains("unknown topology 'dgx-h999'"));
  CHECK_THAT(msg, Catch::Contains("dgx-h100"));
  CHECK_THAT(msg, Catch::Contains("pcie-8x-l40s"));
}

TEST_CASE("topology: bad topologies give one line naming file and line", "[topology][errors]") {
  auto load = [](const std::string& file) { (void)load_topology(kFixtures + "/" + file, kCatalog); };
  SECTION("zero bandwidth") {
    const std::string msg = input_error([&] { load("bad_zero_bandwidth.toml"); });
    CHECK_THAT(msg, Catch::Contains("bad_zero_bandwidth.toml:15:"));
    CHECK_THAT(msg, Catch::Contains("link[0].bandwidth"));
    CHECK_THAT(msg, Catch::Contains("must be > 0"));
  }
  SECTION("negative bandwidth") {
    const std::string msg = input_error([&] { load("bad_negative_bandwidth.toml"); });
    CHECK_THAT(msg, Catch::Contains("bad_negative_bandwidth.toml:15:"));
    CHECK_THAT(msg, Catch::Contains("must not be negative"));
  }
  SECTION("unknown vertex in a link") {
    const std::string msg = input_error([&] { load("bad_unknown_vertex.toml"); });
    CHECK_THAT(msg, Catch::Contains("bad_unknown_vertex.toml:14:"));
    CHECK_THAT(msg, Catch::Contains("unknown vertex 'switch'"));
  }
  SECTION("duplicate vertex name") {
    const std::string msg = input_error([&] { load("bad_duplicate_name.toml"); });
    CHECK_THAT(msg, Catch::Contains("bad_duplicate_name.toml:9:"));
    CHECK_THAT(msg, Catch::Contains("duplicate vertex name 'gpu1' (first declared at"));
  }
  SECTION("unknown vertex kind") {
    const std::string msg = input_error([&] { load("bad_unknown_kind.toml"); });
    CHECK_THAT(msg, Catch::Contains("bad_unknown_kind.toml:10:"));
    CHECK_THAT(msg, Catch::Contains("unknown vertex kind 'infiniband'"));
  }
  SECTION("GPU with no route to the others, when a group is asked for") {
    const auto t = std::make_shared<const Topology>(load_topology(kFixtures + "/bad_no_route.toml", kCatalog));
    CHECK_NOTHROW(CommGroup(t, {0, 1, 2}));  // the loaded file is fine until gpu3 is used
    const std::string msg = input_error([&] { CommGroup(t, {0, 1, 2, 3}); });
    CHECK_THAT(msg, Catch::Contains("bad_no_route.toml:8:"));
    CHECK_THAT(msg, Catch::Contains("GPU 3 ('gpu3') has no route"));
    const std::string first = input_error([&] { CommGroup(t, {3, 0}); });
    CHECK_THAT(first, Catch::Contains("bad_no_route.toml:8:"));
  }
  SECTION("more ranks requested than GPUs") {
    const auto t = std::make_shared<const Topology>(load_topology(kFixtures + "/star4.toml", kCatalog));
    const std::string msg = input_error([&] { (void)t->first_gpus(5); });
    CHECK_THAT(msg, Catch::Contains("star4.toml:5:"));
    CHECK_THAT(msg, Catch::Contains("has 4 GPUs but 5 ranks were requested"));
    const std::string group = input_error([&] { CommGroup(t, {0, 1, 2, 3, 4}); });
    CHECK_THAT(group, Catch::Contains("star4.toml:5:"));
    CHECK_THAT(group, Catch::Contains("GPU index 4 requested"));
  }
  SECTION("cluster of a node without NICs") {
    const std::string msg = input_error([&] { load("bad_cluster_no_nic.toml"); });
    CHECK_THAT(msg, Catch::Contains("bad_cluster_no_nic.toml:3:"));
    CHECK_THAT(msg, Catch::Contains("node topology 'star4' has no nic vertices"));
  }
  SECTION("unknown key") {
    const Config cfg =
        Config::from_string("name = \"x\"\n[[vertex]]\nname = \"g\"\nkind = \"gpu\"\ncolour = 1\n", "k.toml");
    const std::string msg = input_error([&] { (void)Topology::from_config(cfg); });
    CHECK_THAT(msg, Catch::Contains("k.toml:5: unknown key 'vertex[0].colour'"));
  }
}

TEST_CASE("topology: cluster sizes are capped", "[topology][errors]") {
  const auto dir = test::temp_dir("bigcluster");
  auto cluster = [&](const std::string& nodes, const std::string& leaves) {
    const std::string path = test::write_file(dir / "c.toml", "name = \"big\"\nnode = \"" + kCatalog + "/dgx-h100.toml\"\nnodes = " + nodes +
                                                                  "\n[fabric]\nkind = \"leaf_spine\"\nleaves = " + leaves +
                                                                  "\nspines = 4\nlink_latency = \"0.5us\"\n");
    return input_error([&] { (void)load_topology(path, kCatalog); });
  };
  CHECK(cluster("4", "8").empty());
  const std::string nodes = cluster("100000", "8");
  CHECK_THAT(nodes, Catch::Contains("c.toml:3:") && Catch::Contains("at most 4096 nodes"));
  const std::string leaves = cluster("2", "5000");
  CHECK_THAT(leaves, Catch::Contains("c.toml:6:") && Catch::Contains("at most 1024 leaf switches"));
}

TEST_CASE("topology: a link's efficiency scales its routes, not NVLS, out of range is refused", "[topology][errors]") {
  const auto dir = test::temp_dir("efficiency");
  auto topo = [&](const std::string& eff) {
    return test::write_file(dir / "t.toml", "name = \"t\"\n[[vertex]]\nname = \"gpu[0-3]\"\nkind = \"gpu\"\n"
                                            "[[vertex]]\nname = \"sw\"\nkind = \"nvswitch\"\n"
                                            "[[link]]\na = \"gpu[0-3]\"\nb = \"sw\"\nbandwidth = \"100GB/s\"\n"
                                            "latency = \"1us\"\n" + eff);
  };
  const auto full = std::make_shared<const Topology>(load_topology(topo(""), kCatalog));
  const auto half = std::make_shared<const Topology>(load_topology(topo("efficiency = 0.5\n"), kCatalog));
  CHECK(half->gpu_route(0, 1).bottleneck.value() == 50e9);
  const Bytes s{1e9};
  // Ring all_reduce's bandwidth term doubles; NVLS is unchanged.
  const double ring_full = CommGroup(full, {0, 1, 2, 3}, "ring", nullptr, "link_load").time(CollectiveOp::all_reduce, s).value();
  const double ring_half = CommGroup(half, {0, 1, 2, 3}, "ring", nullptr, "link_load").time(CollectiveOp::all_reduce, s).value();
  CHECK(ring_half - ring_full == Approx(2.0 * 3.0 / 4.0 * 1e9 / 100e9).epsilon(1e-9));
  CHECK(CommGroup(half, {0, 1, 2, 3}, "nvls", nullptr, "link_load").time(CollectiveOp::all_reduce, s).value() ==
        CommGroup(full, {0, 1, 2, 3}, "nvls", nullptr, "link_load").time(CollectiveOp::all_reduce, s).value());
  const std::string msg = input_error([&] { (void)load_topology(topo("efficiency = 1.5\n"), kCatalog); });
  CHECK_THAT(msg, Catch::Contains("t.toml:") && Catch::Contains("efficiency") && Catch::Contains("(0, 1]"));
}

namespace {

// The reference router: Boost's Dijkstra over the whole graph, rebuilt per source, with the cost order of
// models/net/topology.h (latency in integer picoseconds, then hops, then the sum of link ids; no transit through a
// GPU). It is how Topology routed before its own search; the routes must agree with it link for link.
struct RefCost {
  std::int64_t ps = 0;
  std::int64_t hops = 0;
  std::int64_t id_sum = 0;
  auto operator<=>(const RefCost&) const = default;
};

std::vector<std::optional<Route>> reference_routes_from(const Topology& t, int source) {
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property,
                                      boost::property<boost::edge_index_t, int>>;
  const std::size_t n = t.vertices().size();
  Graph g(n);
  for (std::size_t id = 0; id < t.links().size(); ++id) {
    const auto& l = t.links()[id];
    if (static_cast<int>(l.from) != source && t.vertex(l.from).kind == VertexKind::gpu) continue;
    boost::add_edge(static_cast<std::size_t>(l.from), static_cast<std::size_t>(l.to), static_cast<int>(id), g);
  }
  const RefCost inf{std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::max(),
                    std::numeric_limits<std::int64_t>::max()};
  std::vector<RefCost> dist(n, inf);
  std::vector<int> pred_link(n, -1);
  const auto edge_id = boost::get(boost::edge_index, g);
  const auto cost = [&](const Graph::edge_descriptor& e) {
    const int id = edge_id[e];
    return RefCost{static_cast<std::int64_t>(std::llround(t.link(id).latency.value() * 1e12)), 1, id};
  };
  auto weight = boost::make_function_property_map<Graph::edge_descriptor, RefCost>(cost);
  struct Record : boost::default_dijkstra_visitor {
    std::vector<int>* pred = nullptr;
    void edge_relaxed(const Graph::edge_descriptor& e, const Graph& graph) const {
      (*pred)[boost::target(e, graph)] = boost::get(boost::edge_index, graph, e);
    }
  } vis;
  vis.pred = &pred_link;
  std::vector<Graph::vertex_descriptor> pred(n);
  boost::dijkstra_shortest_paths(
      g, static_cast<std::size_t>(source),
      boost::weight_map(weight)
          .distance_map(boost::make_iterator_property_map(dist.begin(), boost::get(boost::vertex_index, g)))
          .predecessor_map(boost::make_iterator_property_map(pred.begin(), boost::get(boost::vertex_index, g)))
          .distance_compare([](const RefCost& a, const RefCost& b) { return a < b; })
          .distance_combine([](const RefCost& a, const RefCost& b) {
            return RefCost{a.ps + b.ps, a.hops + b.hops, a.id_sum + b.id_sum};
          })
          .distance_inf(inf)
          .distance_zero(RefCost{})
          .visitor(vis));
  std::vector<std::optional<Route>> out(n);
  for (std::size_t v = 0; v < n; ++v) {
    if (static_cast<int>(v) == source) {
      out[v] = Route{};
      continue;
    }
    if (dist[v] == inf) continue;
    Route r;
    double min_bw = std::numeric_limits<double>::infinity();
    double latency = 0.0;
    for (int at = static_cast<int>(v); at != source;) {
      const auto& l = t.link(pred_link[static_cast<std::size_t>(at)]);
      r.links.push_back(pred_link[static_cast<std::size_t>(at)]);
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

// Counts the routes compared; a mismatch fails the test naming the pair.
std::size_t same_routes(const std::optional<Route>& got, const std::optional<Route>& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.has_value() == want.has_value());
  if (!got) return 1;
  CHECK(got->links == want->links);
  CHECK(got->bottleneck.value() == want->bottleneck.value());  // bit for bit
  CHECK(got->latency.value() == want->latency.value());
  return 1;
}

}  // namespace

TEST_CASE("topology: routes agree route by route with a reference all-pairs Dijkstra", "[topology][routes]") {
  const auto dir = test::temp_dir("refroutes");
  // Three nodes whose NICs all hang off one leaf of two (not rail-optimised): same-node NIC pairs meet at a leaf,
  // so the search must not assume a node's routes stay inside it.
  const std::string odd = test::write_file(
      dir / "odd.toml", "name = \"odd\"\nnode = \"" + kCatalog + "/dgx-h100.toml\"\nnodes = 3\n[fabric]\n" +
                            "kind = \"leaf_spine\"\nleaves = 2\nspines = 3\nrail_optimized = false\n" +
                            "link_latency = \"0.5us\"\n");
  std::size_t compared = 0;
  for (const std::string& file : {kCatalog + "/cluster-4x-dgx-h100.toml", kFixtures + "/cluster_tor.toml", odd,
                                  kCatalog + "/pcie-8x-l40s.toml", kFixtures + "/bad_no_route.toml"}) {
    const Topology t = load_topology(file, kCatalog);
    const int n = static_cast<int>(t.vertices().size());
    std::vector<int> all(static_cast<std::size_t>(n));
    for (int v = 0; v < n; ++v) all[static_cast<std::size_t>(v)] = v;
    for (int a = 0; a < n; ++a) {
      const auto want = reference_routes_from(t, a);
      const auto from = t.routes_from(a);
      const auto to_all = t.routes_to(a, all);
      const auto to_gpus = t.routes_to(a, t.gpus());
      for (int b = 0; b < n; ++b) {
        const std::string pair = file + ": " + t.vertex(a).name + " -> " + t.vertex(b).name;
        compared += same_routes(from[static_cast<std::size_t>(b)], want[static_cast<std::size_t>(b)], pair);
        compared += same_routes(to_all[static_cast<std::size_t>(b)], want[static_cast<std::size_t>(b)], pair);
        // One target at a time: each search stops at its target.
        std::optional<Route> one;
        if (want[static_cast<std::size_t>(b)]) one = t.route(a, b);
        compared += same_routes(one, want[static_cast<std::size_t>(b)], pair + " (route)");
      }
      for (std::size_t g = 0; g < t.gpus().size(); ++g) {
        compared += same_routes(to_gpus[g], want[static_cast<std::size_t>(t.gpus()[g])], "to GPUs");
      }
    }
  }
  CHECK(compared > 3 * 117 * 117);  // the 4-node cluster alone has 117 vertices
}

TEST_CASE("topology: routes_to takes targets in any order, repeated, or none", "[topology][routes]") {
  const Topology t = load_topology("cluster-4x-dgx-h100", kCatalog);
  const int g0 = t.gpu_vertex(0);
  const std::vector<int> targets{t.gpu_vertex(31), t.gpu_vertex(1), g0, t.gpu_vertex(1), *t.find_vertex("spine")};
  const auto got = t.routes_to(g0, targets);
  const auto all = t.routes_from(g0);
  REQUIRE(got.size() == targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) {
    REQUIRE(got[i].has_value());
    CHECK(got[i]->links == all[static_cast<std::size_t>(targets[i])]->links);
  }
  CHECK(got[2]->links.empty());
  CHECK(t.routes_to(g0, {}).empty());
  CHECK_THAT(input_error([&] { (void)t.routes_to(g0, {99999}); }), Catch::Contains("unknown vertex id 99999"));
  CHECK_THAT(input_error([&] { (void)t.routes_to(-1, {g0}); }), Catch::Contains("unknown vertex id -1"));
}
