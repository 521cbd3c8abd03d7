// The hardware part of a scenario: [model] (the model config and its MoE routing) and [hardware] (the GPU from
// its catalog, a calibration profile, the op-time predictor). Catalog files come from catalogs() (read once per
// process).
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "models/arch/model_arch.h"
#include "models/common/config.h"
#include "models/cost/moe_routing.h"
#include "models/cost/op_predictor.h"
#include "models/hw/gpu.h"
#include "models/hw/profile.h"
#include "sim/scenario/catalogs.h"
#include "sim/workload/workload.h"

namespace servesim {

// [model]
struct ModelSetup {
  ModelArch arch;         // as the config gives it (the engine part sets its KV dtype)
  ExpertRouting routing;  // MoE models: how tokens pick experts ([model] expert_routing); empty = uniform
};

// Reads [model]: `config` (a path relative to the file that names it, else a catalog name in
// DATA_ROOT/scenarios/models with or without ".json"), `ignore_config_keys`, `quantization`, and for MoE models
// `expert_routing` ("uniform", "zipf" with `expert_zipf_exponent`, "measured" with `expert_loads`).
// Throws InputError naming the key (a config not found lists where it looked).
[[nodiscard]] ModelSetup read_model(const Config& model, const PathResolver& paths,
                                    const std::filesystem::path& data_root);

// [hardware]
struct HardwareSetup {
  std::shared_ptr<const GpuCatalog> catalog;  // [hardware] catalog, else DATA_ROOT/scenarios/hardware/gpus.toml
  GpuSpec gpu;                                // [hardware] gpu: every pool's unless the pool names its own
  std::shared_ptr<const CalibrationProfile> profile;  // [hardware] profile; null without one
  std::string profile_name;                           // [hardware] profile as given ("" without one)
  bool allow_profile_mismatch = false;                // [hardware] profile_gpu_mismatch = "allow"
  std::string predictor_impl;                         // [hardware] predictor (default calibrated with a profile)
  std::shared_ptr<const OpPredictor> predictor;       // for `gpu`
};

// Reads [hardware]: `gpu` (a name in the catalog), `catalog`, `profile` (a directory, relative to the scenario or
// to DATA_ROOT), `profile_gpu_mismatch` ("error" or "allow"), `predictor` (a predictor_registry() name).
// Throws InputError naming the key: an unknown GPU lists the catalog's names, a profile measured on another GPU
// is refused unless profile_gpu_mismatch = "allow".
[[nodiscard]] HardwareSetup read_hardware(const Config& hw, const PathResolver& paths,
                                          const std::filesystem::path& data_root);

// A pool's GPU: `name` from the scenario's catalog with its own predictor, checked against the profile as
// [hardware] gpu is. `table` and `key` name the pool's key in errors (e.g. cluster.pools[1] / gpu).
struct PoolGpu {
  GpuSpec gpu;
  std::shared_ptr<const OpPredictor> predictor;
};
[[nodiscard]] PoolGpu pool_gpu(const HardwareSetup& hw, const std::string& name, const Config& table,
                               const std::string& key);

}  // namespace servesim
