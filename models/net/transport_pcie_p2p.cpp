// pcie_p2p: CUDA IPC peer-to-peer copies over PCIe inside one node (UCX's cuda_ipc transport on GPUs without
// NVLink, e.g. 8 x L40S). CUDA does not support peer access across CPU sockets (UPI / Infinity Fabric), so a
// route crossing a socket link cannot carry it (the host-staged transport does). Constants
// (models/net/transport.h): kPcieDmaEfficiency 0.873 on PCIe links (55 of 63 GB/s, Gen5 x16), kCudaIpcSetup
// 1 us, kCpuPostOverhead 3.11 us per message, messages of up to 1 GiB.
#include <fmt/format.h>

#include "models/net/transport.h"

namespace servesim {
namespace {

class PcieP2pTransport final : public Transport {
 public:
  std::string name() const override { return "pcie_p2p"; }
  std::string description() const override { return "CUDA IPC over PCIe peer-to-peer (same node, no NVLink)"; }
  int ucx_order() const override { return 1; }

  TransportCosts default_costs() const override {
    return {Seconds{transport_defaults::kCudaIpcSetupSeconds}, Seconds{transport_defaults::kCpuPostOverheadSeconds},
            Bytes{transport_defaults::kRdmaMaxMessageBytes}};
  }

  TransportSupport plan(const Topology& topo, int src, int dst) const override {
    topo.check_gpu_index(src);
    topo.check_gpu_index(dst);
    if (topo.node_of_gpu(src) != topo.node_of_gpu(dst)) {
      return {std::nullopt, fmt::format("{} and {} are on different nodes (PCIe peer-to-peer is inside one node)",
                                        gpu_label(topo, src), gpu_label(topo, dst))};
    }
    auto route = std::move(topo.routes_to(topo.gpu_vertex(src), {topo.gpu_vertex(dst)}).front());
    if (!route) return {std::nullopt, "no route between the GPUs"};
    for (const int id : route->links) {
      const LinkClass c = classify_link(topo, id);
      const TopoLink& l = topo.link(id);
      if (c == LinkClass::nvlink) {
        return {std::nullopt, fmt::format("the GPUs are joined by NVLink ({} -> {}): nvlink carries it",
                                          topo.vertex(l.from).name, topo.vertex(l.to).name)};
      }
      if (c != LinkClass::pcie) {
        return {std::nullopt, fmt::format("the route crosses {} link {} -> {} (CUDA peer access stays under one "
                                          "CPU socket's PCIe tree)",
                                          to_string(c), topo.vertex(l.from).name, topo.vertex(l.to).name)};
      }
    }
    TransportPath p;
    p.transport = name();
    p.src_gpu = src;
    p.dst_gpu = dst;
    p.links = std::move(route->links);
    set_costs(default_costs(), p);
    set_rate_from_links(topo, LinkEfficiency{}, p);
    return {std::move(p), ""};
  }
};

}  // namespace

std::unique_ptr<Transport> make_pcie_p2p_transport() { return std::make_unique<PcieP2pTransport>(); }

}  // namespace servesim
