// servesim calibrate report PROFILE_DIR [--gpu NAME] [--json]
//   Leave-one-out errors of the calibrated predictor against the profile's own points, how steady the measured
//   points are, the points with the largest errors, and the fitted constants; whether a fitted bandwidth was
//   capped at the catalog GPU's datasheet bandwidth. The GPU is the catalog entry that profile.json's "gpu"
//   names (gpu_matches_device), else the one named like the directory, unless --gpu says.
// servesim calibrate trace RUN [RUN...] --scenario S [--out FIT.toml]   (see cmd_calibrate_trace.cpp)
#include <algorithm>
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
  cmd->add_option("--gpu", *gpu_name,
                  "GPU catalog name (default: the entry profile.json's \"gpu\" names, else the directory's name)");
  cmd->add_flag("--json", *json, "print JSON");
  cmd->callback([=] {
    auto profile = std::make_shared<const CalibrationProfile>(CalibrationProfile::load(*dir));
    const auto root = find_data_root(std::filesystem::path(*dir));
    const Config catalog = Config::from_file((root / "scenarios/hardware/gpus.toml").string());
    std::string name = *gpu_name;
    if (name.empty()) name = catalog_gpu_for_device(catalog, profile->gpu_name());
    if (name.empty()) name = std::filesystem::path(*dir).lexically_normal().filename().string();
    const GpuSpec gpu = load_gpu(catalog, name, "--gpu");
    const std::string mismatch = profile_gpu_mismatch(*profile, gpu, *dir, "--gpu");
    const CalibratedPredictor pred(gpu, profile);
    const auto rows = pred.report();
    const double cap_GBps = gpu.memory_bandwidth.v / 1e9;
    std::vector<std::string> capped;  // "family X GB/s" for each capped fit (per-shape rows share their family's)
    std::vector<double> seen;
    for (const auto& r : rows) {
      const double u = r.fit.uncapped_bytes_per_s;
      if (!r.fit.bandwidth_capped() || std::find(seen.begin(), seen.end(), u) != seen.end()) continue;
      seen.push_back(u);
      capped.push_back(fmt::format("{} fitted {:.1f} GB/s", r.family, u / 1e9));
    }
    if (*json) {
      nlohmann::ordered_json j;
      j["profile"] = *dir;
      j["gpu"] = name;
      j["profile_gpu"] = profile->gpu_name();
      if (!mismatch.empty()) j["gpu_mismatch"] = mismatch;
      j["bandwidth_cap_GBps"] = cap_GBps;
      j["families"] = nlohmann::ordered_json::array();
      for (const auto& r : rows) {
        j["families"].push_back({{"family", r.family},
                                 {"points", r.points},
                                 {"loo_mape_pct", r.loo_mape},
                                 {"loo_max_pct", r.loo_max},
                                 {"fit_latency_us", r.fit.latency_s * 1e6},
                                 {"fit_tflops", r.fit.flops_per_s / 1e12},
                                 {"fit_GBps", r.fit.bytes_per_s / 1e9},
                                 {"bandwidth_capped", r.fit.bandwidth_capped()},
                                 {"fit_GBps_uncapped", r.fit.bandwidth_capped()
                                                           ? nlohmann::ordered_json(r.fit.uncapped_bytes_per_s / 1e9)
                                                           : nlohmann::ordered_json(nullptr)},
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
    if (!mismatch.empty()) std::cout << "note: " << mismatch << "\n";
    std::cout << fmt::format("{:<34}{:>7}{:>9}{:>9}{:>10}{:>12}{:>10}{:>9}\n", "family", "points", "MAPE %", "max %",
                             "spread %", "latency_us", "TFLOP/s", "GB/s");
    for (const auto& r : rows) {
      std::cout << fmt::format("{:<34}{:>7}{:>9.2f}{:>9.2f}{:>10.1f}{:>12.2f}{:>10.1f}{:>9.1f}\n", r.family, r.points,
                               r.loo_mape, r.loo_max, r.spread_pct, r.fit.latency_s * 1e6, r.fit.flops_per_s / 1e12,
                               r.fit.bytes_per_s / 1e9);
    }
    if (capped.empty()) {
      std::cout << fmt::format("fitted bandwidths within {}'s datasheet {:.0f} GB/s (no cap applied)\n", name, cap_GBps);
    } else {
      std::string list;
      for (const auto& c : capped) list += (list.empty() ? "" : ", ") + c;
      std::cout << fmt::format("note: fitted bandwidth capped at {}'s datasheet {:.0f} GB/s (L2 hits or a bad fit): {}\n",
                               name, cap_GBps, list);
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
