// servesim calibrate report PROFILE_DIR [--gpu NAME] [--json]
//   Leave-one-out errors of the calibrated predictor against the profile's own points, how steady the measured
//   points are, the points with the largest errors, and the fitted constants.
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
                                 {"fit_GBps", r.fit.bytes_per_s / 1e9},
                                 {"spread_pct", r.spread_pct}});
        auto& worst = j["families"].back()["worst"] = nlohmann::ordered_json::array();
        for (const auto& w : r.worst) {
          worst.push_back({{"point", w.label}, {"loo_err_pct", w.loo_err_pct}, {"spread_pct", w.spread_pct}});
        }
      }
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("calibrated predictor on {} ({}): leave-one-out error per op family\n", *dir, name);
    std::cout << fmt::format("{:<34}{:>7}{:>9}{:>9}{:>10}{:>12}{:>10}{:>9}\n", "family", "points", "MAPE %", "max %",
                             "spread %", "latency_us", "TFLOP/s", "GB/s");
    for (const auto& r : rows) {
      std::cout << fmt::format("{:<34}{:>7}{:>9.2f}{:>9.2f}{:>10.1f}{:>12.2f}{:>10.1f}{:>9.1f}\n", r.family, r.points,
                               r.loo_mape, r.loo_max, r.spread_pct, r.fit.latency_s * 1e6, r.fit.flops_per_s / 1e12,
                               r.fit.bytes_per_s / 1e9);
    }
    std::cout << "\nlargest errors (spread = (max - min) / median of the point's repetitions):\n";
    for (const auto& r : rows) {
      if (r.family.rfind("gemm:", 0) == 0 || r.worst.empty()) continue;
      std::string line;
      for (const auto& w : r.worst) line += fmt::format("  {} {:.1f}% (spread {:.0f}%)", w.label, w.loo_err_pct, w.spread_pct);
      std::cout << fmt::format("{:<34}{}\n", r.family, line);
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
