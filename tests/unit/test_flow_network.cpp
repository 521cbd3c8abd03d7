// Flow-level network: max-min fair rates (models/net/flow_rates.h) with numbers by hand, the continuous-time
// finish times, and the event-driven network (sim/network/flow_network.h) against them.
#include <algorithm>
#include <boost/random/uniform_int_distribution.hpp>
#include <boost/random/uniform_real_distribution.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "helpers.h"
#include "models/common/error.h"
#include "models/net/flow_rates.h"
#include "models/net/topology.h"
#include "sim/core/random.h"
#include "sim/core/simulator.h"
#include "sim/network/finish_queue.h"
#include "sim/network/flow_network.h"

using namespace servesim;
using servesim::test::input_error;

namespace {

const std::string kCatalog = test::source_dir() + "/scenarios/topologies";
constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<BytesPerSec> caps(std::initializer_list<double> values) {
  std::vector<BytesPerSec> out;
  for (const double v : values) out.emplace_back(v);
  return out;
}

FlowDemand demand(std::vector<int> links, double cap = kInf) { return FlowDemand{std::move(links), BytesPerSec{cap}}; }

std::vector<BytesPerSec> capacities(const Topology& t) {
  std::vector<BytesPerSec> out;
  for (const TopoLink& l : t.links()) out.push_back(l.bandwidth);
  return out;
}

// Starts the flows of a list at their start times (integer ns) and records when each one finishes.
class Driver final : public EventTarget, public FlowHandler {
 public:
  Driver(FlowNetwork& net, const std::vector<TimedFlow>& flows) : net_(net), flows_(flows) {
    finish.assign(flows.size(), Ns{-1});
    ids.assign(flows.size(), 0);
  }
  void schedule_all(Simulator& sim) {
    for (std::size_t f = 0; f < flows_.size(); ++f) sim.schedule(to_ns(flows_[f].start), Priority::arrival, this, f);
  }
  void on_event(Simulator& sim, std::uint64_t arg) override {
    const TimedFlow& f = flows_[arg];
    ids[arg] = net_.start(sim, f.demand, f.bytes, this, arg);
    active_sum += net_.active_flows();
  }
  void flow_done(Simulator& sim, std::uint64_t tag) override {
    finish[tag] = sim.now();
    order.push_back(tag);
    active_sum += net_.active_flows();
  }
  std::size_t active_sum = 0;  // flows in flight summed over starts and completions
  std::vector<Ns> finish;
  std::vector<FlowId> ids;
  std::vector<std::uint64_t> order;

 private:
  FlowNetwork& net_;
  const std::vector<TimedFlow>& flows_;
};

// 200 flows between random GPU pairs of cluster-2x-dgx-h100 (both within a node, over NVLink, and across the
// fabric): random sizes (some 0), half with a random rate cap, starts at random nanoseconds within 20 ms.
std::vector<TimedFlow> random_flows(const Topology& topo, std::uint64_t seed, int count) {
  RandomEngine rng = make_stream(seed, "flows");
  boost::random::uniform_int_distribution<int> gpu(0, topo.gpu_count() - 1);
  boost::random::uniform_real_distribution<double> mib(0.0, 256.0);
  boost::random::uniform_real_distribution<double> cap_gbps(10.0, 60.0);
  boost::random::uniform_int_distribution<std::int64_t> start_ns(0, 20'000'000);
  boost::random::uniform_int_distribution<int> coin(0, 9);
  std::vector<TimedFlow> flows;
  for (int i = 0; i < count; ++i) {
    const int a = gpu(rng);
    int b = gpu(rng);
    while (b == a) b = gpu(rng);
    TimedFlow f;
    f.demand.links = topo.gpu_route(a, b).links;
    if (coin(rng) < 5) f.demand.cap = BytesPerSec{cap_gbps(rng) * 1e9};
    f.bytes = Bytes{coin(rng) == 0 ? 0.0 : mib(rng) * kMiB};
    f.start = to_seconds(Ns{start_ns(rng)});
    flows.push_back(std::move(f));
  }
  return flows;
}

}  // namespace

TEST_CASE("flow: two flows on one link get half each", "[flow]") {
  // One link of 100 B/s, two flows: both grow to 50, where the link saturates.
  const auto r = max_min_rates(caps({100}), {demand({0}), demand({0})});
  REQUIRE(r.size() == 2);
  CHECK(r[0].value() == 50.0);
  CHECK(r[1].value() == 50.0);
  // Three flows on 90 B/s: 30 each.
  const auto r3 = max_min_rates(caps({90}), {demand({0}), demand({0}), demand({0})});
  CHECK(r3[0].value() == 30.0);
  CHECK(r3[2].value() == 30.0);
}

TEST_CASE("flow: a flow bottlenecked elsewhere leaves its unused share to the others", "[flow]") {
  // Link 0: 100 B/s, link 1: 30 B/s. Flow 0 crosses both, flow 1 only link 0. Filling: at level 30 link 1
  // saturates (flow 0 alone on it), flow 0 freezes at 30; link 0 has 100 - 30 = 70 left for flow 1 alone.
  const auto r = max_min_rates(caps({100, 30}), {demand({0, 1}), demand({0})});
  CHECK(r[0].value() == 30.0);
  CHECK(r[1].value() == 70.0);

  // The same with the other flow's own cap as its bottleneck: flow 0 capped at 20 B/s -> flow 1 gets 80.
  const auto c = max_min_rates(caps({100}), {demand({0}, 20.0), demand({0})});
  CHECK(c[0].value() == 20.0);
  CHECK(c[1].value() == 80.0);

  // Three levels. Link 0: 100 B/s carries flows 0, 1, 2; link 1: 40 B/s carries flow 1; flow 0 capped at 10.
  //   level 10: flow 0 reaches its cap (link 0 would saturate at 100/3 = 33.3, link 1 at 40).
  //   link 0 now offers (100 - 10) / 2 = 45 to flows 1 and 2, link 1 offers 40 to flow 1: link 1 saturates at 40.
  //   flow 2 alone on link 0: 100 - 10 - 40 = 50.
  const auto l = max_min_rates(caps({100, 40}), {demand({0}, 10.0), demand({0, 1}), demand({0})});
  CHECK(l[0].value() == 10.0);
  CHECK(l[1].value() == 40.0);
  CHECK(l[2].value() == 50.0);
}

TEST_CASE("flow: a flow alone gets its route's bottleneck", "[flow]") {
  // A hand-built chain g0 -64 GB/s- s1 -16 GB/s- s2 -32 GB/s- g1: alone, the flow gets the narrowest, 16 GB/s.
  Topology t("chain");
  const auto vertex = [&t](const std::string& name, VertexKind kind) {
    TopoVertex v;
    v.name = name;
    v.kind = kind;
    return t.add_vertex(v);
  };
  const int g0 = vertex("g0", VertexKind::gpu);
  const int s1 = vertex("s1", VertexKind::pcie_switch);
  const int s2 = vertex("s2", VertexKind::pcie_switch);
  const int g1 = vertex("g1", VertexKind::gpu);
  t.add_link(g0, s1, BytesPerSec{64e9}, us(0.5));
  t.add_link(s1, s2, BytesPerSec{16e9}, us(1.0));
  t.add_link(s2, g1, BytesPerSec{32e9}, us(0.25));
  const Route route = t.route(g0, g1);
  const auto r = max_min_rates(capacities(t), {demand(route.links)});
  CHECK(r[0].value() == 16e9);
  CHECK(r[0] == route.bottleneck);
  // With its own cap below that: the cap.
  CHECK(max_min_rates(capacities(t), {demand(route.links, 5e9)})[0].value() == 5e9);
  // A flow crossing no link (same GPU) with a finite cap: the cap.
  CHECK(max_min_rates(capacities(t), {demand({}, 7e9)})[0].value() == 7e9);

  // Across the 2-node cluster: GPU 0 of node 0 to GPU 1 of node 1 crosses PCIe (63 GB/s), the ConnectX-7 NIC
  // and the fabric (400 Gb/s = 50 GB/s), all with efficiency 1: 50 GB/s, the route's bottleneck.
  const Topology c2 = load_topology("cluster-2x-dgx-h100", kCatalog);
  const Route across = c2.gpu_route(0, 9);
  const auto rc = max_min_rates(capacities(c2), {demand(across.links)});
  CHECK(rc[0].value() == 50e9);
  CHECK(rc[0] == across.bottleneck);
}

TEST_CASE("flow: opposite directions do not interfere", "[flow]") {
  // One cable of 50 GB/s per direction between two GPUs: a flow each way gets 50 GB/s; two the same way 25 each.
  Topology t("pair");
  TopoVertex a;
  a.name = "a";
  TopoVertex b;
  b.name = "b";
  const int va = t.add_vertex(a);
  const int vb = t.add_vertex(b);
  t.add_link(va, vb, BytesPerSec{50e9}, us(1));
  const std::vector<int> ab = t.route(va, vb).links;
  const std::vector<int> ba = t.route(vb, va).links;
  REQUIRE(ab != ba);
  const auto opposite = max_min_rates(capacities(t), {demand(ab), demand(ba)});
  CHECK(opposite[0].value() == 50e9);
  CHECK(opposite[1].value() == 50e9);
  const auto same = max_min_rates(capacities(t), {demand(ab), demand(ab)});
  CHECK(same[0].value() == 25e9);
  CHECK(same[1].value() == 25e9);
}

namespace {

// Link 0: 100 B/s, link 1: 20 B/s. A: 100 B on link 0 at 0 s; B: 60 B on link 0 at 0.5 s; C: 30 B on links 0
// and 1 at 0.6 s.
//   0   - 0.5   A alone at 100: A has 100 - 50 = 50 left.
//   0.5 - 0.6   A and B at 50 each: A 45 left, B 55 left.
//   0.6         C joins, held to 20 by link 1; A and B share 100 - 20 = 80: 40 each. A needs 45/40 = 1.125 s,
//               B 55/40 = 1.375 s, C 30/20 = 1.5 s.
//   1.725       A finishes. B has 55 - 45 = 10 left, C 30 - 22.5 = 7.5. C stays at 20, B gets 80: 0.125 s.
//   1.85        B finishes. C has 7.5 - 2.5 = 5 left, alone still held to 20: 0.25 s.
//   2.1         C finishes.
const std::vector<BytesPerSec> kStaggeredCapacity = caps({100, 20});
std::vector<TimedFlow> staggered() {
  return {TimedFlow{demand({0}), Bytes{100}, Seconds{0}}, TimedFlow{demand({0}), Bytes{60}, Seconds{0.5}},
          TimedFlow{demand({0, 1}), Bytes{30}, Seconds{0.6}}};
}

}  // namespace

TEST_CASE("flow: finish times of a staggered three-flow case", "[flow]") {
  const auto t = flow_finish_times(kStaggeredCapacity, staggered());
  REQUIRE(t.size() == 3);
  CHECK(t[0].value() == Approx(1.725).epsilon(1e-12));
  CHECK(t[1].value() == Approx(1.85).epsilon(1e-12));
  CHECK(t[2].value() == Approx(2.1).epsilon(1e-12));

  // The event-driven network: the same times, in integer nanoseconds.
  const auto flows = staggered();
  FlowNetwork net(kStaggeredCapacity);
  Simulator sim;
  Driver driver(net, flows);
  driver.schedule_all(sim);
  const Ns at = to_ns(Seconds{0.7});
  sim.run(at);  // leaves the clock at the last event (0.6 s); the questions below name 0.7 s
  // At 0.7 s: A and B at 40 B/s, C at 20 B/s; link 0 full, link 1 full.
  CHECK(net.rate(driver.ids[0]).value() == 40.0);
  CHECK(net.rate(driver.ids[1]).value() == 40.0);
  CHECK(net.rate(driver.ids[2]).value() == 20.0);
  CHECK(net.utilisation(0) == 1.0);
  CHECK(net.utilisation(1) == 1.0);
  // A: 45 - 40 x 0.1 = 41 left; B: 55 - 4 = 51; C: 30 - 2 = 28.
  CHECK(net.remaining(driver.ids[0], at).value() == Approx(41.0).epsilon(1e-12));
  CHECK(net.remaining(driver.ids[1], at).value() == Approx(51.0).epsilon(1e-12));
  CHECK(net.remaining(driver.ids[2], at).value() == Approx(28.0).epsilon(1e-12));
  // Link 0 carried 50 + 10 + 0.1 x 100 = 70 B by 0.7 s, busy all 0.7 s; link 1 carried 2 B in 0.1 s.
  const auto mid = net.link_stats(at);
  CHECK(mid[0].bytes.value() == Approx(70.0).epsilon(1e-12));
  CHECK(mid[0].busy.value() == Approx(0.7).epsilon(1e-12));
  CHECK(mid[1].bytes.value() == Approx(2.0).epsilon(1e-12));
  CHECK(mid[1].busy.value() == Approx(0.1).epsilon(1e-12));
  CHECK(mid[1].utilisation.value() == Approx(0.1).epsilon(1e-12));  // 2 B / 20 B/s

  sim.run();
  CHECK(driver.finish[0].v == 1'725'000'000);
  CHECK(driver.finish[1].v == 1'850'000'000);
  CHECK(driver.finish[2].v == 2'100'000'000);
  CHECK(driver.order == std::vector<std::uint64_t>{0, 1, 2});
  CHECK(net.active_flows() == 0);
  CHECK_FALSE(net.active(driver.ids[0]));
  CHECK(net.rate(driver.ids[0]).value() == 0.0);
  // Bytes conserved: link 0 carried all 190 B, link 1 C's 30 B; busy 0 - 2.1 s and 0.6 - 2.1 s.
  const auto end = net.link_stats(sim.now());
  CHECK(end[0].bytes.value() == Approx(190.0).epsilon(1e-12));
  CHECK(end[1].bytes.value() == Approx(30.0).epsilon(1e-12));
  CHECK(end[0].busy.value() == Approx(2.1).epsilon(1e-12));
  CHECK(end[1].busy.value() == Approx(1.5).epsilon(1e-12));
  CHECK(end[0].utilisation.value() == Approx(1.9).epsilon(1e-12));  // 190 B / 100 B/s
  CHECK(net.load(0).value() == 0.0);
}

TEST_CASE("flow: the network re-solves only the component of the changed flow", "[flow]") {
  // Links 0 and 1 are disjoint: flows on link 0 never share a link with flows on link 1.
  FlowNetwork net(caps({100, 100}));
  Simulator sim;
  const FlowId a = net.start(sim, demand({0}), Bytes{1000}, nullptr, 0);
  const FlowId b = net.start(sim, demand({0}), Bytes{1000}, nullptr, 1);
  CHECK(net.flows_resolved() == 1 + 2);  // {a}, then {a, b}
  const FlowId c = net.start(sim, demand({1}, 30.0), Bytes{1000}, nullptr, 2);
  CHECK(net.flows_resolved() == 1 + 2 + 1);  // {c} only
  CHECK(net.rate(a).value() == 50.0);
  CHECK(net.rate(b).value() == 50.0);
  CHECK(net.rate(c).value() == 30.0);
  CHECK(net.utilisation(1) == Approx(0.3).epsilon(1e-15));
  // A zero-byte flow holds no link and re-solves nothing; it completes at once, through an event.
  const FlowId z = net.start(sim, demand({0}), Bytes{0}, nullptr, 3);
  CHECK(net.flows_resolved() == 4);
  CHECK(net.active(z));
  CHECK(net.rate(z).value() == 0.0);
  sim.run(Ns{0});
  CHECK_FALSE(net.active(z));
  CHECK(net.active_flows() == 3);
  // a and b finish together at 1000 / 50 = 20 s: one event, then {} is left on link 0; c finishes at 33.3 s.
  sim.run();
  CHECK(sim.now().v == 33'333'333'333);
  CHECK(net.active_flows() == 0);
}

namespace {

// Starts a follow-up flow when its first flow finishes (a transfer pipeline), from inside the handler.
class Relay final : public FlowHandler {
 public:
  explicit Relay(FlowNetwork& net) : net_(net) {}
  void flow_done(Simulator& sim, std::uint64_t tag) override {
    done.emplace_back(tag, sim.now());
    if (tag == 0) second = net_.start(sim, FlowDemand{{0}}, Bytes{50}, this, 1);
  }
  std::vector<std::pair<std::uint64_t, Ns>> done;
  FlowId second = 0;

 private:
  FlowNetwork& net_;
};

}  // namespace

TEST_CASE("flow: handlers may start flows, and link capacities are the topology's line rates", "[flow]") {
  // 100 B at 100 B/s ends at 1 s; the 50 B started then, alone, ends at 1.5 s. It reuses the first flow's slot
  // under a new id.
  FlowNetwork net(caps({100}));
  Simulator sim;
  Relay relay(net);
  const FlowId first = net.start(sim, demand({0}), Bytes{100}, &relay, 0);
  sim.run();
  REQUIRE(relay.done.size() == 2);
  CHECK(relay.done[0] == std::pair<std::uint64_t, Ns>{0, Ns{1'000'000'000}});
  CHECK(relay.done[1] == std::pair<std::uint64_t, Ns>{1, Ns{1'500'000'000}});
  CHECK(relay.second != first);
  CHECK((relay.second & 0xffffffffU) == (first & 0xffffffffU));
  CHECK_FALSE(net.active(first));

  // NVLink within a DGX H100 node: 450 GB/s per direction with efficiency 0.816 in the catalogue. The network
  // carries the raw 450 GB/s (efficiencies are the transports' business, through caps).
  const Topology c2 = load_topology("cluster-2x-dgx-h100", kCatalog);
  FlowNetwork fabric(c2);
  Simulator sim2;
  const FlowId nvlink = fabric.start(sim2, demand(c2.gpu_route(0, 1).links), Bytes{1e9}, nullptr, 0);
  CHECK(fabric.rate(nvlink).value() == 450e9);
  CHECK(c2.gpu_route(0, 1).bottleneck.value() == Approx(0.816 * 450e9));
  const FlowId capped = fabric.start(sim2, demand(c2.gpu_route(2, 3).links, 0.816 * 450e9), Bytes{1e9}, nullptr, 1);
  CHECK(fabric.rate(capped).value() == 0.816 * 450e9);
  CHECK(fabric.rate(nvlink).value() == 450e9);  // another GPU pair: no link in common
}

TEST_CASE("flow: bad input throws", "[flow]") {
  // Zero (and infinite, NaN) capacity.
  CHECK(input_error([] { (void)max_min_rates(caps({100, 0}), {}); }) ==
        "link 1: capacity 0 B/s must be finite and > 0");
  CHECK(input_error([] { (void)max_min_rates(caps({kInf}), {}); }).find("link 0: capacity") == 0);
  CHECK(input_error([] { FlowNetwork net(caps({-5})); }) == "link 0: capacity -5 B/s must be finite and > 0");
  // Link id out of range, repeated link.
  CHECK(input_error([] { (void)max_min_rates(caps({100, 100}), {demand({0}), demand({1, 2})}); }) ==
        "flow 1: link id 2 is out of range (2 links)");
  CHECK(input_error([] { (void)max_min_rates(caps({100}), {demand({-1})}); }) ==
        "flow 0: link id -1 is out of range (1 links)");
  CHECK(input_error([] { (void)max_min_rates(caps({100, 100}), {demand({0, 1, 0})}); }) ==
        "flow 0 crosses link 0 twice");
  // Caps: zero, NaN, and no links without a finite cap.
  CHECK(input_error([] { (void)max_min_rates(caps({100}), {demand({0}, 0.0)}); }) ==
        "flow 0: rate cap 0 B/s must be > 0");
  CHECK(input_error([] {
          (void)max_min_rates(caps({100}), {demand({0}, std::numeric_limits<double>::quiet_NaN())});
        }).find("flow 0: rate cap") == 0);
  CHECK(input_error([] { (void)max_min_rates(caps({100}), {demand({})}); }) ==
        "flow 0 crosses no link and has no finite rate cap: its rate would be infinite");
  // Negative bytes and start.
  CHECK(input_error([] {
          (void)flow_finish_times(caps({100}), {TimedFlow{demand({0}), Bytes{-1}, Seconds{0}}});
        }) == "flow 0: bytes -1 must be >= 0");
  CHECK(input_error([] {
          (void)flow_finish_times(caps({100}), {TimedFlow{demand({0}), Bytes{1}, Seconds{-2}}});
        }) == "flow 0: start -2 s must be >= 0");
  CHECK(input_error([] {
          FlowNetwork net(caps({100}));
          Simulator sim;
          (void)net.start(sim, demand({0}), Bytes{-1}, nullptr, 7);
        }) == "flow (tag 7): bytes -1 must be >= 0");
  CHECK(input_error([] {
          FlowNetwork net(caps({100}));
          Simulator sim;
          (void)net.start(sim, demand({3}), Bytes{1}, nullptr, 8);
        }) == "flow (tag 8): link id 3 is out of range (1 links)");
}

TEST_CASE("flow: the event-driven network matches flow_finish_times on random flows", "[flow]") {
  const Topology topo = load_topology("cluster-2x-dgx-h100", kCatalog);
  const auto capacity = capacities(topo);
  for (const std::uint64_t seed : {1, 2, 3}) {
    const auto flows = random_flows(topo, seed, 200);
    const auto reference = flow_finish_times(capacity, flows);

    FlowNetwork net(topo);
    Simulator sim;
    Driver driver(net, flows);
    driver.schedule_all(sim);
    sim.run();
    REQUIRE(net.active_flows() == 0);

    double worst = 0;
    for (std::size_t f = 0; f < flows.size(); ++f) {
      REQUIRE(driver.finish[f].v >= 0);
      worst = std::max(worst, std::fabs(static_cast<double>(driver.finish[f].v) - reference[f].value() * 1e9));
    }
    INFO("seed " << seed << ": worst |network - reference| = " << worst << " ns");
    CHECK(worst <= 0.5 + 1e-3);
    // Re-solving only what changes is less work than re-solving every flow in flight at every start and end.
    CHECK(net.flows_resolved() > 0);
    CHECK(net.flows_resolved() < driver.active_sum / 2);

    // Bytes conserved per link: each link carried exactly the bytes of the flows that cross it.
    std::vector<double> expected(capacity.size(), 0.0);
    for (const TimedFlow& f : flows) {
      for (const int l : f.demand.links) expected[static_cast<std::size_t>(l)] += f.bytes.value();
    }
    const auto stats = net.link_stats(sim.now());
    for (std::size_t l = 0; l < expected.size(); ++l) {
      INFO("link " << l);
      CHECK(stats[l].bytes.value() == Approx(expected[l]).epsilon(1e-12).margin(1e-6));
      // Never more than capacity x busy time (half a nanosecond of slack per flow for rounding).
      CHECK(stats[l].utilisation.value() <= stats[l].busy.value() + 200 * 0.5e-9);
      CHECK(net.load(static_cast<int>(l)).value() == 0.0);
    }

    // Same inputs, same outputs.
    FlowNetwork again(topo);
    Simulator sim2;
    Driver driver2(again, flows);
    driver2.schedule_all(sim2);
    sim2.run();
    CHECK(driver2.finish == driver.finish);
    CHECK(driver2.order == driver.order);
  }
}

namespace {

// Starts flows like Driver, and after every start and every completion compares every active flow's rate with a
// full re-solve (max_min_rates) of the active flows.
class Checker final : public EventTarget, public FlowHandler {
 public:
  Checker(FlowNetwork& net, const std::vector<BytesPerSec>& capacity, const std::vector<TimedFlow>& flows)
      : net_(net), capacity_(capacity), flows_(flows), ids_(flows.size(), 0), started_(flows.size(), false) {
    finish.assign(flows.size(), Ns{-1});
  }
  void on_event(Simulator& sim, std::uint64_t arg) override {
    ids_[arg] = net_.start(sim, flows_[arg].demand, flows_[arg].bytes, this, arg);
    started_[arg] = true;
    compare();
  }
  void flow_done(Simulator& sim, std::uint64_t tag) override {
    finish[tag] = sim.now();
    compare();
  }
  std::vector<Ns> finish;
  double worst = 0;  // largest relative rate difference seen
  int checks = 0;

 private:
  void compare() {
    std::vector<FlowDemand> demands;
    std::vector<FlowId> ids;
    for (std::size_t f = 0; f < flows_.size(); ++f) {
      if (!started_[f] || !net_.active(ids_[f]) || flows_[f].bytes.value() == 0) continue;
      demands.push_back(flows_[f].demand);
      ids.push_back(ids_[f]);
    }
    const auto want = max_min_rates(capacity_, demands);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const double got = net_.rate(ids[i]).value();
      worst = std::max(worst, std::fabs(got - want[i].value()) / want[i].value());
    }
    ++checks;
  }
  FlowNetwork& net_;
  const std::vector<BytesPerSec>& capacity_;
  const std::vector<TimedFlow>& flows_;
  std::vector<FlowId> ids_;
  std::vector<bool> started_;
};

}  // namespace

TEST_CASE("flow: incremental re-solves equal full re-solves at every event", "[flow]") {
  // Small random networks where the incremental re-fill's cases all occur: equal capacities and caps (ties
  // between levels), links whose flows all cross a narrower link (left out) gaining and losing such flows, flows
  // starting in the same nanosecond, and completions that coincide exactly.
  for (const std::uint64_t seed : {11, 12, 13, 14, 15, 16, 17, 18}) {
    RandomEngine rng = make_stream(seed, "stress");
    boost::random::uniform_int_distribution<int> pick(0, 1'000'000);
    const std::vector<double> capacity_choices = {1e9, 2e9, 2e9, 5e9, 1e10};
    std::vector<BytesPerSec> capacity;
    for (int l = 0; l < 12; ++l) capacity.emplace_back(capacity_choices[static_cast<std::size_t>(pick(rng) % 5)]);
    std::vector<TimedFlow> flows;
    for (int i = 0; i < 150; ++i) {
      TimedFlow f;
      const int hops = 1 + pick(rng) % 4;
      while (static_cast<int>(f.demand.links.size()) < hops) {
        const int l = pick(rng) % 12;
        if (std::find(f.demand.links.begin(), f.demand.links.end(), l) == f.demand.links.end()) {
          f.demand.links.push_back(l);
        }
      }
      const int c = pick(rng) % 6;
      if (c < 3) f.demand.cap = BytesPerSec{c == 0 ? 5e8 : c == 1 ? 1e9 : 3e9};
      const int b = pick(rng) % 10;
      f.bytes = Bytes{b == 0 ? 0.0 : b < 4 ? 1e5 : static_cast<double>(1 + pick(rng) % 200'000)};
      f.start = to_seconds(Ns{pick(rng) % 4 == 0 ? 1000 * (pick(rng) % 20) : pick(rng) % 100'000});
      flows.push_back(std::move(f));
    }
    const auto reference = flow_finish_times(capacity, flows);

    FlowNetwork net(capacity);
    Simulator sim;
    Checker checker(net, capacity, flows);
    for (std::size_t f = 0; f < flows.size(); ++f) {
      sim.schedule(to_ns(flows[f].start), Priority::arrival, &checker, f);
    }
    sim.run();
    INFO("seed " << seed);
    CHECK(checker.checks >= 150);
    CHECK(checker.worst <= 1e-9);
    double worst = 0;
    for (std::size_t f = 0; f < flows.size(); ++f) {
      worst = std::max(worst, std::fabs(static_cast<double>(checker.finish[f].v) - reference[f].value() * 1e9));
    }
    CHECK(worst <= 0.5 + 1e-3);
  }
}

TEST_CASE("flow: link statistics part-way through a random run", "[flow]") {
  // Stopped at 10 ms: every link's bytes so far are the sum over its flows of (bytes - remaining).
  const Topology topo = load_topology("cluster-2x-dgx-h100", kCatalog);
  const auto flows = random_flows(topo, 4, 200);
  FlowNetwork net(topo);
  Simulator sim;
  Driver driver(net, flows);
  driver.schedule_all(sim);
  const Ns stop{10'000'000};
  sim.run(stop);
  std::vector<double> expected(topo.links().size(), 0.0);
  std::size_t running = 0;
  for (std::size_t f = 0; f < flows.size(); ++f) {
    if (to_ns(flows[f].start) > stop) continue;
    const double left = net.remaining(driver.ids[f], stop).value();
    if (net.active(driver.ids[f])) ++running;
    for (const int l : flows[f].demand.links) expected[static_cast<std::size_t>(l)] += flows[f].bytes.value() - left;
  }
  REQUIRE(running > 10);
  CHECK(running == net.active_flows());
  const auto stats = net.link_stats(stop);
  for (std::size_t l = 0; l < expected.size(); ++l) {
    INFO("link " << l);
    CHECK(stats[l].bytes.value() == Approx(expected[l]).epsilon(1e-12).margin(1e-6));
    CHECK(stats[l].busy.value() <= ns_to_s(stop) + 1e-12);
    // The current load never exceeds the capacity (up to rounding of the rate sums).
    CHECK(net.utilisation(static_cast<int>(l)) <= 1.0 + 1e-12);
  }
}

TEST_CASE("flow: the finish queue with keys left behind as lower bounds", "[flow]") {
  // FlowNetwork skips FinishQueue::set when a finish only moves later; refresh() must then still yield the true
  // earliest (by finish, frac, serial), as a queue that is always told every key does.
  RandomEngine rng = make_stream(7, "finish-queue");
  boost::random::uniform_int_distribution<int> pick(0, 999);
  std::vector<FinishQueue::Key> truth(64);
  std::vector<bool> in(64, false);
  FinishQueue lazy;
  FinishQueue eager;
  const auto before = [](const FinishQueue::Key& a, const FinishQueue::Key& b) {
    if (a.finish != b.finish) return a.finish < b.finish;
    if (a.frac != b.frac) return a.frac < b.frac;
    return a.serial < b.serial;
  };
  for (int step = 0; step < 20'000; ++step) {
    const auto slot = static_cast<std::uint32_t>(pick(rng) % 64);
    const int what = pick(rng) % 10;
    if (what == 0) {
      lazy.erase(slot);
      eager.erase(slot);
      in[slot] = false;
    } else {
      // Coarse times, so that equal finishes (and equal fractions) are common.
      const FinishQueue::Key key{Ns{pick(rng) % 50}, (pick(rng) % 3 - 1) * 0.25, slot};
      if (!in[slot] || before(key, truth[slot])) lazy.set(slot, key);
      eager.set(slot, key);
      truth[slot] = key;
      in[slot] = true;
    }
    lazy.refresh([&](std::uint32_t s) { return truth[s]; });
    REQUIRE(lazy.empty() == eager.empty());
    if (!eager.empty()) {
      REQUIRE(lazy.top() == eager.top());
      CHECK(lazy.top_key().finish == truth[eager.top()].finish);
      CHECK(lazy.top_key().frac == truth[eager.top()].frac);
    }
  }
}
