// Derivation of NCCL's tuning inputs from a Topology (see models/net/nccl_inputs.h for each rule and source).
#include "models/net/nccl_inputs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace servesim {
namespace {

constexpr double kGBps = 1e9;
constexpr int kMaxRingChannels = 32;  // MAXCHANNELS (64) / 2, init.cc ringGraph->maxChannels
constexpr int kMaxNvlsArity = 32;     // NCCL_MAX_NVLS_ARITY, src/include/device.h
constexpr double kPciFactor = 12.0 / 15.75;  // PCI_BW (12 GB/s, src/graph/topo.h) / Gen3 x16 datasheet rate

// NCCL's speed arrays (src/graph/search.cc), GB/s per channel.
const std::vector<double> kIntra = {40.0, 30.0, 20.0, 18.0, 15.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 3.0};
const std::vector<double> kInter = {48.0, 30.0, 28.0, 24.0, 20.0, 18.0, 15.0, 12.0, 10.0, 9.0,
                                    7.0,  6.0,  5.0,  4.0,  3.0,  2.4,  1.2,  0.24, 0.12};
const std::vector<double> kSm90Intra = {60.0, 50.0, 40.0, 30.0, 24.0, 20.0, 15.0, 12.0, 11.0, 6.0, 3.0};
const std::vector<double> kSm90Inter = {48.0, 45.0, 42.0, 40.0, 30.0, 24.0, 22.0, 20.0, 17.5,
                                        15.0, 12.0, 6.0,  3.0,  2.4,  1.2,  0.24, 0.12};
const std::vector<double> kSm100Intra = {90.0, 80.0, 70.0, 60.0, 50.0, 45.0, 40.0, 30.0, 24.0, 20.0, 19.0, 18.0};
const std::vector<double> kSm100Inter = {96.0, 86.0, 80.0, 48.0, 45.1, 42.0, 40.0, 30.0, 24.0, 22.0,
                                         20.0, 17.5, 15.0, 12.0, 6.0,  3.0,  2.4,  1.2,  0.24, 0.12};

const std::vector<double>& speeds(int cc, bool inter) {
  if (cc >= 100) return inter ? kSm100Inter : kSm100Intra;
  if (cc >= 90) return inter ? kSm90Inter : kSm90Intra;
  return inter ? kInter : kIntra;
}

// Datasheet rate of one NVLink per direction: 25 GB/s for NVLink 2-4, 50 GB/s for NVLink5.
double nvlink_datasheet_per_link(int cc) { return cc >= 100 ? 50.0 : 25.0; }

bool nvlink_kind(VertexKind k) { return k == VertexKind::nvswitch || k == VertexKind::gpu; }

struct Fabric {
  double nvl_total = 0.0;  // NVLink bandwidth of one GPU (NCCL units)
  double pci_path = 0.0;   // per-path bandwidth between GPUs over PCIe (NCCL units)
  bool nvlink = true;
  double nic_bw = 0.0;     // best NIC path bandwidth of a GPU (NCCL units)
  int nics = 0;            // NICs per node
  bool inter = false;      // several nodes
  int max_channels = kMaxRingChannels;
  [[nodiscard]] double total() const { return nvlink ? nvl_total : pci_path; }
  [[nodiscard]] int fit(double speed) const {
    long c = static_cast<long>(std::floor(total() / speed + 1e-9));
    if (inter) c = std::min<long>(c, static_cast<long>(nics) * static_cast<long>(std::floor(nic_bw / speed + 1e-9)));
    return static_cast<int>(std::clamp<long>(c, 0, max_channels));
  }
  [[nodiscard]] double max_bw() const { return inter ? std::min(nic_bw, total()) : total(); }
};

// ncclTopoCompute for the ring / tree patterns on a uniform system (see the header).
NcclGraph search_ring(const Fabric& f, int cc) {
  const auto& sp = speeds(cc, f.inter);
  std::size_t i = 0;
  while (i + 1 < sp.size() && (sp[i] > f.max_bw() || sp[i] > f.total())) ++i;
  int best_c = 0;
  double best_s = 0.0;
  for (;;) {
    const int c = f.fit(sp[i]);
    if (c > 0 && c * sp[i] > best_c * best_s) {
      best_c = c;
      best_s = sp[i];
    }
    if (c == f.max_channels) break;                               // perfect graph
    if (best_c > 0 && best_c * best_s >= f.total()) break;        // uses all the bandwidth
    if (i + 1 < sp.size() && (best_c == 0 || sp[i + 1] / best_s > 0.49)) {
      ++i;
      continue;
    }
    break;
  }
  NcclGraph g;
  if (best_c == 0) {  // NCCL falls back to a simple order at 0.1 GB/s
    g.channels = 1;
    g.bw_intra_GBps = g.bw_inter_GBps = 0.1;
    return g;
  }
  // ncclTopoDupChannels
  if (!(best_s < 25.0) && !(cc > 80 && best_s < 50.0 && best_c > 4)) {
    const int dup = std::min(best_c * 2, f.max_channels);
    best_s /= static_cast<double>((dup + best_c - 1) / best_c);
    best_c = dup;
  }
  // pass 2: raise the speed while at least as many channels fit
  std::size_t j = 0;
  while (j + 1 < sp.size() && sp[j] > best_s) ++j;
  while (j > 0) {
    const double s = sp[--j];
    const int c = f.fit(s);
    if (c >= best_c && c * s > best_c * best_s) {
      best_c = c;
      best_s = s;
    }
  }
  g.channels = best_c;
  g.bw_intra_GBps = g.bw_inter_GBps = best_s;
  return g;
}

// NVLS graph (ncclTopoSearchTryNvls): one channel per local GPU.
NcclGraph search_nvls(const Fabric& f, int cc, int ppn) {
  NcclGraph g;
  g.channels = std::min(kMaxNvlsArity, ppn);
  g.same_channels = false;
  const auto& sp = speeds(cc, f.inter);
  auto nic_ok = [&](double s) { return !f.inter || (s <= f.nic_bw && g.channels * s <= f.nics * f.nic_bw); };
  std::size_t i = 0;
  while (i < sp.size() && !((ppn + 1) * sp[i] <= f.nvl_total + 1e-9 && nic_ok(sp[i]))) ++i;
  if (i == sp.size()) {
    g.channels = 0;
    return g;
  }
  g.bw_intra_GBps = g.bw_inter_GBps = sp[i];
  while (i > 0 && g.bw_inter_GBps < 2 * g.bw_intra_GBps && nic_ok(sp[i - 1])) g.bw_inter_GBps = sp[--i];
  return g;
}

// Smallest link bandwidth of a route (datasheet, bytes/s) and whether it passes a cpu / only nvswitch vertices.
struct RouteFacts {
  double bottleneck = std::numeric_limits<double>::infinity();
  bool via_cpu = false;
  bool nvlink_only = true;
};

RouteFacts facts(const Topology& topo, int from_vertex, int to_vertex) {
  RouteFacts f;
  const Route r = topo.route(from_vertex, to_vertex);
  for (std::size_t k = 0; k < r.links.size(); ++k) {
    const TopoLink& l = topo.link(r.links[k]);
    f.bottleneck = std::min(f.bottleneck, l.bandwidth.value());
    if (k + 1 < r.links.size()) {
      const VertexKind kind = topo.vertex(l.to).kind;
      if (kind == VertexKind::cpu) f.via_cpu = true;
      if (kind != VertexKind::nvswitch) f.nvlink_only = false;
    }
  }
  return f;
}

}  // namespace

NcclInputs derive_nccl_inputs(const Topology& topo, const std::vector<int>& gpus) {
  NcclInputs in;
  in.ranks = static_cast<int>(gpus.size());
  if (gpus.empty()) return in;
  in.nodes = topo.nodes_spanned(gpus);
  const int ppn = in.ranks / in.nodes;
  int cc = std::numeric_limits<int>::max();
  for (int g : gpus) cc = std::min(cc, topo.vertex(topo.gpu_vertex(g)).compute_capability);
  in.compute_capability = cc;

  const int node0 = topo.node_of_gpu(gpus.front());
  std::vector<int> local;
  for (int g : gpus) {
    if (topo.node_of_gpu(g) == node0) local.push_back(g);
  }

  Fabric f;
  f.inter = in.nodes > 1;
  // Intra-node class and per-path bandwidth.
  double pci_path = std::numeric_limits<double>::infinity();
  bool nvlink = local.size() >= 2;
  for (std::size_t a = 0; a < local.size(); ++a) {
    for (std::size_t b = 0; b < local.size(); ++b) {
      if (a == b) continue;
      const RouteFacts rf = facts(topo, topo.gpu_vertex(local[a]), topo.gpu_vertex(local[b]));
      if (!rf.nvlink_only) nvlink = false;
      pci_path = std::min(pci_path, rf.bottleneck / kGBps * kPciFactor);
    }
  }
  f.nvlink = nvlink;
  f.pci_path = std::isfinite(pci_path) ? pci_path : 0.0;
  in.intra_hw = nvlink ? NcclHw::nvlink : NcclHw::pci;
  // NVLink bandwidth of one GPU (the smallest over the local GPUs).
  double nvl = std::numeric_limits<double>::infinity();
  for (int g : local) {
    const int v = topo.gpu_vertex(g);
    double sum = 0.0;
    for (const int id : topo.out_links(v)) {
      const TopoLink& l = topo.link(id);
      if (nvlink_kind(topo.vertex(l.to).kind)) sum += l.bandwidth.value() / kGBps;
    }
    const double links = std::round(sum / nvlink_datasheet_per_link(cc));
    nvl = std::min(nvl, links * nccl_nvlink_bw_per_link(cc));
  }
  f.nvl_total = std::isfinite(nvl) ? nvl : 0.0;
  // NICs: count per node and the best GPU -> NIC path.
  bool nic_via_cpu = false;
  if (f.inter) {
    double nic_bw = std::numeric_limits<double>::infinity();
    for (int g : local) {
      double best = 0.0;
      bool best_via_cpu = false;
      int count = 0;
      for (const int v : topo.node_vertices(node0)) {
        const TopoVertex& tv = topo.vertex(v);
        if (tv.kind != VertexKind::nic) continue;
        ++count;
        const RouteFacts rf = facts(topo, topo.gpu_vertex(g), v);
        const double bw = std::min(tv.nic_bandwidth.value(), rf.bottleneck * kPciFactor) / kGBps;
        if (bw > best) {
          best = bw;
          best_via_cpu = rf.via_cpu;
        }
      }
      f.nics = count;
      nic_bw = std::min(nic_bw, best);
      nic_via_cpu = nic_via_cpu || best_via_cpu;
    }
    f.nic_bw = std::isfinite(nic_bw) ? nic_bw : 0.0;
  }
  if (ppn == 1) {
    in.intra_hw = NcclHw::pci;
    f.nvlink = false;
    f.pci_path = f.nic_bw;  // the ring goes straight from the NIC to the GPU and back
  }
  in.ll128_path_ok = (nvlink || ppn == 1) && !(f.inter && nic_via_cpu);

  // With one GPU per node NCCL's tree search gives a TREE-pattern graph (search.cc: ngpus == 1 and pattern not
  // RING), which the tuner charges x0.85 on Tree.
  in.tree_pattern_tree = ppn == 1;

  in.ring = search_ring(f, cc);
  Fabric tf = f;
  tf.max_channels = std::max(1, in.ring.channels);  // init.cc: tree min = max channels = the ring's
  in.tree = search_ring(tf, cc);
  // init.cc: comm->nChannels = ring = tree channels = the smaller of the two.
  const int channels = std::min(in.ring.channels, in.tree.channels);
  in.ring.channels = channels;
  in.tree.channels = channels;
  in.pat = in.tree;  // init.cc: graphs[NCCL_ALGO_PAT] is the tree graph
  // ncclTopoPostset (connect.cc): the channels are duplicated (at most MAXCHANNELS = 64), and on Hopper+ across
  // nodes doubled again while the ring's bwIntra > 45 GB/s and fewer than 16 channels.
  in.comm_channels = std::min(64, 2 * channels);
  if (cc >= 90 && in.nodes > 1 && in.ring.bw_intra_GBps > 45.0 && in.comm_channels < 16) in.comm_channels *= 2;

  const auto idx = [](NcclAlgo a) { return static_cast<std::size_t>(a); };
  const std::string no_collnet =
      "needs in-network reduction (CollNet / SHARP switches), which the topology does not declare";
  in.unusable[idx(NcclAlgo::collnet_direct)] = no_collnet;
  in.unusable[idx(NcclAlgo::collnet_chain)] = no_collnet;
  if (in.ranks != in.nodes) in.unusable[idx(NcclAlgo::pat)] = "PAT runs only with one GPU per node";

  std::string nvls_why;
  if (cc < 90) {
    nvls_why = "NVLS needs Hopper or newer GPUs (compute capability >= 90)";
  } else if (ppn < 2 || !topo.shares_nvswitch(local)) {
    nvls_why = "NVLS needs an NVLS-capable NVSwitch linked to every GPU of the node";
  } else {
    in.nvls = search_nvls(f, cc, ppn);
    if (in.nvls.channels < 2) nvls_why = "the NVSwitch links are too slow for an NVLS graph";
  }
  in.nvls_tree = in.nvls;
  in.unusable[idx(NcclAlgo::nvls)] = nvls_why;
  in.unusable[idx(NcclAlgo::nvls_tree)] = nvls_why;
  if (nvls_why.empty() && in.nodes > 1) {
    in.unusable[idx(NcclAlgo::nvls)] = "NVLS across nodes needs CollNet; NCCL uses nvls_tree there";
  }
  if (nvls_why.empty() && in.nodes == 1) in.unusable[idx(NcclAlgo::nvls_tree)] = "NVLS-tree runs across nodes only";
  return in;
}

}  // namespace servesim
