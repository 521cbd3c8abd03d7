// tcp: through the hosts' TCP/IP stacks (UCX's tcp transport, Mooncake's TCP transport): GPU memory is staged
// through host memory as in host_staged_rdma (fragments of 512 KiB, 9.55 us each), then sent over a socket. On
// top of staging: the stack's rate, kTcpStackRate 9.06 GB/s per connection (Mooncake: RDMA is 2.4x TCP over
// 4 x 200 Gb/s), kTcpSendOverhead 5.2 us per message (UCX's TCP latency estimate), and a request / reply round trip
// (2 x 5.2 us) before the data (models/net/transport.h). Between nodes only.
#include <fmt/format.h>

#include "models/net/transport.h"

namespace servesim {
namespace {

class TcpTransport final : public Transport {
 public:
  std::string name() const override { return "tcp"; }
  std::string description() const override { return "TCP sockets through the host network stack"; }
  int ucx_order() const override { return 5; }

  TransportCosts default_costs() const override {
    return {Seconds{transport_defaults::kRdmaSetupSeconds + 2.0 * transport_defaults::kTcpSendOverheadSeconds},
            Seconds{transport_defaults::kStagingOverheadSeconds + transport_defaults::kTcpSendOverheadSeconds},
            Bytes{transport_defaults::kStagingFragmentBytes}};
  }

  TransportSupport plan(const Topology& topo, int src, int dst) const override {
    TransportSupport s =
        plan_network_path(topo, src, dst, /*host_staged=*/true, /*allow_same_node=*/false, name(), default_costs());
    if (s.path && transport_defaults::kTcpStackRate < s.path->rate.value()) {
      s.path->rate = BytesPerSec{transport_defaults::kTcpStackRate};
      s.path->limit = fmt::format("TCP stack ({:.3g} GB/s per connection)", transport_defaults::kTcpStackRate / 1e9);
    }
    return s;
  }
};

}  // namespace

std::unique_ptr<Transport> make_tcp_transport() { return std::make_unique<TcpTransport>(); }

}  // namespace servesim
