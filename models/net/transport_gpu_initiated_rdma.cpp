// gpu_initiated_rdma: GPU-initiated RDMA (NVSHMEM IBGDA, DOCA GPUNetIO, UCX's device API): the GPU writes the work
// requests and rings the NIC's doorbell itself, with no CPU proxy per message. Same path as GPUDirect RDMA and the
// same wire rate; each message costs kCpuPostOverhead / kGpuInitiatedGain = 3.11 us / 9.5 = 0.33 us (IBGDA reaches
// up to 9.5x a CPU proxy's message throughput for small messages: NVIDIA's IBGDA blog, models/net/transport.h).
// A plain NIXL/UCX stack does not pick it by itself (the application must issue transfers from device code):
// select_transport() uses it only when forced.
#include "models/net/transport.h"

namespace servesim {
namespace {

class GpuInitiatedRdmaTransport final : public Transport {
 public:
  std::string name() const override { return "gpu_initiated_rdma"; }
  std::string description() const override { return "GPU-initiated RDMA (IBGDA / GPUNetIO, no CPU proxy)"; }
  int ucx_order() const override { return 3; }
  bool auto_selectable() const override { return false; }

  TransportCosts default_costs() const override {
    return {Seconds{transport_defaults::kRdmaSetupSeconds},
            Seconds{transport_defaults::kCpuPostOverheadSeconds / transport_defaults::kGpuInitiatedGain},
            Bytes{transport_defaults::kRdmaMaxMessageBytes}};
  }

  TransportSupport plan(const Topology& topo, int src, int dst) const override {
    return plan_network_path(topo, src, dst, /*host_staged=*/false, /*allow_same_node=*/false, name(),
                             default_costs());
  }
};

}  // namespace

std::unique_ptr<Transport> make_gpu_initiated_rdma_transport() {
  return std::make_unique<GpuInitiatedRdmaTransport>();
}

}  // namespace servesim
