// nvlink: CUDA IPC peer-to-peer copies over NVLink inside one node (UCX's cuda_ipc transport; the route through
// the NVSwitch, or a direct GPU-GPU NVLink). Constants (models/net/transport.h): the copy engine's
// kNvlinkCopyEfficiency 0.844 on NVLink links (380 of 450 GB/s on HGX H100), kCudaIpcSetup 1 us (UCX's estimate),
// kCpuPostOverhead 3.11 us per message (nixlbench over NVLink, ai-dynamo/nixl PR #115), messages of up to 1 GiB.
#include <fmt/format.h>

#include "models/net/transport.h"

namespace servesim {
namespace {

class NvlinkTransport final : public Transport {
 public:
  std::string name() const override { return "nvlink"; }
  std::string description() const override { return "CUDA IPC over NVLink (same node)"; }
  int ucx_order() const override { return 0; }

  TransportCosts default_costs() const override {
    return {Seconds{transport_defaults::kCudaIpcSetupSeconds}, Seconds{transport_defaults::kCpuPostOverheadSeconds},
            Bytes{transport_defaults::kRdmaMaxMessageBytes}};
  }

  TransportSupport plan(const Topology& topo, int src, int dst) const override {
    topo.check_gpu_index(src);
    topo.check_gpu_index(dst);
    if (topo.node_of_gpu(src) != topo.node_of_gpu(dst)) {
      return {std::nullopt, fmt::format("{} and {} are on different nodes (NVLink joins GPUs of one node)",
                                        gpu_label(topo, src), gpu_label(topo, dst))};
    }
    auto route = std::move(topo.routes_to(topo.gpu_vertex(src), {topo.gpu_vertex(dst)}).front());
    if (!route) return {std::nullopt, "no route between the GPUs"};
    for (const int id : route->links) {
      const LinkClass c = classify_link(topo, id);
      if (c != LinkClass::nvlink) {
        const TopoLink& l = topo.link(id);
        return {std::nullopt, fmt::format("the route crosses {} link {} -> {}, not NVLink", to_string(c),
                                          topo.vertex(l.from).name, topo.vertex(l.to).name)};
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

std::unique_ptr<Transport> make_nvlink_transport() { return std::make_unique<NvlinkTransport>(); }

}  // namespace servesim
