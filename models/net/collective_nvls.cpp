// NVLink SHARP (NVLS) collectives through one NVSwitch, formulas in models/net/collective.h.
#include <algorithm>
#include <limits>

#include "models/net/collective_algorithms.h"
#include "models/net/group_paths.h"

namespace servesim {
namespace {

class NvlsCollective final : public CollectiveAlgorithm {
 public:
  [[nodiscard]] std::string unusable_reason(const GroupPaths& g) const override {
    if (g.topology().common_nvswitch(g.gpus())) return {};
    return "GPUs " + g.describe() + " do not all link directly to one NVLS-capable NVSwitch";
  }

  [[nodiscard]] std::optional<CollectivePlan> plan(CollectiveOp op, const GroupPaths& g) const override {
    if (op != CollectiveOp::all_reduce && op != CollectiveOp::all_gather && op != CollectiveOp::reduce_scatter) {
      return std::nullopt;
    }
    const Topology& topo = g.topology();
    const auto sw = topo.common_nvswitch(g.gpus());
    if (!sw) return std::nullopt;
    double bw = std::numeric_limits<double>::infinity();
    double latency = 0.0;
    for (int gpu : g.gpus()) {
      const int v = topo.gpu_vertex(gpu);
      const auto& up = topo.link(*topo.find_link(v, *sw));
      const auto& down = topo.link(*topo.find_link(*sw, v));
      bw = std::min({bw, up.bandwidth.value(), down.bandwidth.value()});
      latency = std::max(latency, up.latency.value() + down.latency.value());
    }
    const double eta = topo.vertex(*sw).nvls_efficiency;
    const double n = static_cast<double>(g.size());
    CollectivePhase ph;
    ph.alpha = Seconds{latency + topo.step_latency().value()};
    if (op == CollectiveOp::all_reduce) {
      ph.seconds_per_byte = 1.0 / (eta * bw);
      ph.steps = 2;
    } else {
      ph.seconds_per_byte = (n - 1.0) / n / (eta * bw);
      ph.steps = 1;
    }
    CollectivePlan p;
    p.add(ph);
    return p;
  }
};

}  // namespace

std::unique_ptr<CollectiveAlgorithm> make_nvls_collective() { return std::make_unique<NvlsCollective>(); }

}  // namespace servesim
