// NCCL's tuning model (see models/net/nccl_tuning.h). Every constant below is NCCL 2.30.7's
// (src/graph/tuning.cc unless said otherwise); arithmetic is in double where NCCL uses float, so values agree
// with NCCL's to float precision.
#include "models/net/nccl_tuning.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>

namespace servesim {
namespace {

constexpr int A(NcclAlgo a) { return static_cast<int>(a); }
constexpr int P(NcclProto p) { return static_cast<int>(p); }
constexpr std::size_t I(int i) { return static_cast<std::size_t>(i); }

using Table = std::array<std::array<double, kNcclProtos>, kNcclAlgos>;

// baseLatencies (us), rows Tree, Ring, CollNetDirect, CollNetChain, NVLS, NVLSTree, PAT; columns LL, LL128, Simple.
constexpr Table kBaseLat = {{{6.8, 14.0, 8.4}, {6.6, 14.0, 8.4}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0},
                             {8.0, 8.0, 8.0}}};
// hwLatencies (us) by link class NVLink, PCI, network.
constexpr std::array<Table, 3> kHwLat = {{
    {{{0.6, 1.25, 4.0}, {0.6, 1.9, 3.4}, {0, 0, 3.7}, {0, 0, 2.8}, {0, 0, 25}, {0, 0, 25}, {0, 0, 4.0}}},
    {{{1.0, 1.9, 4.0}, {1.0, 2.5, 5.7}, {0, 0, 3.7}, {0, 0, 2.8}, {0, 0, 0}, {0, 0, 0}, {0, 0, 4.0}}},
    {{{5.0, 8.5, 14}, {2.7, 4.0, 14.0}, {0, 0, 31}, {0, 0, 30}, {0, 0, 18}, {0, 0, 20.9}, {0, 0, 14}}},
}};
// Per-architecture rows (Volta, Ampere, Hopper, Blackwell) x (1 node, 2 nodes, more), GB/s.
using ArchTable = std::array<std::array<double, 3>, 4>;
constexpr ArchTable kLlMaxBw = {{{39.0, 39.0, 20.4}, {87.7, 22.5, 19.0}, {141.0, 45.0, 35.0}, {282.0, 90.0, 70.0}}};
constexpr ArchTable kPerChMaxRingLL128Bw = {
    {{20.0, 20.0, 20.0}, {20.0, 20.0, 20.0}, {36.7, 36.7, 36.7}, {40.0, 40.0, 40.0}}};
constexpr ArchTable kPerChMaxTreeLL128Bw = {
    {{20.0, 20.0, 20.0}, {20.0, 20.0, 20.0}, {36.7, 36.7, 29.0}, {55.6, 31.67, 20.0}}};
constexpr ArchTable kPerChMaxTreeBw = {{{26.5, 18.5, 10.0}, {24.0, 23.6, 17.8}, {38.7, 41.4, 36.0}, {70.0, 42.8, 24.0}}};
constexpr ArchTable kPerChMaxNvlsTreeBw = {
    {{26.5, 18.5, 10.0}, {24.0, 23.6, 17.8}, {0.0, 57.7, 45.5}, {0.0, 96.0, 80.0}}};
// nvlsEfficiency by architecture.
constexpr std::array<double, 4> kNvlsEfficiency = {0.0, 0.0, 0.85, 0.74};
// treeCorrectionFactor[proto][log2(bytes/64)], 64 B .. 512 MiB.
constexpr std::array<std::array<double, 24>, 3> kTreeCorrection = {{
    {1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0, 1.0},
    {1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0, 1.0},
    {.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9, .9},
}};

int arch_index(int cc) { return cc >= 100 ? 3 : cc >= 90 ? 2 : cc >= 80 ? 1 : 0; }

// floor(log2(n)), -1 for n <= 0 (NCCL's log2i / log2Down).
int log2i(std::int64_t n) {
  if (n <= 0) return -1;
  int l = 0;
  while (n >>= 1) ++l;
  return l;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

constexpr std::array<std::string_view, kNcclAlgos> kAlgoNames = {"tree",      "ring",     "collnet_direct",
                                                                 "collnet_chain", "nvls", "nvls_tree", "pat"};
constexpr std::array<std::string_view, kNcclProtos> kProtoNames = {"LL", "LL128", "Simple"};

}  // namespace

std::string_view to_string(NcclAlgo a) { return kAlgoNames[I(A(a))]; }
std::string_view to_string(NcclProto p) { return kProtoNames[I(P(p))]; }

std::optional<NcclAlgo> parse_nccl_algo(std::string_view text) {
  const std::string t = lower(text);
  for (int a = 0; a < kNcclAlgos; ++a) {
    if (t == kAlgoNames[I(a)]) return static_cast<NcclAlgo>(a);
  }
  return std::nullopt;
}

std::optional<NcclProto> parse_nccl_proto(std::string_view text) {
  const std::string t = lower(text);
  for (int p = 0; p < kNcclProtos; ++p) {
    if (t == lower(kProtoNames[I(p)])) return static_cast<NcclProto>(p);
  }
  return std::nullopt;
}

namespace {
template <std::size_t N>
std::string joined(std::array<std::string_view, N> names, bool sort) {
  if (sort) std::sort(names.begin(), names.end());
  std::string out;
  for (const auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}
}  // namespace

std::string nccl_algo_names() { return joined(kAlgoNames, true); }
std::string nccl_proto_names() { return joined(kProtoNames, false); }

double nccl_nvlink_bw_per_link(int cc) {
  // src/graph/topo.h: SM60_NVLINK_BW 18.0, SM70 20.0, SM80 20.0, SM86 12.0, SM90 20.6, SM100 40.1.
  return cc >= 100 ? 40.1 : cc >= 90 ? 20.6 : cc == 86 ? 12.0 : cc >= 80 ? 20.0 : cc >= 70 ? 20.0 : cc >= 60 ? 18.0 : 20.0;
}

const NcclGraph& NcclInputs::graph(NcclAlgo a) const {
  switch (a) {
    case NcclAlgo::tree: return tree;
    case NcclAlgo::ring: return ring;
    case NcclAlgo::collnet_direct: return collnet_direct;
    case NcclAlgo::collnet_chain: return collnet_chain;
    case NcclAlgo::nvls: return nvls;
    case NcclAlgo::nvls_tree: return nvls_tree;
    case NcclAlgo::pat: return pat;
  }
  return ring;
}

bool NcclTuning::models(CollectiveOp op) {
  return op == CollectiveOp::all_reduce || op == CollectiveOp::all_gather || op == CollectiveOp::reduce_scatter ||
         op == CollectiveOp::broadcast;
}

NcclTuning::NcclTuning(const NcclInputs& in) : in_(in) {
  const int n = in.ranks;
  const int nodes = std::max(1, in.nodes);
  if (n < 2) return;
  const int arch = arch_index(in.compute_capability);
  const int idx2 = nodes <= 2 ? nodes - 1 : 2;
  const int idx1 = nodes == 1 ? arch : (in.amd_cpu ? 1 : 0);
  const double ll_max_bw = kLlMaxBw[I(idx1)][I(idx2)];
  const double per_ch_tree = kPerChMaxTreeBw[I(arch)][I(idx2)];
  const double per_ch_ring_ll128 = kPerChMaxRingLL128Bw[I(arch)][I(idx2)];
  const double per_ch_tree_ll128 = kPerChMaxTreeLL128Bw[I(arch)][I(idx2)];
  const double per_ch_nvls_tree = kPerChMaxNvlsTreeBw[I(arch)][I(idx2)];
  const double ppn = static_cast<double>(n) / nodes;
  const int ppn_int = n / nodes;
  const auto intra_hw = static_cast<std::size_t>(in.intra_hw);
  const std::size_t hw = nodes == 1 ? intra_hw : static_cast<std::size_t>(NcclHw::net);
  const std::size_t net = static_cast<std::size_t>(NcclHw::net);

  for (CollectiveOp op : kAllCollectiveOps) {
    if (!models(op)) continue;
    const bool ar = op == CollectiveOp::all_reduce;
    const bool ag_rs = op == CollectiveOp::all_gather || op == CollectiveOp::reduce_scatter;
    const int nsteps = ar ? 2 * (n - 1) : ag_rs ? n - 1 : n;
    for (int a = 0; a < kNcclAlgos; ++a) {
      const auto algo = static_cast<NcclAlgo>(a);
      if (op == CollectiveOp::broadcast && algo != NcclAlgo::ring) continue;
      if (ag_rs && algo != NcclAlgo::pat && algo != NcclAlgo::ring && algo != NcclAlgo::nvls &&
          algo != NcclAlgo::collnet_direct) {
        continue;
      }
      if (ar && algo == NcclAlgo::pat) continue;
      const NcclGraph& g = in.graph(algo);
      for (int p = 0; p < kNcclProtos; ++p) {
        const auto proto = static_cast<NcclProto>(p);
        const bool simple = proto == NcclProto::simple;
        const bool nvls_like = algo == NcclAlgo::nvls || algo == NcclAlgo::nvls_tree;
        const bool collnet = algo == NcclAlgo::collnet_direct || algo == NcclAlgo::collnet_chain;
        if (nvls_like && !simple) continue;
        if (algo == NcclAlgo::pat && !simple) continue;
        // CollNet needs in-network reduction, which no servesim topology has (derive_nccl_inputs marks it
        // unusable): its bandwidth formulas are not modelled and it stays disabled.
        if (collnet) continue;
        double bw = nodes <= 2 ? g.bw_intra_GBps : g.bw_inter_GBps;
        if (nvls_like) {
          if (g.channels < 2) continue;  // NVLS needs at least 2 channels
          double intra = g.bw_intra_GBps * kNvlsEfficiency[I(arch)] * (g.channels - 1) / g.channels;
          intra *= ar ? 2.0 : (ppn - 1) / ppn;  // AllReduce pipelines the reduce and the multicast
          const double inter = g.bw_inter_GBps * ((nodes <= 2 && algo == NcclAlgo::nvls_tree) ? 2.0 : 1.0);
          bw = std::min(intra, inter);
          if (algo == NcclAlgo::nvls_tree) bw = std::min(bw, per_ch_nvls_tree);
        }
        double bus = g.channels * bw;
        if (algo == NcclAlgo::ring && proto == NcclProto::ll) bus = std::min(ll_max_bw, bus * 0.5);
        if (algo == NcclAlgo::ring && proto == NcclProto::ll128) {
          bus = std::min(bus * 0.92, g.channels * per_ch_ring_ll128);
        }
        if (algo == NcclAlgo::tree && ar) bus = std::min(bus * 0.92, g.channels * per_ch_tree);
        if (algo == NcclAlgo::tree && proto == NcclProto::ll) bus = std::min(bus / 3.8, ll_max_bw);
        if (algo == NcclAlgo::tree && proto == NcclProto::ll128) {
          bus = std::min(bus * (nodes == 1 ? 7.0 / 9.0 : 120.0 / 128.0), g.channels * per_ch_tree_ll128);
        }
        if (algo == NcclAlgo::tree && in.tree_pattern_tree) bus *= 0.85;
        if (algo == NcclAlgo::pat) bus *= 0.75;
        // bus -> algorithm bandwidth
        if (!(algo != NcclAlgo::ring && ag_rs)) {
          bus *= (algo == NcclAlgo::ring || nvls_like) ? static_cast<double>(n) / nsteps : 0.5;
        }
        bw_[I(static_cast<int>(op))][I(a)][I(p)] = bus;

        double lat = kBaseLat[I(a)][I(p)];
        double intra_lat = kHwLat[intra_hw][I(a)][I(p)];
        double inter_lat = (ppn_int == 1 && n == nodes) ? kHwLat[net][I(A(NcclAlgo::tree))][I(p)] : kHwLat[net][I(a)][I(p)];
        inter_lat += g.latency_inter_us;
        if (simple) inter_lat += g.latency_inter_us;  // flush
        if (algo == NcclAlgo::ring) {
          if (op == CollectiveOp::broadcast) {
            double hop = kHwLat[hw][I(a)][I(p)];
            if (g.same_channels) {
              lat += hop;
            } else {
              if (simple) hop = kHwLat[hw][I(A(NcclAlgo::tree))][I(p)];
              lat += nsteps * hop;
            }
          } else {
            double overhead = 0.0;
            if (nodes > 1) overhead = (in.amd_cpu ? 2.0 : 1.0) * (simple ? 3.0 : 1.0);  // getNetOverhead, x3 Simple
            intra_lat = std::max(intra_lat, overhead);
            const int inter_steps = nodes == 1 ? 0 : ar ? 2 * (nodes - 1) : nodes - 1;
            lat += (nsteps - inter_steps) * intra_lat + inter_steps * inter_lat;
          }
        } else if (algo == NcclAlgo::tree) {
          if (ar) lat += 2 * ((ppn_int - 1) * intra_lat + log2i(nodes) * inter_lat);
        } else if (algo == NcclAlgo::nvls) {
          lat = intra_lat + (nodes > 1 ? inter_lat : 0.0);
        } else if (algo == NcclAlgo::nvls_tree) {
          lat += intra_lat + 2 * log2i(nodes) * inter_lat;
        } else if (algo == NcclAlgo::pat) {
          lat += log2i(nodes) * (inter_lat / 3.5) + n * 2.8;
        }
        lat_[I(static_cast<int>(op))][I(a)][I(p)] = lat;
      }
    }
  }

  // Enable / disable (the part of ncclTopoTuneModel after the tables).
  for (int a = 0; a < kNcclAlgos; ++a) {
    const bool unusable = !in.unusable[I(a)].empty() || in.graph(static_cast<NcclAlgo>(a)).channels == 0;
    for (int p = 0; p < kNcclProtos; ++p) {
      const bool ll128_off = p == P(NcclProto::ll128) && (!in.ll128_path_ok || in.compute_capability < 70);
      if (!unusable && !ll128_off) continue;
      for (auto& per_op : bw_) per_op[I(a)][I(p)] = 0.0;
    }
  }
}

double NcclTuning::latency_us(CollectiveOp op, NcclAlgo a, NcclProto p) const {
  return lat_[I(static_cast<int>(op))][I(A(a))][I(P(p))];
}

double NcclTuning::bandwidth_GBps(CollectiveOp op, NcclAlgo a, NcclProto p) const {
  return bw_[I(static_cast<int>(op))][I(A(a))][I(P(p))];
}

std::optional<Seconds> NcclTuning::time(CollectiveOp op, NcclAlgo a, NcclProto p, Bytes size) const {
  if (!models(op)) return std::nullopt;
  double bw = bandwidth_GBps(op, a, p);
  double lat = latency_us(op, a, p);
  if (!(bw > 0.0)) return std::nullopt;
  const auto bytes = static_cast<std::int64_t>(size.value());
  const int log_size = log2i(bytes >> 6);
  const bool ar = op == CollectiveOp::all_reduce;
  if (a == NcclAlgo::tree && ar && log_size >= 0 && log_size < 23) bw *= kTreeCorrection[I(P(p))][I(log_size)];
  if (a == NcclAlgo::nvls_tree && ar && log_size >= 0 && log_size < 24 && in_.compute_capability >= 100) {
    bw *= kTreeCorrection[I(P(p))][I(log_size)];  // Blackwell on x86 (every servesim CPU is x86)
  }
  if (a == NcclAlgo::ring && p == NcclProto::simple && in_.nodes > 1 && ar && in_.comm_channels > 0 &&
      bytes / (static_cast<std::int64_t>(in_.comm_channels) * in_.ranks) >= 64) {
    lat *= in_.compute_capability < 80 ? 1.9 : 1.4;  // plateau effect of ring
  }
  // us + bytes / (1000 * GB/s) us
  return Seconds{(lat + size.value() / (1000.0 * bw)) * 1e-6};
}

std::optional<NcclTuning::Choice> NcclTuning::best(CollectiveOp op, Bytes size, unsigned algo_mask,
                                                   unsigned proto_mask) const {
  std::optional<Choice> pick;
  for (int a = 0; a < kNcclAlgos; ++a) {
    if ((algo_mask & (1U << a)) == 0) continue;
    for (int p = 0; p < kNcclProtos; ++p) {
      if ((proto_mask & (1U << p)) == 0) continue;
      const auto t = time(op, static_cast<NcclAlgo>(a), static_cast<NcclProto>(p), size);
      if (!t) continue;
      if (!pick || t->value() < pick->time.value()) pick = Choice{static_cast<NcclAlgo>(a), static_cast<NcclProto>(p), *t};
    }
  }
  return pick;
}

}  // namespace servesim
