// Registry of op-time predictors ([hardware] predictor = "roofline" | "calibrated").
#pragma once
#include <memory>
#include <string>

#include "models/common/registry.h"
#include "models/cost/op_predictor.h"
#include "models/hw/gpu.h"
#include "models/hw/profile.h"

namespace servesim {

struct PredictorContext {
  GpuSpec gpu;
  std::shared_ptr<const CalibrationProfile> profile;  // may be null
  std::string where;                                  // the scenario key, for errors
};

using PredictorRegistry = Registry<OpPredictor, const PredictorContext&>;
[[nodiscard]] const PredictorRegistry& predictor_registry();

}  // namespace servesim
