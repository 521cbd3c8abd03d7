// GPU hardware specification (datasheet peaks and achieved-efficiency defaults), read from the TOML catalog
// scenarios/hardware/gpus.toml, one table per GPU name.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "models/common/config.h"
#include "models/common/units.h"

namespace servesim {

struct GpuSpec {
  std::string name;         // catalog key, e.g. "h100-sxm"
  std::string device_name;  // the name the driver reports (nvidia-smi, torch.cuda.get_device_name), "" = unknown
  FlopsPerSec bf16_peak{0.0};
  FlopsPerSec fp8_peak{0.0};
  Bytes memory{0.0};
  BytesPerSec memory_bandwidth{0.0};
  double gemm_efficiency = 0.8;
  double memory_efficiency = 0.9;
  Seconds kernel_launch{2e-6};
  BytesPerSec nvlink_bandwidth{0.0};
  BytesPerSec pcie_bandwidth{0.0};
  // On-demand price of one GPU-hour in US dollars (catalog key price_per_gpu_hour_usd, > 0); unset = unpriced.
  // Read by the capacity planner (servesim plan, sim/plan/) only.
  std::optional<double> price_per_gpu_hour_usd;

  [[nodiscard]] FlopsPerSec achieved_flops() const { return bf16_peak * gemm_efficiency; }
  [[nodiscard]] bool has_fp8() const { return fp8_peak.v > 0; }
  [[nodiscard]] FlopsPerSec achieved_fp8_flops() const { return fp8_peak * gemm_efficiency; }
  [[nodiscard]] BytesPerSec achieved_bandwidth() const { return memory_bandwidth * memory_efficiency; }
};

// Reads one GPU table of the catalog. `catalog` is the whole catalog document; `key_where` names the scenario
// key that asked for it (for the error when the name is unknown).
[[nodiscard]] GpuSpec load_gpu(const Config& catalog, const std::string& name, const std::string& key_where);

// GPU names compared across spellings: lower case, a leading "nvidia" dropped, and every run of spaces, '-' and
// '_' made one space ("NVIDIA H100 PCIe" -> "h100 pcie", "h100-pcie" -> "h100 pcie", "NVIDIA H200" -> "h200").
[[nodiscard]] std::string normalise_gpu_name(const std::string& name);

// Whether `device_name` -- the GPU a measurement names, as profile.json's "gpu" records nvidia-smi's name --
// is this catalog GPU: its normalised name equals the normalised catalog key (a profile may name the key itself,
// "h200") or the normalised `device_name` the catalog entry lists ("NVIDIA H100 80GB HBM3" for h100-sxm, whose
// key differs from what the driver reports). Nothing fuzzier: "NVIDIA H200 NVL" is not h200.
[[nodiscard]] bool gpu_matches_device(const GpuSpec& gpu, const std::string& device_name);

// The catalog key of the GPU that `device_name` names (gpu_matches_device), or "" when no entry matches.
[[nodiscard]] std::string catalog_gpu_for_device(const Config& catalog, const std::string& device_name);

}  // namespace servesim
