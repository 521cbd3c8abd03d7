// servesim step SCENARIO [--set ...] --prefill N[:CTX]... --decode BxL... [--json]
// Prints one step's predicted time and its per-operator breakdown. Token counts are at most 1e7 per sequence
// (models/common/units.h kMaxTokensPerRequest) and B at most 1e8 sequences; past them is an InputError.
#include <algorithm>
#include <charconv>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/common/error.h"
#include "sim/cli/commands.h"

namespace servesim {
namespace {

// A count on the command line, at most `max` (`limit` names it in the message).
std::int64_t parse_int(const std::string& s, const std::string& flag, std::int64_t max, const char* limit) {
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && p == s.data() + s.size() && v > max)) {
    throw InputError(flag + ": '" + s + "' is past the limit of " + std::to_string(max) + " " + limit);
  }
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) {
    throw InputError(flag + ": '" + s + "' is not a non-negative integer");
  }
  return v;
}

std::int64_t parse_tokens(const std::string& s, const std::string& flag) {
  return parse_int(s, flag, kMaxTokensPerRequest, "tokens per request");
}

// `window`: the model's sliding window (0 = none), for the tokens its sliding layers read at decode.
BatchShape parse_batch(const std::vector<std::string>& prefills, const std::vector<std::string>& decodes,
                       std::int64_t window) {
  BatchShape b;
  b.window = window;
  for (const auto& p : prefills) {
    const auto colon = p.find(':');
    PrefillChunk c;
    c.tokens = parse_tokens(p.substr(0, colon), "--prefill");
    c.context = colon == std::string::npos ? 0 : parse_tokens(p.substr(colon + 1), "--prefill");
    if (c.tokens + c.context > kMaxTokensPerRequest) {
      throw InputError("--prefill '" + p + "': tokens + cached tokens are past the limit of " +
                       std::to_string(kMaxTokensPerRequest) + " tokens per request");
    }
    if (c.tokens == 0) throw InputError("--prefill: a chunk needs at least one token");
    b.prefills.push_back(c);
    ++b.num_sampled;
  }
  for (const auto& d : decodes) {
    const auto x = d.find('x');
    if (x == std::string::npos) throw InputError("--decode '" + d + "': expected BxL (B sequences of L cached tokens)");
    // B sequences in one step: at most the requests of a run; L cached tokens: below the tokens of a request.
    const std::int64_t n = parse_int(d.substr(0, x), "--decode", kMaxRequestsPerRun, "sequences");
    const std::int64_t len = parse_int(d.substr(x + 1), "--decode", kMaxTokensPerRequest - 1, "cached tokens");
    b.num_decodes += n;
    b.decode_context_tokens += n * (len + 1);
    if (window > 0) b.decode_window_context_tokens += n * std::min(len + 1, window);
    b.num_sampled += n;
  }
  if (b.empty()) throw InputError("step: give at least one --prefill or --decode");
  // Sums over repeated flags stay exact: at most 1e8 x 1e7 = 1e15 per flag; bound the total the same way.
  if (b.num_decodes > kMaxRequestsPerRun) {
    throw InputError("--decode: " + std::to_string(b.num_decodes) + " sequences in all, past the limit of " +
                     std::to_string(kMaxRequestsPerRun));
  }
  return b;
}

}  // namespace

void add_step_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("step", "predict one engine step's time with a per-operator breakdown");
  auto args = std::make_shared<ScenarioArgs>();
  auto prefills = std::make_shared<std::vector<std::string>>();
  auto decodes = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  args->add_to(cmd, false);
  cmd->add_option("--prefill", *prefills, "a prefill chunk: TOKENS or TOKENS:CACHED (repeatable)");
  cmd->add_option("--decode", *decodes, "decode sequences: BxL = B sequences with L cached tokens (repeatable)");
  cmd->add_flag("--json", *json, "print JSON");
  cmd->callback([=] {
    parse_batch(*prefills, *decodes, 0);  // flag errors before the scenario's
    const ScenarioLoader loader(args->path, args->options());
    const auto& model = *loader.scenario().step_model;
    const BatchShape batch = parse_batch(*prefills, *decodes, model.arch().sliding_window);
    const StepCost c = model.breakdown(batch);
    if (*json) {
      nlohmann::ordered_json j;
      j["total_ms"] = to_ms(c.total());
      j["gpu_ms"] = to_ms(c.gpu);
      j["overhead_ms"] = to_ms(c.overhead);
      if (model.cuda_graphs().modelled) {
        j["cuda_graph"] = {{"run", to_string(c.run)}, {"tokens", c.rank_tokens}, {"padded_tokens", c.padded_tokens},
                           {"host_ms", to_ms(c.host)}};
      }
      j["ops"] = nlohmann::ordered_json::array();
      for (const auto& o : c.ops) {
        j["ops"].push_back({{"name", o.name}, {"time_ms", to_ms(o.time)}, {"flops", o.flops.v},
                            {"bytes", o.bytes.v}, {"bound", to_string(o.bound)}});
      }
      std::cout << j.dump(2) << "\n";
      return;
    }
    const auto& sc = loader.scenario();
    const ParallelConfig& par = sc.parallel;
    std::string layout = fmt::format("TP {}, PP {}", par.tensor, par.pipeline);
    if (par.data > 1) layout += fmt::format(", DP {} ({})", par.data, par.all2all_backend);
    if (par.expert > 1) layout += fmt::format(", EP {}", par.expert);
    if (par.enable_eplb) layout += fmt::format(", EPLB +{} experts", par.num_redundant_experts);
    std::cout << fmt::format("{} on {} x{} ({}), predictor {}: {} tokens, {} sequences\n", sc.arch.name,
                             sc.gpu.name, par.gpus(), layout, model.predictor().name(), batch.total_tokens(),
                             batch.num_seqs());
    const CudaGraphConfig& graphs = model.cuda_graphs();
    if (graphs.modelled) {
      // With data parallelism the busiest rank's tokens decide the graph.
      const std::string tokens = fmt::format("{} tokens{}", c.rank_tokens, par.data > 1 ? " on the busiest rank" : "");
      std::string how;
      if (c.run == GraphRun::eager) {
        how = "eager (" + graphs.eager_reason(batch.prefills.empty(), c.rank_tokens) + ")";
      } else {
        how = fmt::format("{}, {}", c.run == GraphRun::full ? "full graph" : "piecewise graphs", tokens);
        if (c.padded_tokens != c.rank_tokens) how += fmt::format(" padded to {}", c.padded_tokens);
      }
      std::cout << fmt::format("CUDA graphs: {}; the host issues the step in {:.4f} ms\n", how, to_ms(c.host));
    }
    std::cout << fmt::format("{:<22}{:>11}{:>8}{:>12}{:>12}  {}\n", "op", "time_ms", "share", "GFLOP", "MB", "bound");
    for (const auto& o : c.ops) {
      std::cout << fmt::format("{:<22}{:>11.4f}{:>7.1f}%{:>12.2f}{:>12.2f}  {}\n", o.name, to_ms(o.time),
                               100.0 * (o.time / c.total()), o.flops.v / 1e9, o.bytes.v / 1e6, to_string(o.bound));
    }
    std::cout << fmt::format("{:<22}{:>11.4f}\n{:<22}{:>11.4f}\n{:<22}{:>11.4f}\n", "gpu", to_ms(c.gpu),
                             "engine overhead", to_ms(c.overhead), "total", to_ms(c.total()));
  });
}

}  // namespace servesim
