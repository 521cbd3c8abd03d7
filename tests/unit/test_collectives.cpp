// Collective cost models against their documented formulas (models/net/collective.h), the CommGroup facade,
// and the calibration against the published 8 x H200 all_reduce sweep.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "helpers.h"
#include "models/common/error.h"
#include "models/net/collective.h"
#include "models/net/collective_calibration.h"
#include "models/net/comm_group.h"
#include "models/net/topology.h"

using namespace servesim;
using servesim::test::input_error;

namespace {

const std::string kCatalog = test::source_dir() + "/scenarios/topologies";

constexpr double kB = 100e9;                  // link bandwidth of the hand-built star
constexpr double kLink = 0.25e-6;             // latency of each GPU <-> switch link
constexpr double kStep = 1.5e-6;              // step_latency
constexpr double kAlpha = 2 * kLink + kStep;  // GPU -> switch -> GPU + software step
constexpr double kEta = 0.8;                  // nvls_efficiency of the star's switch

// n GPUs, each on its own link of bandwidth kB to one switch.
std::shared_ptr<const Topology> star(int n, bool nvls = true) {
  auto t = std::make_shared<Topology>("star" + std::to_string(n), "star.toml");
  t->set_step_latency(Seconds{kStep});
  TopoVertex sw;
  sw.name = "sw";
  sw.kind = VertexKind::nvswitch;
  sw.nvls = nvls;
  sw.nvls_efficiency = kEta;
  const int s = t->add_vertex(sw);
  for (int i = 0; i < n; ++i) {
    TopoVertex g;
    g.name = "gpu" + std::to_string(i);
    g.kind = VertexKind::gpu;
    t->add_link(t->add_vertex(g), s, BytesPerSec{kB}, Seconds{kLink});
  }
  return t;
}

std::vector<int> first(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}


Approx exact(double v) { return Approx(v).epsilon(1e-12); }

}  // namespace

TEST_CASE("collectives: ring all_reduce = 2(n-1)/n S/B + 2(n-1) alpha", "[collectives]") {
  for (int n : {2, 3, 4, 8, 16}) {
    const CommGroup g(star(n), first(n), "ring", nullptr, "link_load");
    for (double s : {0.0, 4096.0, 1048576.0, 1e9}) {
      INFO("n=" << n << " S=" << s);
      const double nd = n;
      const double expect = 2 * (nd - 1) / nd * s / kB + 2 * (nd - 1) * kAlpha;
      CHECK(g.time(CollectiveOp::all_reduce, Bytes{s}).value() == exact(expect));
    }
  }
}

TEST_CASE("collectives: ring all_gather / reduce_scatter = (n-1)/n S/B + (n-1) alpha", "[collectives]") {
  const int n = 8;
  const CommGroup g(star(n), first(n), "ring", nullptr, "link_load");
  const double s = 64.0 * kMiB;
  const double expect = 7.0 / 8.0 * s / kB + 7 * kAlpha;
  CHECK(g.time(CollectiveOp::all_gather, Bytes{s}).value() == exact(expect));
  CHECK(g.time(CollectiveOp::reduce_scatter, Bytes{s}).value() == exact(expect));
  // Broadcast: pipelined chain, S/B + (n-1) alpha.  send_recv: S/B + alpha.
  CHECK(g.time(CollectiveOp::broadcast, Bytes{s}).value() == exact(s / kB + 7 * kAlpha));
  CHECK(g.time(CollectiveOp::send_recv, Bytes{s}).value() == exact(s / kB + kAlpha));
}

TEST_CASE("collectives: double binary tree all_reduce", "[collectives]") {
  const double s = 8.0 * kMiB;
  // n >= 4: every rank has 4 tree edges over both trees, each carrying S/2 each way -> 2 S/B.
  for (int n : {4, 5, 6, 8, 16}) {
    INFO("n=" << n);
    const CommGroup g(star(n), first(n), "tree", nullptr, "link_load");
    const double depth = std::ceil(std::log2(static_cast<double>(n)));
    CHECK(g.time(CollectiveOp::all_reduce, Bytes{s}).value() == exact(2 * s / kB + 2 * depth * kAlpha));
    CHECK(g.chosen_algo(CollectiveOp::all_reduce, Bytes{s}) == "tree");
  }
  // n = 2: each rank on one edge of each tree -> S/B.  n = 3: 1.5 S/B.
  CHECK(CommGroup(star(2), first(2), "tree", nullptr, "link_load").time(CollectiveOp::all_reduce, Bytes{s}).value() ==
        exact(s / kB + 2 * kAlpha));
  CHECK(CommGroup(star(3), first(3), "tree", nullptr, "link_load").time(CollectiveOp::all_reduce, Bytes{s}).value() ==
        exact(1.5 * s / kB + 4 * kAlpha));
  // tree implements only all_reduce; other ops fall back to auto.
  const CommGroup g(star(8), first(8), "tree", nullptr, "link_load");
  CHECK(g.chosen_algo(CollectiveOp::all_gather, Bytes{s}) != "tree");
}

TEST_CASE("collectives: NVLS through one NVSwitch", "[collectives]") {
  const int n = 8;
  const CommGroup g(star(n), first(n), "nvls", nullptr, "link_load");
  const double s = 256.0 * kMiB;
  CHECK(g.time(CollectiveOp::all_reduce, Bytes{s}).value() == exact(s / (kEta * kB) + 2 * kAlpha));
  CHECK(g.time(CollectiveOp::all_gather, Bytes{s}).value() == exact(7.0 / 8.0 * s / (kEta * kB) + kAlpha));
  CHECK(g.time(CollectiveOp::reduce_scatter, Bytes{s}).value() == exact(7.0 / 8.0 * s / (kEta * kB) + kAlpha));
  CHECK(g.cost(CollectiveOp::all_reduce, Bytes{s}).algo == "nvls");

  // Not on a switch without NVLS: an error when asked for by name, left out of auto.
  const auto plain = star(n, /*nvls=*/false);
  const std::string msg = input_error([&] { CommGroup(plain, first(n), "nvls", nullptr, "link_load"); });
  CHECK_THAT(msg, Catch::Contains("collective algorithm 'nvls' cannot run"));
  CHECK_THAT(msg, Catch::Contains("NVLS-capable NVSwitch"));
  const CommGroup any(plain, first(n), "auto", nullptr, "link_load");
  const auto names = any.candidates(CollectiveOp::all_reduce);
  CHECK(std::find(names.begin(), names.end(), "nvls") == names.end());
  // PCIe machine: no NVSwitch at all.
  const auto l40s = std::make_shared<const Topology>(load_topology("pcie-8x-l40s", kCatalog));
  CHECK_THROWS_AS(CommGroup(l40s, first(8), "nvls", nullptr, "link_load"), InputError);
}

TEST_CASE("collectives: direct all-pairs", "[collectives]") {
  const int n = 4;
  const CommGroup g(star(n), first(n), "direct", nullptr, "link_load");
  const double s = 32.0 * kMiB;
  CHECK(g.time(CollectiveOp::all_to_all, Bytes{s}).value() == exact(3.0 / 4.0 * s / kB + 3 * kAlpha));
  CHECK(g.time(CollectiveOp::all_gather, Bytes{s}).value() == exact(3.0 / 4.0 * s / kB + 3 * kAlpha));
  CHECK(g.time(CollectiveOp::all_reduce, Bytes{s}).value() == exact(2 * 3.0 / 4.0 * s / kB + 6 * kAlpha));
  CHECK(g.time(CollectiveOp::broadcast, Bytes{s}).value() == exact(3 * s / kB + 3 * kAlpha));
}

TEST_CASE("collectives: a one-shot all-to-all is the direct plan's links with one latency step", "[collectives]") {
  const int n = 4;
  const double s = 32.0 * kMiB;
  // Whatever the cost model (NCCL's, or link_load's) and algorithm constraint: every pair at once, one step.
  for (const char* model : {"nccl", "link_load"}) {
    const CommGroup g(star(n), first(n), "auto", nullptr, model);
    CHECK(g.one_shot_all_to_all(Bytes{s}).value() == exact(3.0 / 4.0 * s / kB + kAlpha));
  }
  CHECK(CommGroup(star(n), {1}).one_shot_all_to_all(Bytes{s}).value() == 0.0);
  // Two DGX H100: each GPU's sends to the other node's 8 GPUs (8/16 of S) leave through its own 50 GB/s NIC, one
  // step of the longest route (NIC, leaf, spine, leaf, NIC: 4 x 0.5 + 2 x 0.3 us, plus PCIe and the 1 us step).
  const auto c2 = std::make_shared<const Topology>(load_topology("cluster-2x-dgx-h100", kCatalog));
  const CommGroup g16(c2, first(16));
  const double big = 1.0 * kGiB;
  const double slope = (g16.one_shot_all_to_all(Bytes{2 * big}) - g16.one_shot_all_to_all(Bytes{big})).value() / big;
  CHECK(slope == Approx(0.5 / 50e9).epsilon(1e-9));
  CHECK(g16.one_shot_all_to_all(Bytes{0}).value() > 2e-6);
  CHECK(g16.one_shot_all_to_all(Bytes{0}).value() < 6e-6);
}

TEST_CASE("collectives: hierarchical on two nodes of two GPUs", "[collectives]") {
  // Node k: gpu k0, k1 on switch sw_k (bandwidth bi, latency li); rail j joins gpu 0j and 1j (bn, ln).
  const double bi = 200e9, li = 0.5e-6, bn = 25e9, ln = 2e-6;
  auto t = std::make_shared<Topology>("two-by-two");
  t->set_step_latency(Seconds{kStep});
  int gpu[2][2];
  for (int k = 0; k < 2; ++k) {
    TopoVertex sw;
    sw.name = "sw" + std::to_string(k);
    sw.kind = VertexKind::nvswitch;
    sw.node = k;
    const int s = t->add_vertex(sw);
    for (int j = 0; j < 2; ++j) {
      TopoVertex g;
      g.name = "n" + std::to_string(k) + ".gpu" + std::to_string(j);
      g.node = k;
      gpu[k][j] = t->add_vertex(g);
      t->add_link(gpu[k][j], s, BytesPerSec{bi}, Seconds{li});
    }
  }
  for (int j = 0; j < 2; ++j) {
    TopoVertex rail;
    rail.name = "rail" + std::to_string(j);
    rail.kind = VertexKind::net_switch;
    const int r = t->add_vertex(rail);
    for (int k = 0; k < 2; ++k) t->add_link(gpu[k][j], r, BytesPerSec{bn}, Seconds{ln});
  }
  // Cross-rail path (so every pair has a route); hierarchical only uses the rails.
  t->add_link(*t->find_vertex("rail0"), *t->find_vertex("rail1"), BytesPerSec{bn}, Seconds{ln});
  const CommGroup g(t, first(4), "hierarchical", nullptr, "link_load");
  const double s = 1e8;
  const double a_intra = 2 * li + kStep, a_inter = 2 * ln + kStep;
  // intra reduce-scatter (1/2 S over the node's link) + inter all-reduce of S/2 (2(K-1)/K = 1) + all-gather.
  const double expect = 2 * (0.5 * s / bi + a_intra) + (0.5 * s / bn + 2 * a_inter);
  CHECK(g.time(CollectiveOp::all_reduce, Bytes{s}).value() == exact(expect));
  CHECK(g.time(CollectiveOp::all_gather, Bytes{s}).value() ==
        exact((0.25 * s / bn + a_inter) + (0.5 * s / bi + a_intra)));
  // hierarchical within one node is an error when named.
  CHECK_THAT(input_error([&] { CommGroup(t, {0, 1}, "hierarchical", nullptr, "link_load"); }), Catch::Contains("are all on one node"));
}

TEST_CASE("collectives: busbw factors follow nccl-tests", "[collectives]") {
  CHECK(busbw_factor(CollectiveOp::all_reduce, 8) == exact(14.0 / 8.0));
  CHECK(busbw_factor(CollectiveOp::all_gather, 8) == exact(7.0 / 8.0));
  CHECK(busbw_factor(CollectiveOp::reduce_scatter, 4) == exact(3.0 / 4.0));
  CHECK(busbw_factor(CollectiveOp::all_to_all, 2) == exact(0.5));
  CHECK(busbw_factor(CollectiveOp::broadcast, 8) == 1.0);
  CHECK(busbw_factor(CollectiveOp::send_recv, 8) == 1.0);

  const CommGroup g(star(8), first(8), "ring", nullptr, "link_load");
  const double s = 1e9;
  const CollectiveResult r = g.cost(CollectiveOp::all_reduce, Bytes{s});
  CHECK(r.algo == "ring");
  CHECK(r.algbw_GBps == exact(s / r.time.value() / 1e9));
  CHECK(r.busbw_GBps == exact(r.algbw_GBps * 14.0 / 8.0));
  // At large S the ring's busbw approaches the link bandwidth.
  CHECK(r.busbw_GBps == Approx(kB / 1e9).epsilon(1e-2));
  const CollectiveResult ag = g.cost(CollectiveOp::all_gather, Bytes{s});
  CHECK(ag.busbw_GBps == exact(ag.algbw_GBps * 7.0 / 8.0));
}

TEST_CASE("collectives: link_load auto picks the fastest valid algorithm", "[collectives]") {
  const auto dgx = std::make_shared<const Topology>(load_topology("dgx-h100", kCatalog));
  const CommGroup autog(dgx, first(8), "auto", nullptr, "link_load");
  for (double s : {4096.0, 1048576.0, 1e8, 1e10}) {
    for (CollectiveOp op : kAllCollectiveOps) {
      const CollectiveResult r = autog.cost(op, Bytes{s});
      for (const auto& name : autog.candidates(op)) {
        INFO(to_string(op) << " " << s << " vs " << name);
        CHECK(r.time.value() <= CommGroup(dgx, first(8), name, nullptr, "link_load").time(op, Bytes{s}).value());
      }
    }
  }
  CHECK(autog.cost(CollectiveOp::all_reduce, Bytes{1e9}).algo == "nvls");
  CHECK(autog.cost(CollectiveOp::all_to_all, Bytes{1e9}).algo == "direct");
  // Unknown name: the error lists the valid ones.
  const std::string msg = input_error([&] { CommGroup(dgx, first(8), "butterfly", nullptr, "link_load"); });
  CHECK_THAT(msg, Catch::Contains("unknown collective algorithm 'butterfly'"));
  CHECK_THAT(msg, Catch::Contains("auto, direct, hierarchical, nvls, ring, tree"));
}

TEST_CASE("collectives: multi-node rings stay on their rails", "[collectives]") {
  const auto c2 = std::make_shared<const Topology>(load_topology("cluster-2x-dgx-h100", kCatalog));
  const CommGroup g(c2, first(16), "ring", nullptr, "link_load");
  // 16 channels, each crossing between the nodes on one rail: all 8 NICs of a node carry 2 of the 16
  // channels per direction, so the NICs (8 x 50 GB/s) bound the ring: busbw -> 400 GB/s.
  const CollectiveResult r = g.cost(CollectiveOp::all_reduce, Bytes{16.0 * kGiB});
  CHECK(r.busbw_GBps == Approx(400.0).epsilon(0.01));
  CHECK(r.busbw_GBps < 400.0);
  // Hierarchical is valid across nodes and auto considers it.
  const CommGroup a(c2, first(16), "auto", nullptr, "link_load");
  const auto names = a.candidates(CollectiveOp::all_reduce);
  CHECK(std::find(names.begin(), names.end(), "hierarchical") != names.end());
  CHECK(std::find(names.begin(), names.end(), "nvls") == names.end());
}

TEST_CASE("collectives: group of one, p2p, GPU index checks", "[collectives]") {
  const auto t = star(4);
  const CommGroup one(t, {2});
  CHECK(one.time(CollectiveOp::all_reduce, Bytes{1e9}).value() == 0.0);
  const CollectiveResult r = one.cost(CollectiveOp::all_gather, Bytes{1e9});
  CHECK(r.time.value() == 0.0);
  CHECK(r.busbw_GBps == 0.0);

  const CommGroup g(t, {0, 1}, "auto", nullptr, "link_load");
  const double s = 1e6;
  CHECK(g.p2p_time(0, 1, Bytes{s}).value() == exact(s / kB + kAlpha));
  CHECK(g.p2p_time(1, 1, Bytes{s}).value() == 0.0);
  // Outside the group: routed on the spot, same formula.
  CHECK(g.p2p_time(2, 3, Bytes{s}).value() == exact(s / kB + kAlpha));
  CHECK_THROWS_AS(CommGroup(t, {0, 0}), InputError);
  CHECK_THROWS_AS(CommGroup(t, {0, 7}), InputError);
}

TEST_CASE("collectives: correction curve interpolates in log(bytes) and holds its ends", "[calibration]") {
  const CorrectionCurve c({{4096.0, 4.0}, {1024.0, 2.0}, {1024.0, 3.0}});  // 1024 averaged: 2.5
  CHECK(c.points() == 2);
  CHECK(c.at(Bytes{1024}) == exact(2.5));
  CHECK(c.at(Bytes{2048}) == exact(3.25));  // halfway in log(bytes)
  CHECK(c.at(Bytes{4096}) == exact(4.0));
  CHECK(c.at(Bytes{16}) == exact(2.5));
  CHECK(c.at(Bytes{1e12}) == exact(4.0));
  CHECK(CorrectionCurve().at(Bytes{1e6}) == 1.0);
}

TEST_CASE("collectives: collectives CSV rows are checked", "[calibration][errors]") {
  const auto dir = test::temp_dir("collectives-csv");
  auto write = [&](const std::string& name, const std::string& body) { return test::write_file(dir / name, body); };
  const std::string header = "# comment\ncollective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source\n";

  const auto ok = read_collectives_csv(write("ok.csv", header + "all_reduce,8,1MiB,,,40,a, b\n"
                                                                "\n"
                                                                "all_gather,4,1000000,10,,,c\n"));
  REQUIRE(ok.size() == 2);
  CHECK(ok[0].bytes.value() == kMiB);
  CHECK(ok[0].time.value() == exact(kMiB * 1.75 / 40e9));
  CHECK(ok[0].busbw_GBps() == exact(40.0));
  CHECK(ok[0].source == "a, b");
  CHECK_THAT(ok[1].where, Catch::Contains("ok.csv:5"));
  CHECK(ok[1].time.value() == exact(10e-6));

  CHECK_THAT(input_error([&] { (void)read_collectives_csv(write("h.csv", "coll,ranks\n")); }),
             Catch::Contains("h.csv:1: expected the header"));
  CHECK_THAT(input_error([&] { (void)read_collectives_csv(write("c.csv", header + "allreduse,8,1024,1,,,x\n")); }),
             Catch::Contains("c.csv:3: collective: unknown collective 'allreduse'"));
  // nccl-tests spellings; reduce / gather / scatter rows are skipped and counted.
  std::size_t skipped = 0;
  const auto aliases = read_collectives_csv(write("a.csv", header + "AllReduce,8,1024,1,,,x\n"
                                                                    "sendrecv,2,1024,1,,,x\n"
                                                                    "alltoall_perf,4,1024,1,,,x\n"
                                                                    "reduce,8,1024,1,,,x\n"),
                                            &skipped);
  REQUIRE(aliases.size() == 3);
  CHECK(aliases[0].op == CollectiveOp::all_reduce);
  CHECK(aliases[1].op == CollectiveOp::send_recv);
  CHECK(aliases[2].op == CollectiveOp::all_to_all);
  CHECK(skipped == 1);
  CHECK_THAT(input_error([&] { (void)read_collectives_csv(write("r.csv", header + "all_reduce,1,1024,1,,,x\n")); }),
             Catch::Contains("r.csv:3: ranks: expected an integer >= 2"));
  CHECK_THAT(input_error([&] { (void)read_collectives_csv(write("b.csv", header + "all_reduce,8,lots,1,,,x\n")); }),
             Catch::Contains("b.csv:3: bytes:"));
  CHECK_THAT(input_error([&] { (void)read_collectives_csv(write("t.csv", header + "all_reduce,8,1024,,,,x\n")); }),
             Catch::Contains("t.csv:3: give at least one of"));
  CHECK_THAT(input_error([&] { (void)read_collectives_csv(write("n.csv", header + "all_reduce,8,1024,-3,,,x\n")); }),
             Catch::Contains("n.csv:3: time_us: must be > 0"));
  CHECK_THAT(input_error([&] { (void)read_collectives_csv(write("f.csv", header + "all_reduce,8,1024\n")); }),
             Catch::Contains("f.csv:3: expected 7 comma-separated fields"));
  CHECK_THAT(
      input_error([&] { (void)read_collectives_csv(write("i.csv", header + "all_reduce,8,1048576,100,,400,x\n")); }),
      Catch::Contains("i.csv:3: time_us 100 means busbw"));
}

TEST_CASE("collectives: calibrated on the 8 x H200 all_reduce sweep, within 10 % from 1 MiB to 16 GiB",
          "[calibration]") {
  // The published sweep (32 KiB .. 16 GiB, torch.distributed, NCCL 2.27.7) in the shipped H200 profile.
  const auto topo = std::make_shared<const Topology>(load_topology("hgx-h200", kCatalog));
  const auto measured = read_collectives_csv(test::source_dir() + "/calibrate/data/h200/collectives.csv");
  const CalibratedCollectives cal(topo, measured);
  const auto rows = cal.compare();
  int checked = 0;
  for (const auto& r : rows) {
    if (r.op != CollectiveOp::all_reduce || r.ranks != 8) continue;
    char line[200];
    std::snprintf(line, sizeof line,
                  "%12.0f B  measured %7.2f  analytic %7.2f  fitted %7.2f (%+.2f%%)  loo %7.2f (%+.2f%%)  %s",
                  r.bytes.value(), r.measured_busbw_GBps, r.analytic_busbw_GBps, r.fitted_busbw_GBps,
                  r.fitted_error_pct, r.loo_busbw_GBps, r.loo_error_pct, r.algo.c_str());
    INFO(line);
    CHECK(std::fabs(r.fitted_error_pct) < 1e-6);  // in-sample reproduces the measurement
    if (r.bytes.value() >= kMiB && r.bytes.value() <= 16 * kGiB) {
      CHECK(std::fabs(r.loo_error_pct) <= 10.0);  // leave-one-out: a real prediction
      ++checked;
    }
  }
  CHECK(checked >= 13);  // every power of two from 1 MiB to 1 GiB, 4 GiB, 16 GiB

  // The calibrated group reproduces a measured point and interpolates between them.
  const CommGroup g = cal.group(first(8));
  const auto m1 = std::find_if(measured.begin(), measured.end(), [](const CollectiveMeasurement& m) {
    return m.op == CollectiveOp::all_reduce && m.ranks == 8 && m.bytes.value() == kMiB;
  });
  REQUIRE(m1 != measured.end());
  CHECK(g.time(CollectiveOp::all_reduce, m1->bytes).value() == Approx(m1->time.value()).epsilon(1e-9));
  CHECK(cal.predict(CollectiveOp::all_reduce, 8, Bytes{1.5 * kMiB}).busbw_GBps > 39.93);
  CHECK(cal.predict(CollectiveOp::all_reduce, 8, Bytes{1.5 * kMiB}).busbw_GBps < 64.53);
  // Ops and group sizes that were not measured are not corrected.
  CHECK(g.time(CollectiveOp::all_gather, Bytes{1e8}).value() ==
        exact(g.analytic_time(CollectiveOp::all_gather, Bytes{1e8}).value()));
  // A calibration only applies to the algorithm it was fitted against.
  CHECK_THROWS_AS(CommGroup(topo, first(8), "ring", cal.calibration()), InputError);
  // More ranks than GPUs in the CSV: the row is named.
  auto too_many = measured;
  too_many[2].ranks = 16;
  const std::string msg = input_error([&] { CalibratedCollectives(topo, too_many); });
  CHECK_THAT(msg, Catch::StartsWith(too_many[2].where + ": 16 ranks, but topology 'hgx-h200' has 8 GPUs"));
  CHECK_THAT(too_many[2].where, Catch::Matches(".*collectives\\.csv:[0-9]+"));
}

TEST_CASE("collectives: a single-node calibration does not correct a group that spans machines", "[calibration]") {
  const auto topo = std::make_shared<const Topology>(load_topology("cluster-2x-dgx-h100", kCatalog));
  const auto dir = test::temp_dir("spancal");
  std::string csv = "collective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source\n";
  for (double b = kMiB; b <= kGiB; b *= 4) csv += fmt::format("all_reduce,8,{:.0f},{:.3f},,,made up\n", b, b / 200e9 * 1e6 * 1.75);
  const auto measured = read_collectives_csv(test::write_file(dir / "c.csv", csv));
  const CalibratedCollectives cal(topo, measured);
  // GPUs 0..7 are one DGX: the measured group, corrected to the measurement.
  const CommGroup one_node = cal.group(first(8));
  CHECK(one_node.time(CollectiveOp::all_reduce, Bytes{kGiB}).value() ==
        Approx(kGiB / 200e9 * 1.75).epsilon(1e-6));  // time_us written to 3 decimals
  // Four GPUs of each machine: the same size, but its traffic crosses the network -- not corrected.
  const CommGroup two_nodes = cal.group({0, 1, 2, 3, 8, 9, 10, 11});
  CHECK(two_nodes.time(CollectiveOp::all_reduce, Bytes{kGiB}).value() ==
        exact(two_nodes.analytic_time(CollectiveOp::all_reduce, Bytes{kGiB}).value()));
  CHECK(two_nodes.time(CollectiveOp::all_reduce, Bytes{kGiB}).value() >
        one_node.analytic_time(CollectiveOp::all_reduce, Bytes{kGiB}).value());
  CHECK(topo->nodes_spanned({0, 1, 2, 3, 8, 9, 10, 11}) == 2);
  CHECK(topo->nodes_spanned(first(8)) == 1);
}
