// servesim transfer --topology T --from GPUS --to GPUS --bytes 640MiB [--transport X] [--message-size S]
//                   [--profile transports.csv] [--json]
//   Point-to-point KV-cache transfer(s) on a topology (models/net/transport.h): --from and --to are GPU lists of
//   equal length ("0,1,2,3" or "0-3"); the bytes are split evenly over the pairs, which run concurrently on the
//   flow network (max-min fair sharing of the links, models/net/flow_rates.h; each pair capped at its transport's
//   rate alone). Prints per pair and overall the time, achieved bandwidth, transport and route, and for every
//   other transport that could carry the pairs how much slower (or faster) it would be and why. --transport forces
//   one; --profile calibrates the transports it measures (models/net/transport_calibration.h).
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "models/common/quantity_parse.h"
#include "models/net/flow_rates.h"
#include "models/net/transport.h"
#include "models/net/transport_calibration.h"
#include "sim/cli/commands.h"

namespace servesim {
namespace {

// "0,1,2" / "0-3,8" -> GPU indices, each checked against the topology.
std::vector<int> parse_gpu_list(const std::string& text, const std::string& option, const Topology& topo) {
  std::vector<int> out;
  auto number = [&](const std::string& s) {
    int v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0) {
      throw InputError(fmt::format("{} '{}': '{}' is not a GPU index (a list like 0,1,2,3 or 0-3)", option, text, s));
    }
    return v;
  };
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const auto dash = item.find('-');
    int lo = 0;
    int hi = 0;
    if (dash == std::string::npos) {
      lo = hi = number(item);
    } else {
      lo = number(item.substr(0, dash));
      hi = number(item.substr(dash + 1));
      if (hi < lo) throw InputError(fmt::format("{} '{}': range '{}' runs backwards", option, text, item));
    }
    for (int g = lo; g <= hi; ++g) {
      if (g >= topo.gpu_count()) {
        throw InputError(fmt::format("{} '{}': GPU {} does not exist (topology {} has {} GPUs, 0-{})", option, text, g,
                                     topo.name(), topo.gpu_count(), topo.gpu_count() - 1));
      }
      out.push_back(g);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string ms_text(Seconds s) {
  return s.value() >= 1e-3 ? fmt::format("{:.3f} ms", s.value() * 1e3) : fmt::format("{:.2f} us", s.value() * 1e6);
}

std::string size_text(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  return fmt::format("{:g} {}", bytes, units[u]);
}

struct PairRun {
  int src = 0, dst = 0;
  TransportPath path;
  Seconds time{0};  // finish on the flow network
};

struct Run {
  std::vector<PairRun> pairs;
  Seconds time{0};
};

// All pairs concurrently on the flow network, each with its own path.
Run run_pairs(const Topology& topo, const std::vector<TransportPath>& paths, Bytes per_pair) {
  const std::vector<BytesPerSec> capacity = transfer_link_capacities(topo);
  std::vector<TimedFlow> flows;
  for (const auto& p : paths) flows.push_back(TimedFlow{p.flow_demand(per_pair), per_pair, p.start_delay(per_pair)});
  const auto finish = flow_finish_times(capacity, flows);
  Run run;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    run.pairs.push_back({paths[i].src_gpu, paths[i].dst_gpu, paths[i], finish[i]});
    run.time = std::max(run.time, finish[i]);
  }
  return run;
}

// Why `alt` takes longer (or shorter) than `base` for one pair of `bytes`: its cost terms that differ, the largest
// difference first (terms that differ by less than 0.1 % of the base's time are left out).
std::string why(const TransportPath& alt, const TransportPath& base, Bytes bytes) {
  const std::int64_t n = alt.messages(bytes);
  const double d_data = (bytes / alt.rate - bytes / base.rate).value();
  const double d_msg = (alt.per_message * static_cast<double>(n) -
                        base.per_message * static_cast<double>(base.messages(bytes)))
                           .value();
  const double d_fixed = (alt.start_delay(bytes) - base.start_delay(bytes)).value();
  std::vector<std::pair<double, std::string>> parts{
      {d_data, fmt::format("rate {:.2f} GB/s vs {:.2f}: {}", alt.rate.value() / 1e9, base.rate.value() / 1e9,
                           alt.limit)},
      {d_msg, fmt::format("{} message{} x {:.2f} us = {}{}", n, n == 1 ? "" : "s", alt.per_message.value() * 1e6,
                          ms_text(alt.per_message * static_cast<double>(n)),
                          alt.staging_copies > 0 ? " (staging through host memory)" : "")},
      {d_fixed, fmt::format("setup {} vs {}", ms_text(alt.start_delay(bytes)), ms_text(base.start_delay(bytes)))}};
  std::stable_sort(parts.begin(), parts.end(),
                   [](const auto& x, const auto& y) { return std::fabs(x.first) > std::fabs(y.first); });
  const double floor = 1e-3 * base.time_alone(bytes).value();
  std::string out;
  for (const auto& [delta, text] : parts) {
    if (std::fabs(delta) > floor || out.empty()) out += (out.empty() ? "" : "; ") + text;
  }
  return out;
}

nlohmann::ordered_json route_json(const Topology& topo, const TransportPath& p) {
  nlohmann::ordered_json r = nlohmann::ordered_json::array();
  if (p.links.empty()) return r;
  r.push_back(topo.vertex(topo.link(p.links.front()).from).name);
  for (const int l : p.links) r.push_back(topo.vertex(topo.link(l).to).name);
  return r;
}

}  // namespace

void add_transfer_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("transfer", "time a point-to-point KV-cache transfer between GPUs of a topology");
  struct Args {
    std::string topology, from, to, bytes, transport, message_size, profile;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--topology", a->topology, "topology catalog name (scenarios/topologies) or TOML file")->required();
  cmd->add_option("--from", a->from, "source GPUs: 0,1,2,3 or 0-3")->required();
  cmd->add_option("--to", a->to, "destination GPUs, one per source")->required();
  cmd->add_option("--bytes", a->bytes, "bytes in all, split evenly over the pairs: bytes or KiB/MiB/GiB")->required();
  cmd->add_option("--transport", a->transport, "force a transport: " + transport_names_text());
  cmd->add_option("--message-size", a->message_size,
                  "bytes per message (e.g. a KV block's descriptor); default: each transport's own");
  cmd->add_option("--profile", a->profile, "transport profile CSV (servesim ingest ucx_perftest / nixlbench)");
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a] {
    const auto root = find_data_root(std::filesystem::current_path());
    const Topology topo = load_topology(a->topology, (root / "scenarios/topologies").string());
    const std::vector<int> from = parse_gpu_list(a->from, "--from", topo);
    const std::vector<int> to = parse_gpu_list(a->to, "--to", topo);
    if (from.size() != to.size()) {
      throw InputError(fmt::format("--from has {} GPU{} but --to has {}: give one destination per source",
                                   from.size(), from.size() == 1 ? "" : "s", to.size()));
    }
    const Bytes total = parse_bytes(a->bytes);
    if (!(total.value() >= 1.0) || total.value() > std::ldexp(1.0, 50)) {
      throw InputError("--bytes '" + a->bytes + "': must be between 1 byte and 1 PiB");
    }
    std::optional<Bytes> msg;
    if (!a->message_size.empty()) {
      msg = parse_bytes(a->message_size);
      if (!(msg->value() >= 1.0)) throw InputError("--message-size '" + a->message_size + "': must be at least 1 byte");
    }
    std::optional<TransportCalibration> cal;
    // The same reading and fit as a scenario's [cluster.kv_transfer] profile (sim/scenario/pools.cpp).
    if (!a->profile.empty()) cal = TransportCalibration::from_csv(a->profile);
    const TransportCalibration* calp = cal ? &*cal : nullptr;
    const std::optional<std::string> forced = a->transport.empty() ? std::nullopt : std::optional(a->transport);
    const Bytes per_pair = total / static_cast<double>(from.size());

    // Chosen transports, and for every transport whether it carries every pair (its paths).
    std::vector<TransportPath> chosen;
    std::map<std::string, std::vector<TransportPath>> by_transport;
    std::map<std::string, std::string> cannot;  // transport -> first reason it cannot carry a pair
    for (std::size_t i = 0; i < from.size(); ++i) {
      // A forced transport that cannot carry a pair is --transport's fault; without one, the GPU lists'.
      const TransportChoice c =
          select_transport(topo, from[i], to[i], per_pair, forced, calp, msg, forced ? "--transport" : "--from/--to");
      chosen.push_back(c.path);
      by_transport[c.path.transport].push_back(c.path);
      for (const auto& o : c.others) by_transport[o.path.transport].push_back(o.path);
      for (const auto& [name, reason] : c.unsupported) cannot.emplace(name, fmt::format("{} -> {}: {}",
          gpu_label(topo, from[i]), gpu_label(topo, to[i]), reason));
    }
    const Run run = run_pairs(topo, chosen, per_pair);
    std::set<std::string> used;
    for (const auto& p : chosen) used.insert(p.transport);
    std::string transport_text;
    for (const auto& t : used) transport_text += (transport_text.empty() ? "" : ",") + t;

    struct Alt {
      std::string name;
      Seconds time{0};
      std::string reason;
    };
    std::vector<Alt> alts;
    for (const std::string& name : transport_names()) {
      const auto it = by_transport.find(name);
      if (it == by_transport.end() || it->second.size() != from.size() || (used.size() == 1 && used.count(name))) {
        continue;
      }
      const Run r = run_pairs(topo, it->second, per_pair);
      std::string reason = why(it->second.front(), chosen.front(), per_pair);
      if (!transport_registry().create(name, "--transport")->auto_selectable()) reason += "; only when forced";
      alts.push_back({name, r.time, reason});
    }
    std::stable_sort(alts.begin(), alts.end(), [](const Alt& x, const Alt& y) { return x.time < y.time; });
    const double total_gbps = total.value() / run.time.value() / 1e9;

    if (a->json) {
      nlohmann::ordered_json j;
      j["time_us"] = run.time.value() * 1e6;
      j["bandwidth_GBps"] = total_gbps;
      j["transport"] = transport_text;
      j["bytes"] = total.value();
      j["pairs"] = nlohmann::ordered_json::array();
      for (const auto& p : run.pairs) {
        j["pairs"].push_back({{"from", p.src},
                              {"to", p.dst},
                              {"bytes", per_pair.value()},
                              {"time_us", p.time.value() * 1e6},
                              {"bandwidth_GBps", per_pair.value() / p.time.value() / 1e9},
                              {"transport", p.path.transport},
                              {"route", route_json(topo, p.path)},
                              {"rate_GBps", p.path.rate.value() / 1e9},
                              {"limit", p.path.limit},
                              {"messages", p.path.messages(per_pair)},
                              {"per_message_us", p.path.per_message.value() * 1e6},
                              {"setup_us", p.path.start_delay(per_pair).value() * 1e6},
                              {"calibrated", p.path.calibrated}});
      }
      j["alternatives"] = nlohmann::ordered_json::array();
      for (const auto& alt : alts) {
        j["alternatives"].push_back({{"transport", alt.name},
                                     {"time_us", alt.time.value() * 1e6},
                                     {"slower_x", alt.time.value() / run.time.value()},
                                     {"reason", alt.reason}});
      }
      j["unsupported"] = nlohmann::ordered_json::array();
      for (const std::string& name : transport_names()) {
        const auto it = cannot.find(name);
        if (it != cannot.end()) j["unsupported"].push_back({{"transport", name}, {"reason", it->second}});
      }
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::string out;
    if (cal) {
      for (const auto& [name, f] : cal->fits()) {
        out += fmt::format("calibrated {} from {}: setup {:.2f} us, per message {:.2f} us, rate {:.2f} GB/s "
                           "(fitted {}; {} rows, largest error {:.1f} %)\n",
                           name, a->profile, f.setup.value() * 1e6, f.per_message.value() * 1e6, f.rate.value() / 1e9,
                           f.fitted, f.rows, f.max_error_pct);
      }
    }
    out += fmt::format("{} ({} B) over {} pair{} on {}: {}, {:.2f} GB/s, {}\n", size_text(total.value()), total.value(),
                       from.size(), from.size() == 1 ? "" : "s", topo.name(), ms_text(run.time), total_gbps,
                       transport_text);
    for (const auto& p : run.pairs) {
      out += fmt::format("  {} -> {}: {} in {}, {:.2f} GB/s, {}: {}\n", gpu_label(topo, p.src), gpu_label(topo, p.dst),
                         size_text(per_pair.value()), ms_text(p.time), per_pair.value() / p.time.value() / 1e9,
                         p.path.transport, p.path.route_text(topo));
    }
    const TransportPath& p0 = chosen.front();
    out += fmt::format("  {}: rate alone {:.2f} GB/s ({}); {} message{} x {:.2f} us; setup {}{}\n", p0.transport,
                       p0.rate.value() / 1e9, p0.limit, p0.messages(per_pair), p0.messages(per_pair) == 1 ? "" : "s",
                       p0.per_message.value() * 1e6, ms_text(p0.start_delay(per_pair)),
                       p0.calibrated ? " (calibrated)" : "");
    if (!alts.empty()) {
      out += fmt::format("other transports (the same pairs, all on that transport):\n");
      for (const auto& alt : alts) {
        const double x = alt.time.value() / run.time.value();
        const Seconds diff{std::fabs(alt.time.value() - run.time.value())};
        out += fmt::format("  {:<19} {:>12}  {:.2f}x {} ({}{}): {}\n", alt.name, ms_text(alt.time), x,
                           x >= 1.0 ? "slower" : "faster", x >= 1.0 ? "+" : "-", ms_text(diff), alt.reason);
      }
    }
    for (const std::string& name : transport_names()) {
      const auto it = cannot.find(name);
      if (it != cannot.end()) out += fmt::format("  {:<19} cannot carry {}\n", name, it->second);
    }
    std::cout << out;
  });
}

}  // namespace servesim
