// The inputs of NCCL's tuning model (NcclInputs, models/net/nccl_tuning.h) derived from a servesim Topology for
// one group of GPUs, standing in for NCCL's own topology detection and graph search (NCCL 2.30.7,
// src/graph/topo.cc, src/graph/search.cc). Derivations (all bandwidths in NCCL's GB/s units):
//   nRanks, nNodes      the group size and Topology::nodes_spanned; ppn = nRanks / nNodes.
//   compute capability  the smallest `compute_capability` of the group's GPUs (catalogue, default 90).
//   intra link class    NVLink when every route between two of the first node's group GPUs passes only
//                       nvswitch vertices (or none: a direct GPU-GPU link), else PCI; PCI also with one GPU per
//                       node (NCCL's typeIntra is then PATH_LOC, not NVL).
//   NVLink bandwidth    per GPU: the datasheet bandwidth of its links to nvswitch / gpu vertices, divided by
//                       the datasheet rate of one NVLink (25 GB/s per direction for NVLink 2-4, SM70-SM90;
//                       50 GB/s for NVLink5, SM100) = the link count, times ncclTopoNVLinkBw (20.6 GB/s on
//                       SM90): DGX H100 450 GB/s = 18 links -> 370.8 GB/s, as NCCL's topology reports.
//   PCIe bandwidth      datasheet per-direction bandwidth x 12/15.75 (NCCL's PCI_BW of 12 GB/s for the
//                       15.75 GB/s of a Gen3 x16 link): Gen5 x16 63 GB/s -> 48 GB/s.
//   NIC bandwidth       per GPU, the best NIC of its node: min(line rate, PCIe route GPU -> NIC); NCCL uses the
//                       line rate in GB/s (400 Gb/s = 50 GB/s).
//   ring graph          the pass-1 / pass-2 search of ncclTopoCompute on a uniform system: for each speed of
//                       NCCL's speed array (sm90/sm100/older, intra-node array on one node, inter-node array
//                       otherwise), the channels that fit = min(32 = MAXCHANNELS/2, floor(NVLink bandwidth /
//                       speed), across nodes: NICs per node x floor(NIC bandwidth / speed)); pass 1 starts at the
//                       first speed <= the per-path bandwidth and keeps the best nChannels x speed (first on ties),
//                       lowering the speed while next/best > 0.49 and stopping at a perfect graph (maxChannels)
//                       or nChannels x bw >= total bandwidth; ncclTopoDupChannels doubles the channels (halving
//                       the speed) unless bw < 25 or (SM > 80, bw < 50 and > 4 channels); pass 2 raises the speed
//                       while the channels still fit. DGX H100: 12 channels x 30 GB/s. Channels on one GPU share
//                       only that GPU's own links (uplinks shared by several GPUs are not modelled: PCIe systems
//                       come out optimistic).
//   tree graph          the same search with maxChannels = the ring's channels; then ring and tree both get the
//                       smaller channel count (init.cc). A balanced tree is assumed found, so the 0.85 TREE-pattern
//                       penalty applies only with one GPU per node (search.cc forces pattern TREE there). NCCL's
//                       tree search also scales a non-ring graph's total bandwidth by ndevs/(ndevs-1) and raises
//                       only the intra speed in pass 2: not modelled (the tree uses the ring's speeds).
//   PAT graph           the tree graph (init.cc).
//   NVLS graph          one channel per local GPU (up to NCCL_MAX_NVLS_ARITY = 32, at least 2), each channel
//                       costing its head GPU 2 x speed and every other GPU 1 x speed on its NVSwitch link
//                       (ncclTopoSearchTryNvls): bwIntra = the largest speed with (ppn + 1) x speed <= NVLink
//                       bandwidth (and <= NIC bandwidth across nodes); bwInter is then raised speed by speed
//                       while below 2 x bwIntra (pass 2; across nodes also while the NICs carry it). DGX H100:
//                       8 channels, bwIntra 40, bwInter 60. Needs an NVLS-capable nvswitch linked to every local
//                       GPU (Topology::common_nvswitch) and SM >= 90. NCCL's nvlsEfficiency (0.85 on Hopper) is
//                       used, not the catalogue's nvls_efficiency (which the link-load model uses).
//   latencyInter        0 (what NCCL's IB verbs and socket transports report).
//   CPU vendor          Intel (every catalogue machine): llMaxBw row for several nodes, 1 us net overhead.
//   comm nChannels      min(64, 2 x min(ring, tree channels)), doubled again on SM >= 90 across nodes while the
//                       ring's bwIntra > 45 GB/s and fewer than 16 (ncclTopoPostset, connect.cc).
//   LL128               enabled when the intra class is NVLink (or one GPU per node) and, across nodes, every
//                       GPU reaches its NIC without crossing a cpu vertex (typeInter <= PXB).
//   CollNet             never: no catalogue topology has in-network reduction (SHARP) switches.
#pragma once
#include <vector>

#include "models/net/nccl_tuning.h"
#include "models/net/topology.h"

namespace servesim {

// `gpus`: topology GPU indices of the group (>= 1, distinct, as CommGroup checks). Never throws for a group
// CommGroup accepts; algorithms that cannot run carry their reason in NcclInputs::unusable.
[[nodiscard]] NcclInputs derive_nccl_inputs(const Topology& topo, const std::vector<int>& gpus);

}  // namespace servesim
