// servesim ingest ucx_perftest LOG... --transport NAME [--out transports.csv] [--json]
// servesim ingest nixlbench LOG... --transport NAME [--out transports.csv] [--json]
// Read ucx_perftest / nixlbench logs (models/hw/transport_ingest.h), print their samples, and add them as rows of
// the named transport to a transport profile (models/net/transport_calibration.h; created if missing; rows of the
// same log and transport are replaced), written like collectives.csv below. A log whose memory is not GPU memory on
// both sides is a warning when printing and an error with --out.
//
// servesim ingest nccl LOG... [--collective NAME] [--out collectives.csv] [--json]
// Reads nccl-tests logs, prints every sample with the log's busbw next to the busbw recomputed from size, time
// and rank count, and adds the out-of-place rows to a profile's collectives.csv (created if missing; rows of the
// same log are replaced). The file is written through a temporary file and a rename, after every log has been
// read, so bad input leaves it untouched. A log whose busbw column contradicts the collective's factor (wrong
// --collective or rank count) is a warning when printing and an error with --out.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/hw/nccl_ingest.h"
#include "models/hw/transport_ingest.h"
#include "models/net/transport.h"

namespace servesim {
namespace {

struct NcclArgs {
  std::vector<std::string> logs;
  std::string collective;
  std::string out;
  bool json = false;
};

std::string read_existing(const std::string& path, const std::string& what = "the existing collectives.csv") {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError(path + ": --out exists and is not a file");
  return read_input_file(path, what, kMaxLineFileBytes);
}

// Writes through a temporary file in the same directory and a rename; on failure removes the temporary file
// and leaves `path` as it was.
void replace_file(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const fs::path tmp = p.parent_path() / ("." + p.filename().string() + ".tmp");
  std::error_code ec;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw InputError(path + ": cannot write (" + tmp.string() + ")");
    f << text;
    f.flush();
    if (!f) {
      f.close();
      fs::remove(tmp, ec);
      throw InputError(path + ": write failed");
    }
  }
  fs::rename(tmp, p, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw InputError(path + ": cannot replace (" + ec.message() + ")");
  }
}

std::size_t rows_written(const std::vector<NcclLog>& logs) {
  std::size_t n = 0;
  for (const auto& l : logs) {
    for (const auto& s : l.samples) n += !s.in_place && s.bytes > 0;
  }
  return n;
}

void print_table(const std::vector<NcclLog>& logs) {
  for (const auto& l : logs) {
    std::cout << fmt::format("{}: {} over {} ranks, {} samples, {} lines skipped\n", l.source, l.collective, l.ranks,
                             l.samples.size(), l.skipped_lines);
    std::cout << fmt::format("{:>14}  {:<5}{:>11}{:>10}{:>10}{:>12}{:>10}\n", "size_B", "place", "time_us",
                             "algbw", "busbw", "busbw_calc", "diff_%");
    for (const auto& s : l.samples) {
      const auto diff = busbw_diff_pct(s);
      const std::string d = diff ? fmt::format("{:+.2f}{}", *diff, busbw_precision_allows(s) ? " " : "~") : "-  ";
      std::cout << fmt::format("{:>14.0f}  {:<5}{:>11}{:>10.2f}{:>10.2f}{:>12.4f}{:>10}\n", s.bytes,
                               s.in_place ? "in" : "out", s.time_us, s.algbw_GBps, s.busbw_GBps,
                               recomputed_busbw_GBps(s), d);
    }
  }
  std::cout << "busbw_calc = size / time x the nccl-tests factor; ~ = the log's busbw has too few digits for a "
               "0.5 % comparison (< 1 GB/s)\n";
}

nlohmann::ordered_json to_json(const std::vector<NcclLog>& logs) {
  nlohmann::ordered_json j;
  j["logs"] = nlohmann::ordered_json::array();
  for (const auto& l : logs) {
    nlohmann::ordered_json o;
    o["source"] = l.source;
    o["collective"] = l.collective;
    o["ranks"] = l.ranks;
    o["skipped_lines"] = l.skipped_lines;
    o["samples"] = nlohmann::ordered_json::array();
    for (const auto& s : l.samples) {
      const auto diff = busbw_diff_pct(s);
      o["samples"].push_back({{"bytes", s.bytes},
                              {"in_place", s.in_place},
                              {"time_us", s.time_us},
                              {"algbw_GBps", s.algbw_GBps},
                              {"busbw_GBps", s.busbw_GBps},
                              {"busbw_recomputed_GBps", recomputed_busbw_GBps(s)},
                              {"diff_pct", diff ? nlohmann::ordered_json(*diff) : nlohmann::ordered_json()},
                              {"precise", busbw_precision_allows(s)}});
    }
    j["logs"].push_back(std::move(o));
  }
  return j;
}

void run_nccl(const NcclArgs& a) {
  std::vector<NcclLog> logs;
  for (const auto& path : a.logs) {
    logs.push_back(read_nccl_tests_log(path, a.collective.empty() ? std::nullopt : std::optional(a.collective)));
  }
  std::vector<std::string> warnings;
  for (const auto& l : logs) {
    if (auto m = busbw_mismatch(l)) {
      if (!a.out.empty()) throw InputError(*m + " (nothing written)");
      warnings.push_back(*m);
    }
  }
  std::size_t rows = 0;
  if (!a.out.empty()) {
    const std::string merged = merge_collectives_csv(read_existing(a.out), a.out, logs);
    replace_file(a.out, merged);
    rows = rows_written(logs);
  }
  if (a.json) {
    auto j = to_json(logs);
    if (!a.out.empty()) j["out"] = {{"path", a.out}, {"rows", rows}};
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    print_table(logs);
    if (!a.out.empty()) std::cout << fmt::format("wrote {} out-of-place rows to {}\n", rows, a.out);
  }
  for (const auto& w : warnings) std::cerr << "servesim: warning: " << w << "\n";
}

struct TransportArgs {
  std::vector<std::string> logs;
  std::string transport;
  std::string out;
  bool json = false;
};

void run_transport_ingest(const TransportArgs& a, bool nixlbench) {
  if (!transport_registry().contains(a.transport)) {
    (void)transport_registry().create(a.transport, "--transport");  // throws, listing the valid names
  }
  std::vector<TransportLog> logs;
  for (const auto& path : a.logs) logs.push_back(nixlbench ? read_nixlbench_log(path) : read_ucx_perftest_log(path));
  std::vector<std::string> warnings;
  for (const auto& l : logs) {
    if (gpu_memory_both_sides(l)) continue;
    const std::string m = fmt::format("{}: memory {}: a GPU-to-GPU transport profile needs GPU memory (cuda / VRAM) "
                                      "on both sides",
                                      l.source, l.memory);
    if (!a.out.empty()) throw InputError(m + " (nothing written)");
    warnings.push_back(m);
  }
  std::size_t rows = 0;
  for (const auto& l : logs) rows += l.samples.size();
  if (!a.out.empty()) {
    replace_file(a.out, merge_transport_csv(read_existing(a.out, "the existing transport profile"), a.out, logs,
                                            a.transport));
  }
  if (a.json) {
    nlohmann::ordered_json j;
    j["logs"] = nlohmann::ordered_json::array();
    for (const auto& l : logs) {
      nlohmann::ordered_json o{{"source", l.source}, {"tool", l.tool},         {"test", l.test},
                               {"memory", l.memory}, {"skipped_lines", l.skipped_lines}};
      o["samples"] = nlohmann::ordered_json::array();
      for (const auto& smp : l.samples) {
        o["samples"].push_back({{"bytes", smp.bytes},
                                {"time_us", smp.time_us},
                                {"mode", smp.stream ? "stream" : "single"},
                                {"bandwidth_GBps", smp.bandwidth_GBps},
                                {"line", smp.line}});
      }
      j["logs"].push_back(std::move(o));
    }
    if (!a.out.empty()) j["out"] = {{"path", a.out}, {"transport", a.transport}, {"rows", rows}};
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    for (const auto& l : logs) {
      std::cout << fmt::format("{}: {}{}{}, {} samples, {} lines skipped\n", l.source, l.tool,
                               l.test.empty() ? "" : " " + l.test,
                               l.memory.empty() ? "" : " (" + l.memory + ")", l.samples.size(), l.skipped_lines);
      std::cout << fmt::format("{:>14}  {:<7}{:>14}{:>12}\n", "bytes", "mode", "time_us", "GB/s");
      for (const auto& smp : l.samples) {
        std::cout << fmt::format("{:>14.0f}  {:<7}{:>14.3f}{:>12.3f}\n", smp.bytes, smp.stream ? "stream" : "single",
                                 smp.time_us, smp.bandwidth_GBps);
      }
    }
    if (!a.out.empty()) std::cout << fmt::format("wrote {} {} rows to {}\n", rows, a.transport, a.out);
  }
  for (const auto& w : warnings) std::cerr << "servesim: warning: " << w << "\n";
}

}  // namespace

void add_ingest_command(CLI::App& app) {
  auto* ingest = app.add_subcommand("ingest", "convert measurements into calibration profile data");
  ingest->require_subcommand(1);
  auto* nccl = ingest->add_subcommand(
      "nccl", "read nccl-tests logs, check their busbw, and add the out-of-place rows to a collectives.csv");
  auto args = std::make_shared<NcclArgs>();
  nccl->add_option("logs", args->logs, "nccl-tests output logs (all_reduce_perf, all_gather_perf, ...)")->required();
  nccl->add_option("--collective", args->collective,
                   "the collective measured, when the log does not name it (" + nccl_collective_names() + ")");
  nccl->add_option("--out", args->out, "collectives.csv to create or add the out-of-place rows to");
  nccl->add_flag("--json", args->json, "print JSON");
  nccl->callback([args] { run_nccl(*args); });
  for (const bool nixl : {false, true}) {
    auto* sub = ingest->add_subcommand(
        nixl ? "nixlbench" : "ucx_perftest",
        nixl ? "read nixlbench logs and add their rows to a transport profile (one transport's measurements)"
             : "read ucx_perftest logs and add their results to a transport profile (one transport's measurements)");
    auto targs = std::make_shared<TransportArgs>();
    sub->add_option("logs", targs->logs, nixl ? "nixlbench output logs" : "ucx_perftest output logs")->required();
    sub->add_option("--transport", targs->transport, "the transport measured: " + transport_names_text())->required();
    sub->add_option("--out", targs->out, "transport profile CSV to create or add the rows to");
    sub->add_flag("--json", targs->json, "print JSON");
    sub->callback([targs, nixl] { run_transport_ingest(*targs, nixl); });
  }
}

}  // namespace servesim
