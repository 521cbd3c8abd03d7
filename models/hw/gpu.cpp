#include "models/hw/gpu.h"

#include <cctype>

#include "models/common/error.h"

namespace servesim {

GpuSpec load_gpu(const Config& catalog, const std::string& name, const std::string& key_where) {
  const auto names = catalog.keys();
  bool found = false;
  std::string valid;
  for (const auto& n : names) {
    found = found || n == name;
    valid += (valid.empty() ? "" : ", ") + n;
  }
  if (!found) throw InputError(key_where + ": unknown gpu '" + name + "' (valid: " + valid + ")");
  const Config t = catalog.table(name);
  GpuSpec g;
  g.name = name;
  g.device_name = t.str_or("device_name", "");
  g.bf16_peak = FlopsPerSec{t.positive("bf16_tflops") * 1e12};
  g.fp8_peak = FlopsPerSec{t.non_negative_or("fp8_tflops", 0.0) * 1e12};
  g.memory = t.bytes("memory");
  g.memory_bandwidth = t.bandwidth("memory_bandwidth");
  g.gemm_efficiency = t.positive("gemm_efficiency");
  g.memory_efficiency = t.positive("memory_efficiency");
  g.kernel_launch = t.duration_or("kernel_launch", g.kernel_launch);
  g.nvlink_bandwidth = t.bandwidth_or("nvlink_bandwidth", BytesPerSec{0.0});
  g.pcie_bandwidth = t.bandwidth_or("pcie_bandwidth", BytesPerSec{0.0});
  if (t.has("price_per_gpu_hour_usd")) g.price_per_gpu_hour_usd = t.positive("price_per_gpu_hour_usd");
  if (g.memory.v <= 0) t.fail("memory", "must be > 0");
  if (g.memory_bandwidth.v <= 0) t.fail("memory_bandwidth", "must be > 0");
  if (g.gemm_efficiency > 1.0) t.fail("gemm_efficiency", "must be <= 1");
  if (g.memory_efficiency > 1.0) t.fail("memory_efficiency", "must be <= 1");
  return g;
}

std::string normalise_gpu_name(const std::string& name) {
  std::string out;
  bool gap = false;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isspace(c) || c == '-' || c == '_') {
      gap = !out.empty();
      continue;
    }
    if (gap) out += ' ';
    gap = false;
    out += static_cast<char>(std::tolower(c));
  }
  if (out.rfind("nvidia ", 0) == 0) out.erase(0, 7);
  return out;
}

bool gpu_matches_device(const GpuSpec& gpu, const std::string& device_name) {
  const std::string d = normalise_gpu_name(device_name);
  if (d.empty()) return false;
  return d == normalise_gpu_name(gpu.name) || (!gpu.device_name.empty() && d == normalise_gpu_name(gpu.device_name));
}

std::string catalog_gpu_for_device(const Config& catalog, const std::string& device_name) {
  for (const auto& key : catalog.keys()) {
    GpuSpec g;
    g.name = key;
    g.device_name = catalog.table(key).str_or("device_name", "");
    if (gpu_matches_device(g, device_name)) return key;
  }
  return "";
}

}  // namespace servesim
