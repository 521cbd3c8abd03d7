// NCCL's own tuning model: the latency and bandwidth NCCL's tuner assigns to every (collective, algorithm,
// protocol) and the pair it picks for a message size. The facts (constants, formulas, restrictions) are those of
// NCCL 2.30.7 (NVIDIA/nccl commit 5067397c, makefiles/version.mk), read from
//   src/graph/tuning.cc   ncclTopoTuneModel (latencies/bandwidths), ncclTopoGetAlgoTime (time of one call),
//                         nvlsEfficiency, ncclTunerConstantsDefaults (baseLatencies, hwLatencies, llMaxBws,
//                         perChMaxRingLL128Bws, perChMaxTreeLL128Bws, perChMaxTreeBws, perChMaxNVLSTreeBws),
//                         treeCorrectionFactor, getNetOverhead;
//   src/graph/search.cc   the graph search that fixes nChannels and the per-channel bandwidths bwIntra/bwInter
//                         (speed arrays, ncclTopoDupChannels, ncclTopoSearchTryNvls);
//   src/graph/topo.h      per-link NVLink bandwidth by SM architecture (ncclTopoNVLinkBw), PCI_BW.
// The code is written from those facts; it is not NCCL's code. The inputs NCCL gets from its own topology
// detection are derived from a servesim Topology by derive_nccl_inputs() (models/net/nccl_inputs.cpp, where each
// derivation is documented).
//
// The model, per collective c (Broadcast, AllGather, ReduceScatter, AllReduce), algorithm a and protocol p:
//   busBw    = nChannels(a) * bw(a), bw = bwIntra when nNodes <= 2 (or CollNet), else bwInter; NVLS and NVLS-tree:
//              bw = min(bwIntra * nvlsEfficiency * (nCh-1)/nCh * (AllReduce ? 2 : (ppn-1)/ppn), bwInter
//              (x2 for NVLS-tree on <= 2 nodes), NVLS-tree: perChMaxNVLSTreeBw)
//   refinements  Ring/LL: min(llMaxBw, busBw/2); Ring/LL128: min(0.92 busBw, nCh * perChMaxRingLL128Bw);
//              Tree (AllReduce): min(0.92 busBw, nCh * perChMaxTreeBw); Tree/LL: min(busBw/3.8, llMaxBw);
//              Tree/LL128: min(busBw * (nNodes == 1 ? 7/9 : 120/128), nCh * perChMaxTreeLL128Bw); Tree pattern
//              TREE (not balanced): x0.85; PAT: x0.75; CollNet: Simple only
//   algBw    = busBw * ratio: Ring, NVLS, NVLS-tree nRanks/nsteps (nsteps = 2(n-1) AllReduce, n-1 AllGather and
//              ReduceScatter, n otherwise); Tree, CollNet 1/2; non-ring AllGather/ReduceScatter: no ratio
//   latency  = baseLat[a][p] + hop latencies hwLat[class][a][p] (class NVLink / PCI for the intra-node hops,
//              network for the inter-node ones):
//              Ring  (nsteps - nInterSteps) * max(intraLat, netOverhead) + nInterSteps * interLat,
//                    nInterSteps = 0 on one node, 2(nNodes-1) AllReduce, nNodes-1 otherwise; Broadcast with the
//                    same channels on every node: one hop (hwLat of the ring's class)
//              Tree  2 ((nRanks/nNodes - 1) intraLat + log2i(nNodes) interLat) (AllReduce)
//              NVLS  intraLat (+ interLat on several nodes), NVLS-tree  baseLat + intraLat + 2 log2i(nNodes) interLat
//              CollNet: not modelled (no catalogue topology has in-network reduction; the algorithm is unusable)
//              PAT   log2i(nNodes) interLat / 3.5 + 2.8 nRanks
//              interLat = hwLat[net][a][p] (Tree's with one rank per node) + latencyInter (x2 for Simple)
//   time(S)  = latency + S / algBw (us, GB/s); Tree AllReduce algBw x treeCorrectionFactor[p][log2i(S/64)] for
//              S/64 < 2^23; Ring/Simple AllReduce on several nodes with S/(comm nChannels * nRanks) >= 64:
//              latency x1.4 (x1.9 before Ampere).
// The tuner takes the enabled pair with the smallest time. Enabled: Ring, Tree everywhere (Tree: AllReduce
// only); NVLS with an NVLS-capable NVSwitch on Hopper+ (one node; several nodes need CollNet), Simple only;
// NVLS-tree on several nodes only; CollNet only where the fabric has in-network reduction (none of servesim's
// catalogue does); PAT for AllGather/ReduceScatter with one GPU per node, Simple only; LL128 only where NCCL
// enables it by default (NVLink within the node, NIC reached without crossing a CPU, SM >= 70; Hopper's PXN
// paths through a peer GPU to its NIC are not derived from the topology).
// send_recv and all_to_all are point-to-point in NCCL and not part of its tuning model (time() returns nullopt).
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "models/common/units.h"
#include "models/net/collective.h"

namespace servesim {

// NCCL's algorithm order (NCCL_ALGO_TREE .. NCCL_ALGO_PAT).
enum class NcclAlgo { tree, ring, collnet_direct, collnet_chain, nvls, nvls_tree, pat };
inline constexpr int kNcclAlgos = 7;
// NCCL's protocol order (NCCL_PROTO_LL, LL128, SIMPLE).
enum class NcclProto { ll, ll128, simple };
inline constexpr int kNcclProtos = 3;
// NCCL_HW_NVLINK, NCCL_HW_PCI, NCCL_HW_NET.
enum class NcclHw { nvlink, pci, net };

[[nodiscard]] std::string_view to_string(NcclAlgo a);  // "ring", "tree", "nvls", "nvls_tree", ...
[[nodiscard]] std::string_view to_string(NcclProto p);  // "LL", "LL128", "Simple"
[[nodiscard]] std::optional<NcclAlgo> parse_nccl_algo(std::string_view text);    // case-insensitive
[[nodiscard]] std::optional<NcclProto> parse_nccl_proto(std::string_view text);  // case-insensitive
[[nodiscard]] std::string nccl_algo_names();   // "collnet_chain, collnet_direct, nvls, nvls_tree, pat, ring, tree"
[[nodiscard]] std::string nccl_proto_names();  // "LL, LL128, Simple"

// One NCCL topology graph as the tuner reads it (struct ncclTopoGraph).
struct NcclGraph {
  int channels = 0;              // nChannels; 0 = the search found no graph (the algorithm cannot run)
  double bw_intra_GBps = 0.0;    // bwIntra: per-channel bandwidth within a node, GB/s
  double bw_inter_GBps = 0.0;    // bwInter: per-channel bandwidth across nodes, GB/s
  double latency_inter_us = 0.0;  // latencyInter: the network's own latency (0 for IB verbs NICs)
  bool same_channels = true;     // sameChannels: every node uses the same channel layout
};

// Everything ncclTopoTuneModel reads besides its constants (derive_nccl_inputs() fills it from a Topology).
struct NcclInputs {
  int ranks = 0;                   // nRanks
  int nodes = 1;                   // nNodes
  int compute_capability = 90;     // minCompCap (= maxCompCap), e.g. 90 for Hopper
  NcclHw intra_hw = NcclHw::nvlink;  // typeIntra == NVL ? NVLink : PCI
  bool ll128_path_ok = true;       // typeIntra <= PATH_NVB and typeInter <= PATH_PXN (Hopper+) / PATH_PXB
  bool amd_cpu = false;            // cpuVendor AMD (llMaxBw row for several nodes, 2 us net overhead)
  bool tree_pattern_tree = false;  // maxTreePattern == NCCL_TOPO_PATTERN_TREE (Tree busBw x0.85)
  int comm_channels = 0;           // comm->nChannels (the ring plateau threshold)
  NcclGraph ring, tree, collnet_direct, collnet_chain, nvls, nvls_tree, pat;
  // Why each algorithm cannot run on the group (empty when it can), indexed by NcclAlgo.
  std::array<std::string, kNcclAlgos> unusable{};
  [[nodiscard]] const NcclGraph& graph(NcclAlgo a) const;
};

// The tuner's tables for one communicator: latencies (us) and algorithm bandwidths (GB/s) of every
// (collective, algorithm, protocol), 0 bandwidth meaning "not available", as comm->latencies/bandwidths.
class NcclTuning {
 public:
  explicit NcclTuning(const NcclInputs& in);

  // Whether NCCL's tuner models op (all_reduce, all_gather, reduce_scatter, broadcast).
  [[nodiscard]] static bool models(CollectiveOp op);
  [[nodiscard]] double latency_us(CollectiveOp op, NcclAlgo a, NcclProto p) const;
  [[nodiscard]] double bandwidth_GBps(CollectiveOp op, NcclAlgo a, NcclProto p) const;  // algBw; 0 = disabled
  // ncclTopoGetAlgoTime for one call of `size` bytes (nccl-tests sizes, models/net/collective.h); nullopt when
  // the pair is disabled or op is not modelled.
  [[nodiscard]] std::optional<Seconds> time(CollectiveOp op, NcclAlgo a, NcclProto p, Bytes size) const;

  struct Choice {
    NcclAlgo algo = NcclAlgo::ring;
    NcclProto proto = NcclProto::simple;
    Seconds time{0};
  };
  // The fastest enabled pair among those allowed (bit a of algo_mask, bit p of proto_mask); ties go to the
  // first in NCCL's order (algorithms, then protocols), as NCCL's tuner loop does. nullopt when none is allowed.
  [[nodiscard]] std::optional<Choice> best(CollectiveOp op, Bytes size, unsigned algo_mask = ~0U,
                                           unsigned proto_mask = ~0U) const;
  [[nodiscard]] const NcclInputs& inputs() const { return in_; }

 private:
  NcclInputs in_;
  // [op][algo][proto]; ops indexed as CollectiveOp.
  std::array<std::array<std::array<double, kNcclProtos>, kNcclAlgos>, kNumCollectiveOps> lat_{}, bw_{};
};

// Per-link NVLink bandwidth NCCL assumes (ncclTopoNVLinkBw, GB/s): SM60 18, SM70 20, SM80 20, SM86 12,
// SM90 20.6, SM100 40.1.
[[nodiscard]] double nccl_nvlink_bw_per_link(int compute_capability);

}  // namespace servesim
