// The shipped H200 profile and the catalog's H200, shared by the calibrated-predictor tests.
#pragma once
#include <memory>

#include "helpers.h"
#include "models/common/config.h"
#include "models/hw/gpu.h"
#include "models/hw/profile.h"

namespace servesim::test {

inline std::shared_ptr<const CalibrationProfile> h200_profile() {
  static auto p = std::make_shared<const CalibrationProfile>(CalibrationProfile::load(source_dir() + "/calibrate/data/h200"));
  return p;
}

inline GpuSpec h200() {
  const Config catalog = Config::from_file(scenario_path("hardware/gpus.toml"));
  return load_gpu(catalog, "h200", "test");
}

}  // namespace servesim::test
