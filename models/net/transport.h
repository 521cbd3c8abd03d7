// Point-to-point KV-cache transports between two GPUs, as NIXL drives them over UCX-style transports (not a
// collective): CUDA IPC over NVLink or PCIe inside a node, GPUDirect RDMA, host-staged RDMA, TCP and
// GPU-initiated RDMA between nodes. Each transport, given a topology and a (source GPU, destination GPU) pair,
// says whether it can carry the pair and, when it can, its TransportPath: the directed links it crosses and its
// cost terms. Implementations are registered by name in transport_registry() (transport_registry.cpp, one line
// each); select_transport() picks one.
//
// Time of B bytes alone (TransportPath::time_alone):
//     T(B) = setup + fill(B) + messages(B) x per_message + B / rate,   messages(B) = ceil(B / message_size) (>= 1)
//   setup        once per transfer: rendezvous / descriptor preparation / notification (connections and memory
//                registrations are made once, before the first transfer, as NIXL does);
//   fill(B)      host-staged pipelines only: the first fragment's GPU -> host copy and the last fragment's host ->
//                GPU copy, which do not overlap the network: staging_copies x min(B, message_size) / staging_rate;
//   per_message  software cost per message (descriptor post, staging synchronisation, socket send);
//   rate         the data rate the transport reaches alone: the smallest, over the links it crosses, of the
//                link's raw bandwidth x the transport's efficiency on that class of link (and any rate cap of the
//                transport itself, e.g. TCP's stack).
// Small transfers are latency-bound (setup + per_message), large ones bandwidth-bound (B / rate). Under
// contention a flow network gives the data phase less than `rate`: flow_demand() is what to hand it (the links,
// and effective_rate(B) as the flow's cap, starting after setup + fill), so that alone it reproduces T(B)
// exactly.
//
// Link classes (classify_link): a link touching a net_switch, or joining two NICs, is `network`; one touching an
// nvswitch, or joining two GPUs, is `nvlink`; cpu <-> cpu is `socket` (UPI / Infinity Fabric); any other link
// (PCIe switch, GPU / NIC / CPU to PCIe or CPU) is `pcie`. The topology's own `efficiency` (NCCL's) is not used:
// each transport has its own efficiencies (below).
//
// Default constants (every transport's file says which it uses):
//   kNvlinkCopyEfficiency 0.844   CUDA IPC copy-engine peer copy: 380 of 450 GB/s unidirectional on HGX H100
//                                 (p2pBandwidthLatencyTest, NVIDIA/nccl issue #1264; stas00 measured 376).
//   kPcieDmaEfficiency    0.873   DMA over PCIe: 55 of 63 GB/s, PCIe Gen5 x16 host <-> device from pinned memory
//                                 (calibrate/data/published.md).
//   kRdmaWireEfficiency   0.96    RDMA over one 400 Gb/s NIC: 48 of 50 GB/s. NCCL achieves 46-48 GB/s per
//                                 ConnectX-7 (nccl-tests issue #290, calibrate/data/published.md); nixlbench
//                                 (NIXL, UCX backend) between two DGX H100 reaches 47.8 GB/s at 32 MiB (NVIDIA/cloudai
//                                 PR #550 sweep, calibrate/data/transport/nixlbench-dgx-h100-gdr.csv).
//   kSocketEfficiency     1.0     no published achieved figure; never the narrowest link of the catalogue.
//   kCpuPostOverhead      3.11 us CPU-driven NIXL/UCX cost per posted descriptor: nixlbench, batches of 64 blocks
//                                 of 4 KiB-256 KiB, 3.10-3.12 us per block (ai-dynamo/nixl PR #115, DGX H100).
//   kRdmaTransferFixed    8.39 us setup + one message of a CPU-driven RDMA transfer: the intercept of the PR #550
//                                 sweep (1-32 MiB, batch 1) fitted with the rate held at 0.96 x 50 GB/s (largest
//                                 error 0.8 %); kRdmaSetup = 8.39 - 3.11 = 5.28 us.
//   kRdmaMaxMessage       1 GiB   largest RDMA message (ConnectX max_msg_sz 2^30, UCX's rc max zcopy).
//   kCudaIpcSetup         1 us    UCX's cuda_ipc latency estimate (uct/cuda/cuda_ipc/cuda_ipc_iface.c).
//   kStagingFragment      512 KiB UCX_RNDV_FRAG_SIZE host default: the host-staged pipeline's fragment
//                                 (ucp/core/ucp_context.c).
//   kStagingOverhead      9.55 us per fragment: DGX-A100 host-staged pipeline reached 16.7 GB/s where its stages
//                                 allow 24 GB/s (openucx/ucx issue #6206): 512 KiB / 16.7 GB/s - 512 KiB / 24 GB/s.
//   kTcpStackRate         9.06 GB/s one TCP pair's rate: Mooncake Transfer Engine's RDMA reaches 87 GB/s over
//                                 4 x 200 Gb/s, 2.4x TCP (kvcache-ai/Mooncake README): 87 / 2.4 / 4 NICs.
//   kTcpSendOverhead      5.2 us  UCX's per-message TCP latency estimate (uct/tcp/tcp_net.c uct_tcp_netif_caps).
//   kGpuInitiatedGain     9.5     GPU-initiated puts (NVSHMEM IBGDA) reach up to 9.5x the message throughput of a
//                                 CPU proxy for small messages (NVIDIA technical blog "Improving Network
//                                 Performance of HPC Systems Using NVIDIA Magnum IO NVSHMEM and GPUDirect Async").
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/common/registry.h"
#include "models/common/units.h"
#include "models/net/flow_rates.h"
#include "models/net/topology.h"

namespace servesim {

namespace transport_defaults {
inline constexpr double kNvlinkCopyEfficiency = 380.0 / 450.0;
inline constexpr double kPcieDmaEfficiency = 55.0 / 63.0;
inline constexpr double kRdmaWireEfficiency = 0.96;
inline constexpr double kSocketEfficiency = 1.0;
inline constexpr double kCpuPostOverheadSeconds = 3.11e-6;
inline constexpr double kRdmaTransferFixedSeconds = 8.39e-6;
inline constexpr double kRdmaSetupSeconds = kRdmaTransferFixedSeconds - kCpuPostOverheadSeconds;
inline constexpr double kRdmaMaxMessageBytes = 1024.0 * 1024.0 * 1024.0;
inline constexpr double kCudaIpcSetupSeconds = 1e-6;
inline constexpr double kStagingFragmentBytes = 512.0 * 1024.0;
inline constexpr double kStagingOverheadSeconds = 9.55e-6;
inline constexpr double kTcpStackRate = 87e9 / 2.4 / 4.0;
inline constexpr double kTcpSendOverheadSeconds = 5.2e-6;
inline constexpr double kGpuInitiatedGain = 9.5;
}  // namespace transport_defaults

enum class LinkClass { nvlink, pcie, network, socket };
[[nodiscard]] std::string_view to_string(LinkClass c);
[[nodiscard]] LinkClass classify_link(const Topology& topo, int link_id);

// Efficiency of a transport's data path on each link class (fraction of the raw bandwidth reached).
struct LinkEfficiency {
  double nvlink = transport_defaults::kNvlinkCopyEfficiency;
  double pcie = transport_defaults::kPcieDmaEfficiency;
  double network = transport_defaults::kRdmaWireEfficiency;
  double socket = transport_defaults::kSocketEfficiency;
  [[nodiscard]] double of(LinkClass c) const;
};

// One transport's way from a source GPU to a destination GPU, and its cost terms (formula at the top).
struct TransportPath {
  std::string transport;      // registry key
  int src_gpu = 0;
  int dst_gpu = 0;
  std::vector<int> links;     // directed link ids, source to destination
  Seconds setup{0};
  Seconds per_message{0};
  Bytes message_size{transport_defaults::kRdmaMaxMessageBytes};
  BytesPerSec rate{0};        // alone, data phase
  std::string limit;          // what sets `rate`: "link n0.nic0 -> leaf0 (50 GB/s x 0.96)" or a transport cap
  int staging_copies = 0;     // host-staged pipelines: 2 (GPU -> host before, host -> GPU after the network)
  BytesPerSec staging_rate{0};  // the copies' rate (GPU <-> host PCIe path)
  bool calibrated = false;    // cost terms from a transport profile (TransportCalibration)

  // ceil(bytes / message_size), at least 1 (a transfer of 0 bytes still sends one message).
  [[nodiscard]] std::int64_t messages(Bytes bytes) const;
  [[nodiscard]] Seconds fill(Bytes bytes) const;
  // setup + fill(bytes): when the data phase starts.
  [[nodiscard]] Seconds start_delay(Bytes bytes) const { return setup + fill(bytes); }
  [[nodiscard]] Seconds time_alone(Bytes bytes) const;
  // bytes / (messages x per_message + bytes / rate): the data phase's rate alone, per-message costs included; the
  // cap to give a flow network (rate itself for 0 bytes).
  [[nodiscard]] BytesPerSec effective_rate(Bytes bytes) const;
  // The flow for a max-min network: these links (a link the path crosses twice listed once), capped at
  // effective_rate(bytes).
  [[nodiscard]] FlowDemand flow_demand(Bytes bytes) const;
  // Vertex names along the path: "n0.gpu0 -> n0.pcie0 -> ... -> n1.gpu0".
  [[nodiscard]] std::string route_text(const Topology& topo) const;
};

// What each directed link carries in all, whatever the transports sharing it: its raw bandwidth x the default
// efficiency of its class (LinkEfficiency{}: a NIC's 50 GB/s carries 48 GB/s of RDMA, one flow or many), result[l]
// for link l: the capacities of the flow-level network that KV transfers share (servesim transfer, disaggregated
// runs). A transport alone then reaches exactly its own rate on an uncontended route.
[[nodiscard]] std::vector<BytesPerSec> transfer_link_capacities(const Topology& topo);

// Whether a transport can carry a pair: the path, or the one-line reason it cannot.
struct TransportSupport {
  std::optional<TransportPath> path;
  std::string reason;
};

// A transport's software costs, the same on every route: what a transport profile's fit starts from.
struct TransportCosts {
  Seconds setup{0};
  Seconds per_message{0};
  Bytes message_size{transport_defaults::kRdmaMaxMessageBytes};
};

class Transport {
 public:
  virtual ~Transport() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  [[nodiscard]] virtual std::string description() const = 0;
  // Position in UCX's preference order (lower first: cuda_ipc, then rc with GPUDirect, then the host-staged
  // pipeline, then tcp): ties in time and fallbacks follow it.
  [[nodiscard]] virtual int ucx_order() const = 0;
  // Whether a plain NIXL/UCX stack picks this transport by itself (GPU-initiated RDMA needs a device-side API:
  // only when forced).
  [[nodiscard]] virtual bool auto_selectable() const { return true; }
  [[nodiscard]] virtual TransportCosts default_costs() const = 0;
  // GPU indices; throws InputError for an index out of range (naming the GPU declaration).
  [[nodiscard]] virtual TransportSupport plan(const Topology& topo, int src_gpu, int dst_gpu) const = 0;
};

using TransportRegistry = Registry<Transport>;
[[nodiscard]] const TransportRegistry& transport_registry();
// Registry keys in UCX's preference order: "nvlink, pcie_p2p, gpudirect_rdma, gpu_initiated_rdma,
// host_staged_rdma, tcp".
[[nodiscard]] std::vector<std::string> transport_names();
[[nodiscard]] std::string transport_names_text();

class TransportCalibration;  // models/net/transport_calibration.h

struct TransportCandidate {
  TransportPath path;
  Seconds time{0};  // time alone for the bytes asked
};

struct TransportChoice {
  TransportPath path;                           // the transport chosen
  Seconds time{0};                              // its time alone
  std::vector<TransportCandidate> others;       // every other transport that can carry the pair, fastest first
  std::vector<std::pair<std::string, std::string>> unsupported;  // (transport, reason), in UCX order
};

// Picks the transport for `bytes` from GPU src to GPU dst. Without `forced`: the fastest (time alone) among the
// auto-selectable transports that can carry the pair; ties go to the earlier in UCX's order. With `forced`: that
// transport, or InputError "<where> 'X': ... (valid: ...)" for an unknown name and "<where> X: cannot carry GPU a
// -> GPU b on <topology>: <reason>" when it cannot carry the pair. `message_size` overrides every transport's
// message size (e.g. the size of a KV block's descriptor). `cal` replaces the cost terms of calibrated transports.
// Throws InputError when no transport can carry the pair (listing each transport's reason).
[[nodiscard]] TransportChoice select_transport(const Topology& topo, int src_gpu, int dst_gpu, Bytes bytes,
                                               const std::optional<std::string>& forced = std::nullopt,
                                               const TransportCalibration* cal = nullptr,
                                               std::optional<Bytes> message_size = std::nullopt,
                                               const std::string& where = "transport");

// ---- Building blocks shared by the transports (transport_paths.cpp) ----

// The smallest of raw bandwidth x efficiency over path.links and of line rate x the network efficiency over the
// NIC vertices the path crosses: sets path.rate and path.limit ("link a -> b (50 GB/s x 0.96)"). Links must be
// non-empty.
void set_rate_from_links(const Topology& topo, const LinkEfficiency& eff, TransportPath& path);
// The NIC of a GPU: the NIC vertex of its node nearest to it (smallest route latency, then hop count, then id) -
// the GPU-NIC affinity NCCL and NIXL use; nullopt when the node has none.
[[nodiscard]] std::optional<int> nic_of_gpu(const Topology& topo, int gpu);
// The CPU vertex of the GPU's node nearest to it (same order); nullopt when the node has none.
[[nodiscard]] std::optional<int> cpu_of_gpu(const Topology& topo, int gpu);
// Concatenation of routes through `vertices` (at least two); nullopt when a leg has no route.
[[nodiscard]] std::optional<std::vector<int>> route_through(const Topology& topo, const std::vector<int>& vertices);
// Whether any vertex strictly inside the path is of `kind`.
[[nodiscard]] bool path_crosses(const Topology& topo, const std::vector<int>& links, VertexKind kind);
// "GPU 3 (n0.gpu3)"
[[nodiscard]] std::string gpu_label(const Topology& topo, int gpu);

// The route and rate of a network transport from GPU src to GPU dst (software costs left at zero for the caller):
//   direct (host_staged = false): GPU -> its NIC -> network -> the destination GPU's NIC -> GPU, each GPU-NIC leg
//     inside one PCIe tree (no CPU vertex on it: GPUDirect RDMA, as NCCL's default NCCL_NET_GDR_LEVEL allows);
//   host_staged: GPU -> its CPU (host memory) -> its NIC -> network -> NIC -> CPU -> GPU, staging_copies = 2 and
//     staging_rate = the slower of the two GPU <-> CPU legs (at the pcie efficiency); with allow_same_node, a pair
//     inside one node goes GPU -> CPU (-> the other GPU's CPU) -> GPU without a NIC.
// Pairs on one node are refused unless host_staged and allow_same_node; so are nodes without a NIC. The path's
// software costs are `costs`.
[[nodiscard]] TransportSupport plan_network_path(const Topology& topo, int src_gpu, int dst_gpu, bool host_staged,
                                                 bool allow_same_node, const std::string& transport,
                                                 const TransportCosts& costs, const LinkEfficiency& eff = {});
// Sets a path's software costs.
void set_costs(const TransportCosts& costs, TransportPath& path);

// Factories, one file each.
[[nodiscard]] std::unique_ptr<Transport> make_nvlink_transport();
[[nodiscard]] std::unique_ptr<Transport> make_pcie_p2p_transport();
[[nodiscard]] std::unique_ptr<Transport> make_gpudirect_rdma_transport();
[[nodiscard]] std::unique_ptr<Transport> make_gpu_initiated_rdma_transport();
[[nodiscard]] std::unique_ptr<Transport> make_host_staged_rdma_transport();
[[nodiscard]] std::unique_ptr<Transport> make_tcp_transport();

}  // namespace servesim
