// servesim calibrate report PROFILE_DIR [--gpu NAME] [--json]
//   Leave-one-out errors of the calibrated predictor against the profile's own points, and the fitted constants.
// servesim calibrate trace MEASURED --scenario S [--out FILE]   (see cmd_calibrate_trace.cpp)
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "models/cost/calibrated.h"
#include "sim/cli/commands.h"

namespace servesim {

void add_calibrate_report(CLI::App* calibrate) {
  auto* cmd = calibrate->add_subcommand("report", "leave-one-out accuracy of the calibrated predictor on a profile");
  auto dir = std::make_shared<std::string>();
  auto gpu_name = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("profile", *dir, "profile directory, e.g. calibrate/data/h200")->required();
  cmd->add_option("--gpu", *gpu_name, "GPU catalog name (default: the profile directory's name)");
  cmd->add_flag("--json", *json, "print JSON");
  cmd->callback([=] {
    auto profile = std::make_shared<const CalibrationProfile>(CalibrationProfile::load(*dir));
    const std::string name =
        gpu_name->empty() ? std::filesystem::path(*dir).lexically_normal().filename().string() : *gpu_name;
    const auto root = find_data_root(std::filesystem::path(*dir));
    const Config catalog = Config::from_file((root / "scenarios/hardware/gpus.toml").string());
    const GpuSpec gpu = load_gpu(catalog, name, "--gpu");
    const CalibratedPredictor pred(gpu, profile);
    const auto rows = pred.report();
    if (*json) {
      nlohmann::ordered_json j;
      j["profile"] = *dir;
      j["gpu"] = name;
      j["families"] = nlohmann::ordered_json::array();
      for (const auto& r : rows) {
        j["families"].push_back({{"family", r.family},
                                 {"points", r.points},
                                 {"loo_mape_pct", r.loo_mape},
                                 {"loo_max_pct", r.loo_max},
                                 {"fit_latency_us", r.fit.latency_s * 1e6},
                                 {"fit_tflops", r.fit.flops_per_s / 1e12},
                                 {"fit_GBps", r.fit.bytes_per_s / 1e9}});
      }
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("calibrated predictor on {} ({}): leave-one-out error per op family\n", *dir, name);
    std::cout << fmt::format("{:<32}{:>7}{:>10}{:>10}{:>14}{:>11}{:>10}\n", "family", "points", "MAPE %", "max %",
                             "latency_us", "TFLOP/s", "GB/s");
    for (const auto& r : rows) {
      std::cout << fmt::format("{:<32}{:>7}{:>10.2f}{:>10.2f}{:>14.2f}{:>11.1f}{:>10.1f}\n", r.family, r.points,
                               r.loo_mape, r.loo_max, r.fit.latency_s * 1e6, r.fit.flops_per_s / 1e12,
                               r.fit.bytes_per_s / 1e9);
    }
  });
}

void add_calibrate_trace(CLI::App* calibrate);  // cmd_calibrate_trace.cpp

void add_calibrate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("calibrate", "calibration: profile accuracy, engine-overhead fitting");
  cmd->require_subcommand(1);
  add_calibrate_report(cmd);
  add_calibrate_trace(cmd);
}

}  // namespace servesim
