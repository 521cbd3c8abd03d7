// host_staged_rdma: without GPUDirect, UCX's rendezvous pipeline stages GPU memory through host memory: GPU ->
// host over PCIe (cuda_copy), RDMA host -> host, host -> GPU, in fragments of kStagingFragment (512 KiB,
// UCX_RNDV_FRAG_SIZE) that overlap each other. Inside one node the host-to-host step is shared memory (GPU ->
// host -> GPU). Costs (models/net/transport.h): kRdmaSetup 5.28 us, kStagingOverhead 9.55 us per fragment (the
// copies' launch and synchronisation: openucx/ucx issue #6206), the pipeline fill (the first fragment's copy to
// the host and the last one's copy back, at the GPU <-> CPU PCIe rate), the RDMA wire and PCIe efficiencies.
#include "models/net/transport.h"

namespace servesim {
namespace {

class HostStagedRdmaTransport final : public Transport {
 public:
  std::string name() const override { return "host_staged_rdma"; }
  std::string description() const override { return "RDMA staged through host memory (UCX rendezvous pipeline)"; }
  int ucx_order() const override { return 4; }

  TransportCosts default_costs() const override {
    return {Seconds{transport_defaults::kRdmaSetupSeconds}, Seconds{transport_defaults::kStagingOverheadSeconds},
            Bytes{transport_defaults::kStagingFragmentBytes}};
  }

  TransportSupport plan(const Topology& topo, int src, int dst) const override {
    return plan_network_path(topo, src, dst, /*host_staged=*/true, /*allow_same_node=*/true, name(),
                             default_costs());
  }
};

}  // namespace

std::unique_ptr<Transport> make_host_staged_rdma_transport() { return std::make_unique<HostStagedRdmaTransport>(); }

}  // namespace servesim
