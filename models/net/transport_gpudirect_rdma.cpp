// gpudirect_rdma: the NIC reads and writes GPU memory directly (GPUDirect RDMA over InfiniBand / RoCE, UCX's rc
// transport with a CPU posting each message): GPU -> PCIe switch -> NIC -> network -> NIC -> PCIe switch -> GPU,
// no CPU on the data path. Constants (models/net/transport.h): kRdmaWireEfficiency 0.96 on network links (46-48
// of 50 GB/s per 400 Gb/s NIC), kPcieDmaEfficiency on PCIe links, kRdmaSetup 5.28 us + kCpuPostOverhead 3.11 us
// per message (together the 8.39 us intercept of the nixlbench sweep between two DGX H100), messages of up to
// 1 GiB (ConnectX max_msg_sz).
#include "models/net/transport.h"

namespace servesim {
namespace {

class GpudirectRdmaTransport final : public Transport {
 public:
  std::string name() const override { return "gpudirect_rdma"; }
  std::string description() const override { return "GPUDirect RDMA, CPU-posted (NIC <-> GPU memory)"; }
  int ucx_order() const override { return 2; }

  TransportCosts default_costs() const override {
    return {Seconds{transport_defaults::kRdmaSetupSeconds}, Seconds{transport_defaults::kCpuPostOverheadSeconds},
            Bytes{transport_defaults::kRdmaMaxMessageBytes}};
  }

  TransportSupport plan(const Topology& topo, int src, int dst) const override {
    return plan_network_path(topo, src, dst, /*host_staged=*/false, /*allow_same_node=*/false, name(),
                             default_costs());
  }
};

}  // namespace

std::unique_ptr<Transport> make_gpudirect_rdma_transport() { return std::make_unique<GpudirectRdmaTransport>(); }

}  // namespace servesim
