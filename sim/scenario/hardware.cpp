#include "sim/scenario/hardware.h"

#include "models/common/error.h"
#include "models/cost/op_predictors.h"

namespace servesim {

ModelSetup read_model(const Config& model, const PathResolver& paths, const std::filesystem::path& data_root) {
  ModelSetup out;
  // A path (relative to the file that names it, or to the working directory for --set), else a catalog name with
  // or without ".json".
  std::string model_path = model.str("config");
  if (const std::string resolved = paths.resolve(model, "config"); !std::filesystem::exists(resolved)) {
    const std::string stem = model_path.size() > 5 && model_path.ends_with(".json")
                                 ? model_path.substr(0, model_path.size() - 5) : model_path;
    const auto catalog = data_root / "scenarios" / "models" / (stem + ".json");
    if (stem.find('/') != std::string::npos || !std::filesystem::exists(catalog)) {
      model.fail("config", "model config '" + model_path + "' not found (as " + resolved + " or in the catalog " +
                               (data_root / "scenarios" / "models").string() + ")");
    }
    model_path = catalog.string();
  } else {
    model_path = resolved;
  }
  // config.json keys the user accepts knowingly (neither modelled nor known to be harmless: models/arch).
  out.arch = *catalogs().model(
      model_path, model.has("ignore_config_keys") ? model.str_list("ignore_config_keys") : std::vector<std::string>{});
  ModelArch& arch = out.arch;
  if (model.has("quantization")) {
    arch.quantization =
        parse_quantization(model.str("quantization"), model.where("quantization") + ": model.quantization");
    if (arch.quantization == Quantization::mxfp4 && !arch.moe.enabled()) {
      model.fail("quantization", "mxfp4 quantizes the routed experts of a mixture-of-experts model (as vLLM's "
                                 "Mxfp4Config); " + arch.name + " has none");
    }
  } else if (!arch.quant_method_modelled) {
    model.fail("config", model_path + ": quantization_config.quant_method '" + arch.quant_method +
                             "' is not modelled (fp8 schemes are: fp8, fbgemm_fp8, modelopt FP8, compressed-tensors "
                             "with 8-bit float weights; mxfp4 on mixture-of-experts models); set [model] "
                             "quantization = \"fp8\" or \"none\" to cost it as one");
  }

  // Mixture-of-experts routing (models/cost/moe_routing.h): uniform, Zipf-skewed popularity, or measured loads.
  const std::string routing = model.str_or("expert_routing", "uniform");
  if (!arch.moe.enabled() && (model.has("expert_routing") || model.has("expert_zipf_exponent") ||
                              model.has("expert_loads"))) {
    model.fail(model.has("expert_routing") ? "expert_routing" : model.has("expert_loads") ? "expert_loads"
                                                                                           : "expert_zipf_exponent",
               arch.name + " has no mixture-of-experts layers");
  }
  if (routing != "zipf" && model.has("expert_zipf_exponent")) {
    model.fail("expert_zipf_exponent", "applies to expert_routing = \"zipf\" only");
  }
  if (routing != "measured" && model.has("expert_loads")) {
    model.fail("expert_loads", "applies to expert_routing = \"measured\" only");
  }
  try {
    if (routing == "zipf") {
      out.routing = ExpertRouting::zipf(arch.moe.num_experts, arch.moe.experts_per_token,
                                        model.non_negative_or("expert_zipf_exponent", 1.0));
    } else if (routing == "measured") {
      out.routing = ExpertRouting::from_loads(model.num_list("expert_loads"), arch.moe.experts_per_token,
                                              "expert_loads");
      if (out.routing.experts() != arch.moe.num_experts) {
        model.fail("expert_loads", std::to_string(out.routing.experts()) + " loads for " +
                                       std::to_string(arch.moe.num_experts) + " experts");
      }
    } else if (routing != "uniform") {
      model.fail("expert_routing", "unknown routing '" + routing + "' (valid: measured, uniform, zipf)");
    }
  } catch (const InputError& e) {
    // The routing's own errors know no file: placed at the key that led to them. The scenario's name theirs.
    if (e.placed()) throw;
    model.fail(routing == "zipf" ? "expert_zipf_exponent" : "expert_loads", e.what());
  }
  return out;
}

HardwareSetup read_hardware(const Config& hw, const PathResolver& paths, const std::filesystem::path& data_root) {
  HardwareSetup out;
  const std::string gpu_name = hw.str("gpu");
  const std::string catalog_path =
      hw.has("catalog") ? paths.resolve(hw, "catalog") : (data_root / "scenarios/hardware/gpus.toml").string();
  out.catalog = catalogs().gpu_catalog(catalog_path);
  out.gpu = out.catalog->gpu(gpu_name, hw.where("gpu") + ": hardware.gpu");
  if (hw.has("profile")) {
    std::string dir = paths.resolve(hw, "profile");
    if (!std::filesystem::is_directory(dir)) dir = (data_root / hw.str("profile")).string();
    if (!std::filesystem::is_directory(dir)) hw.fail("profile", "calibration profile directory not found");
    out.profile = std::make_shared<const CalibrationProfile>(CalibrationProfile::load(dir));
    out.profile_name = hw.str("profile");
  }
  // A profile measured on another GPU than hardware.gpu: an error unless profile_gpu_mismatch = "allow".
  const std::string gpu_mismatch = hw.str_or("profile_gpu_mismatch", "error");
  if (gpu_mismatch != "error" && gpu_mismatch != "allow") {
    hw.fail("profile_gpu_mismatch", "'" + gpu_mismatch + "' is not valid (valid: allow, error)");
  }
  out.allow_profile_mismatch = gpu_mismatch == "allow";
  const std::string why = out.profile ? profile_gpu_mismatch(*out.profile, out.gpu, out.profile_name) : "";
  if (!why.empty() && !out.allow_profile_mismatch) {
    hw.fail("profile", why + " (set hardware.profile_gpu_mismatch = \"allow\" to use it anyway)");
  }
  out.predictor_impl = hw.str_or("predictor", out.profile ? "calibrated" : "roofline");
  const std::string where = hw.where("predictor") + ": hardware.predictor";
  out.predictor = predictor_registry().create(out.predictor_impl, where, PredictorContext{out.gpu, out.profile, where});
  return out;
}

PoolGpu pool_gpu(const HardwareSetup& hw, const std::string& name, const Config& table, const std::string& key) {
  PoolGpu out;
  out.gpu = hw.catalog->gpu(name, table.where(key) + ": " + table.key_path(key));
  const std::string why = hw.profile ? profile_gpu_mismatch(*hw.profile, out.gpu, hw.profile_name) : "";
  if (!why.empty() && !hw.allow_profile_mismatch) {
    table.fail(key, why + " (set hardware.profile_gpu_mismatch = \"allow\" to use it anyway)");
  }
  const std::string where = table.where(key) + ": " + table.key_path(key) + " (hardware.predictor)";
  out.predictor = predictor_registry().create(hw.predictor_impl, where, PredictorContext{out.gpu, hw.profile, where});
  return out;
}

}  // namespace servesim
