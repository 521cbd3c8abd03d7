// The op-time predictor registry: one line per implementation.
#include "models/cost/op_predictors.h"

#include "models/common/error.h"
#include "models/cost/calibrated.h"
#include "models/cost/roofline.h"

namespace servesim {

const PredictorRegistry& predictor_registry() {
  static const PredictorRegistry r = [] {
    PredictorRegistry reg("op predictor");
    reg.add("roofline", [](const PredictorContext& c) { return std::make_unique<RooflinePredictor>(c.gpu); });
    reg.add("calibrated", [](const PredictorContext& c) -> std::unique_ptr<OpPredictor> {
      if (!c.profile) throw InputError(c.where + ": the calibrated predictor needs [hardware] profile");
      return std::make_unique<CalibratedPredictor>(c.gpu, c.profile);
    });
    return reg;
  }();
  return r;
}

}  // namespace servesim
