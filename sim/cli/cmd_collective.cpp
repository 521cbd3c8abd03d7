// servesim collective --topology T --op all_reduce --ranks 8 --bytes 1MiB [--model M] [--algo A] [--proto P] [--json]
// servesim collective --topology T --op all_reduce --ranks 8 --sweep 8B:8GiB [...] [--json]
// servesim collective --topology T --profile DIR|collectives.csv --compare [--json]
//   The first form prints one collective's time, algbw, busbw, the algorithm and protocol chosen; the second the
//   same for every power of two from the lower to the upper size (a table; with --json an array of objects);
//   the third, the model calibrated on the measured collectives against every measurement (in-sample and
//   leave-one-out). --model: nccl (default, NCCL's tuning model) or link_load (models/net/collective_model.h).
#include <cmath>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/quantity_parse.h"
#include "models/net/collective_calibration.h"
#include "sim/cli/commands.h"

namespace servesim {
namespace {

// "LO:HI" -> the powers of two in [LO, HI]. Throws InputError (one line) on bad bounds.
std::vector<Bytes> sweep_sizes(const std::string& spec) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos || spec.find(':', colon + 1) != std::string::npos) {
    throw InputError("--sweep '" + spec + "': expected LO:HI, e.g. 8B:8GiB");
  }
  Bytes lo{0};
  Bytes hi{0};
  try {
    lo = parse_bytes(spec.substr(0, colon));
    hi = parse_bytes(spec.substr(colon + 1));
  } catch (const InputError& e) {
    throw InputError("--sweep '" + spec + "': " + e.what());
  }
  if (!(lo.value() >= 1.0)) throw InputError("--sweep '" + spec + "': the lower size must be at least 1 byte");
  if (hi.value() < lo.value()) throw InputError("--sweep '" + spec + "': the upper size is below the lower one");
  if (hi.value() > std::ldexp(1.0, 50)) throw InputError("--sweep '" + spec + "': the upper size is above 1 PiB");
  std::vector<Bytes> out;
  for (double s = std::exp2(std::ceil(std::log2(lo.value()))); s <= hi.value(); s *= 2.0) out.push_back(Bytes{s});
  if (out.empty()) throw InputError("--sweep '" + spec + "': no power of two between the bounds");
  return out;
}

std::string size_label(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 5) {
    bytes /= 1024.0;
    ++u;
  }
  return fmt::format("{:g}{}", bytes, units[u]);
}

}  // namespace

void add_collective_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("collective", "time a collective on a topology (NCCL-style algorithms)");
  struct Args {
    std::string topology, op = "all_reduce", bytes = "1MiB", algo = "auto", profile, sweep, proto = "auto";
    std::string model{kDefaultCollectiveModel};
    int ranks = 8;
    bool json = false, compare = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--topology", a->topology, "topology catalog name (scenarios/topologies) or TOML file")->required();
  cmd->add_option("--op", a->op, "all_reduce | all_gather | reduce_scatter | broadcast | send_recv | all_to_all")
      ->capture_default_str();
  cmd->add_option("--ranks", a->ranks, "number of GPUs (the first N of the topology)")->capture_default_str();
  cmd->add_option("--bytes", a->bytes, "message size: bytes or KiB/MiB/GiB")->capture_default_str();
  cmd->add_option("--model", a->model, "collective cost model: " + collective_model_names())->capture_default_str();
  cmd->add_option("--algo", a->algo,
                  "algorithm, as NCCL_ALGO (nccl: ring | tree | nvls | nvls_tree | collnet_direct | collnet_chain | "
                  "pat; link_load: ring | tree | nvls | direct | hierarchical) or auto")
      ->capture_default_str();
  cmd->add_option("--proto", a->proto, "protocol, as NCCL_PROTO: LL | LL128 | Simple | auto (nccl model)")
      ->capture_default_str();
  cmd->add_option("--sweep", a->sweep, "LO:HI: every power of two from LO to HI bytes, e.g. 8B:8GiB");
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
      check_input_file(csv, "--profile collectives CSV");
      measured = read_collectives_csv(csv);
    } else if (a->compare) {
      throw InputError("--compare needs --profile");
    }
    if (a->compare) {
      const CalibratedCollectives cc(topo, measured, a->algo, a->model, a->proto);
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
    const std::vector<Bytes> sizes = a->sweep.empty() ? std::vector<Bytes>{parse_bytes(a->bytes)} : sweep_sizes(a->sweep);
    if (a->ranks < 1) throw InputError("--ranks must be >= 1");
    if (a->ranks > static_cast<int>(topo->gpu_count())) {
      throw InputError(fmt::format("--ranks {}: topology {} has only {} GPUs", a->ranks, a->topology, topo->gpu_count()));
    }
    std::vector<int> gpus;
    for (int i = 0; i < a->ranks; ++i) gpus.push_back(i);
    std::shared_ptr<const CollectiveCalibration> cal;
    if (!measured.empty()) cal = CalibratedCollectives(topo, measured, a->algo, a->model, a->proto).calibration();
    const CommGroup g(topo, gpus, a->algo, cal, a->model, a->proto);
    auto to_json = [](const CollectiveResult& r) {
      return nlohmann::ordered_json{{"time_us", r.time.v * 1e6},
                                    {"algbw_GBps", r.algbw_GBps},
                                    {"busbw_GBps", r.busbw_GBps},
                                    {"algo", r.algo},
                                    {"protocol", r.protocol}};
    };
    if (!a->sweep.empty()) {
      nlohmann::ordered_json j = nlohmann::ordered_json::array();
      std::string out = fmt::format("{} on {} GPUs of {} ({} model{})\n", to_string(op), a->ranks, a->topology, a->model,
                                    cal ? ", calibrated" : "");
      out += fmt::format("{:>14}{:>9}{:>14}{:>14}{:>14}  {:<10}{}\n", "bytes", "size", "time_us", "algbw_GBps",
                         "busbw_GBps", "algo", "protocol");
      for (const Bytes s : sizes) {
        const CollectiveResult r = g.cost(op, s);
        nlohmann::ordered_json row{{"bytes", s.v}};
        const nlohmann::ordered_json fields = to_json(r);
        for (const auto& [k, v] : fields.items()) row[k] = v;
        j.push_back(row);
        out += fmt::format("{:>14.0f}{:>9}{:>14.2f}{:>14.2f}{:>14.2f}  {:<10}{}\n", s.v, size_label(s.v), r.time.v * 1e6,
                           r.algbw_GBps, r.busbw_GBps, r.algo, r.protocol.empty() ? "-" : r.protocol);
      }
      std::cout << (a->json ? j.dump(2) + "\n" : out);
      return;
    }
    const Bytes size = sizes.front();
    const CollectiveResult r = g.cost(op, size);
    if (a->json) {
      std::cout << to_json(r).dump(2) << "\n";
    } else {
      std::cout << fmt::format("{} of {} bytes on {} GPUs of {}: {:.2f} us, algbw {:.2f} GB/s, busbw {:.2f} GB/s ({}{}{})\n",
                               to_string(op), size.v, a->ranks, a->topology, r.time.v * 1e6, r.algbw_GBps, r.busbw_GBps,
                               r.algo, r.protocol.empty() ? "" : "/" + r.protocol, cal ? ", calibrated" : "");
    }
  });
}

}  // namespace servesim
