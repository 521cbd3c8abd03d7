// The KV-cache transports by name: one line each. Cost model: models/net/transport.h.
#include <algorithm>

#include "models/net/transport.h"

namespace servesim {

const TransportRegistry& transport_registry() {
  static const TransportRegistry registry = [] {
    TransportRegistry r("transport");
    r.add("nvlink", [] { return make_nvlink_transport(); });
    r.add("pcie_p2p", [] { return make_pcie_p2p_transport(); });
    r.add("gpudirect_rdma", [] { return make_gpudirect_rdma_transport(); });
    r.add("gpu_initiated_rdma", [] { return make_gpu_initiated_rdma_transport(); });
    r.add("host_staged_rdma", [] { return make_host_staged_rdma_transport(); });
    r.add("tcp", [] { return make_tcp_transport(); });
    return r;
  }();
  return registry;
}

std::vector<std::string> transport_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::pair<int, std::string>> order;
    std::string list = transport_registry().names();
    std::size_t pos = 0;
    while (pos <= list.size()) {
      const auto comma = list.find(", ", pos);
      const std::string name = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      order.emplace_back(transport_registry().create(name, "transport")->ucx_order(), name);
      if (comma == std::string::npos) break;
      pos = comma + 2;
    }
    std::sort(order.begin(), order.end());
    std::vector<std::string> out;
    for (auto& [rank, name] : order) out.push_back(name);
    return out;
  }();
  return names;
}

std::string transport_names_text() {
  std::string out;
  for (const auto& n : transport_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace servesim
