// GPU hardware specification (datasheet peaks and achieved-efficiency defaults), read from the TOML catalog
// scenarios/hardware/gpus.toml, one table per GPU name.
#pragma once
#include <string>
#include <vector>

#include "models/common/config.h"
#include "models/common/units.h"

namespace servesim {

struct GpuSpec {
  std::string name;
  FlopsPerSec bf16_peak{0.0};
  FlopsPerSec fp8_peak{0.0};
  Bytes memory{0.0};
  BytesPerSec memory_bandwidth{0.0};
  double gemm_efficiency = 0.8;
  double memory_efficiency = 0.9;
  Seconds kernel_launch{2e-6};
  BytesPerSec nvlink_bandwidth{0.0};
  BytesPerSec pcie_bandwidth{0.0};

  [[nodiscard]] FlopsPerSec achieved_flops() const { return bf16_peak * gemm_efficiency; }
  [[nodiscard]] bool has_fp8() const { return fp8_peak.v > 0; }
  [[nodiscard]] FlopsPerSec achieved_fp8_flops() const { return fp8_peak * gemm_efficiency; }
  [[nodiscard]] BytesPerSec achieved_bandwidth() const { return memory_bandwidth * memory_efficiency; }
};

// Reads one GPU table of the catalog. `catalog` is the whole catalog document; `key_where` names the scenario
// key that asked for it (for the error when the name is unknown).
[[nodiscard]] GpuSpec load_gpu(const Config& catalog, const std::string& name, const std::string& key_where);

}  // namespace servesim
