// servesim collective --topology T --op all_reduce --ranks 8 --bytes 1MiB [--algo A] [--json]
// servesim collective --topology T --profile DIR|collectives.csv --compare [--json]
//   The first form prints one collective's time, algbw, busbw and the algorithm chosen; the second, the model
//   calibrated on the measured collectives against every measurement (in-sample and leave-one-out).
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "models/common/quantity_parse.h"
#include "models/net/collective_calibration.h"
#include "sim/cli/commands.h"

namespace servesim {

void add_collective_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("collective", "time a collective on a topology (NCCL-style algorithms)");
  struct Args {
    std::string topology, op = "all_reduce", bytes = "1MiB", algo = "auto", profile;
    int ranks = 8;
    bool json = false, compare = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--topology", a->topology, "topology catalog name (scenarios/topologies) or TOML file")->required();
  cmd->add_option("--op", a->op, "all_reduce | all_gather | reduce_scatter | broadcast | send_recv | all_to_all")
      ->capture_default_str();
  cmd->add_option("--ranks", a->ranks, "number of GPUs (the first N of the topology)")->capture_default_str();
  cmd->add_option("--bytes", a->bytes, "message size: bytes or KiB/MiB/GiB")->capture_default_str();
  cmd->add_option("--algo", a->algo, "ring | tree | nvls | direct | hierarchical | auto")->capture_default_str();
  cmd->add_option("--profile", a->profile, "measured collectives: a profile directory or its collectives.csv");
  cmd->add_flag("--compare", a->compare, "compare the calibrated model with every measurement of --profile");
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a] {
    const auto root = find_data_root(std::filesystem::current_path());
    const std::string catalog = (root / "scenarios/topologies").string();
    auto topo = std::make_shared<const Topology>(load_topology(a->topology, catalog));
    std::vector<CollectiveMeasurement> measured;
    if (!a->profile.empty()) {
      std::string csv = a->profile;
      if (std::filesystem::is_directory(csv)) csv = (std::filesystem::path(csv) / "collectives.csv").string();
      if (!std::filesystem::exists(csv)) throw InputError("--profile: " + csv + " not found");
      measured = read_collectives_csv(csv);
    } else if (a->compare) {
      throw InputError("--compare needs --profile");
    }
    if (a->compare) {
      const CalibratedCollectives cc(topo, measured, a->algo);
      const auto rows = cc.compare();
      nlohmann::ordered_json j = nlohmann::ordered_json::array();
      std::string out = fmt::format("{:<15}{:>6}{:>14}{:>8}{:>12}{:>12}{:>12}{:>10}{:>12}{:>10}\n", "collective", "ranks",
                                    "bytes", "algo", "measured", "analytic", "fitted", "err %", "loo", "loo err %");
      for (const auto& r : rows) {
        j.push_back({{"collective", to_string(r.op)}, {"ranks", r.ranks}, {"bytes", r.bytes.v}, {"algo", r.algo},
                     {"measured_busbw_GBps", r.measured_busbw_GBps}, {"analytic_busbw_GBps", r.analytic_busbw_GBps},
                     {"fitted_busbw_GBps", r.fitted_busbw_GBps}, {"fitted_error_pct", r.fitted_error_pct},
                     {"loo_busbw_GBps", r.loo_busbw_GBps}, {"loo_error_pct", r.loo_error_pct}});
        out += fmt::format("{:<15}{:>6}{:>14.0f}{:>8}{:>12.2f}{:>12.2f}{:>12.2f}{:>+10.2f}{:>12.2f}{:>+10.2f}\n",
                           to_string(r.op), r.ranks, r.bytes.v, r.algo, r.measured_busbw_GBps, r.analytic_busbw_GBps,
                           r.fitted_busbw_GBps, r.fitted_error_pct, r.loo_busbw_GBps, r.loo_error_pct);
      }
      std::cout << (a->json ? j.dump(2) + "\n" : "busbw in GB/s; loo = calibrated without that size\n" + out);
      return;
    }
    const auto parsed = parse_collective_op(a->op);
    if (!parsed) {
      throw InputError("--op '" + a->op + "': unknown collective (valid: all_reduce, all_gather, reduce_scatter, "
                       "broadcast, send_recv, all_to_all)");
    }
    const CollectiveOp op = *parsed;
    const Bytes size = parse_bytes(a->bytes);
    if (a->ranks < 1) throw InputError("--ranks must be >= 1");
    if (a->ranks > static_cast<int>(topo->gpu_count())) {
      throw InputError(fmt::format("--ranks {}: topology {} has only {} GPUs", a->ranks, a->topology, topo->gpu_count()));
    }
    std::vector<int> gpus;
    for (int i = 0; i < a->ranks; ++i) gpus.push_back(i);
    std::shared_ptr<const CollectiveCalibration> cal;
    if (!measured.empty()) cal = CalibratedCollectives(topo, measured, a->algo).calibration();
    const CommGroup g(topo, gpus, a->algo, cal);
    const CollectiveResult r = g.cost(op, size);
    if (a->json) {
      nlohmann::ordered_json j{{"time_us", r.time.v * 1e6}, {"algbw_GBps", r.algbw_GBps}, {"busbw_GBps", r.busbw_GBps},
                               {"algo", r.algo}};
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << fmt::format("{} of {} bytes on {} GPUs of {}: {:.2f} us, algbw {:.2f} GB/s, busbw {:.2f} GB/s ({}{})\n",
                               to_string(op), size.v, a->ranks, a->topology, r.time.v * 1e6, r.algbw_GBps, r.busbw_GBps,
                               r.algo, cal ? ", calibrated" : "");
    }
  });
}

}  // namespace servesim
