// servesim plan PLAN.toml --out DIR [--jobs N]
//               | --shard i/N --out PART.json [--jobs N]
//               | --merge PART.json... --out DIR
// The SLO capacity planner (sim/plan/): the cheapest fleet that serves the plan's target rate within its SLOs.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "models/common/error.h"
#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/plan/planner.h"
#include "sim/plan/report.h"
#include "sim/sweep/runner.h"

namespace servesim {

namespace {

struct PlanArgs {
  std::string plan;
  std::string out;
  std::string shard;
  std::vector<std::string> merge;
  int jobs = 0;  // simulations at once; 0: one per hardware thread
};

void plan_command(const PlanArgs& args) {
  const PlanSpec spec = read_plan(args.plan);
  const ParallelFor pool = thread_pool_for(static_cast<unsigned>(pool_threads(args.jobs, spec.candidates.size() * 64)));
  OutputFiles files;
  // --shard, else the shard a batch system gave this process (as servesim sweep; not with --merge).
  const std::optional<Shard> shard =
      !args.shard.empty() ? std::optional<Shard>(parse_shard(args.shard))
      : args.merge.empty() ? shard_from_env([](const char* name) { return std::getenv(name); })
                           : std::nullopt;
  if (shard) {
    files.expect(args.out);
    const std::vector<std::size_t> which = shard_candidates(spec.candidates.size(), *shard);
    const std::vector<CandidateResult> results = run_candidates(spec, which, pool);
    files.add(args.out, plan_part(spec, *shard, results));
    files.commit();
    std::cout << "plan " << spec.file << " shard " << to_string(*shard) << ": " << which.size() << " of "
              << spec.candidates.size() << " candidates";
    for (std::size_t k = 0; k < which.size(); ++k) std::cout << (k ? ", " : " (") << spec.candidates[which[k]].label();
    std::cout << (which.empty() ? "" : ")") << "\nwrote " << args.out
              << "\nassemble the parts with: servesim plan " << spec.file << " --merge PART... --out DIR\n";
    return;
  }
  const std::string plan_path = (std::filesystem::path(args.out) / "plan.csv").string();
  const std::string pareto_path = (std::filesystem::path(args.out) / "pareto.csv").string();
  files.expect(plan_path);
  files.expect(pareto_path);
  std::vector<CandidateResult> results = args.merge.empty()
                                             ? run_candidates(spec, shard_candidates(spec.candidates.size(), Shard{}), pool)
                                             : read_plan_parts(spec, args.merge);
  const PlanResult result = plan_result(spec, std::move(results), pool);
  files.add(plan_path, plan_csv(spec, result));
  files.add(pareto_path, pareto_csv(spec, result));
  files.commit();
  std::cout << format_plan(spec, result);
  std::cout << "wrote " << plan_path << " and " << pareto_path << "\n";
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plan", "find the cheapest fleet that serves a target rate within P99 TTFT / TPOT SLOs");
  auto args = std::make_shared<PlanArgs>();
  cmd->add_option("plan", args->plan, "plan TOML file (scenarios/plans/)")->required();
  cmd->add_option("--out", args->out,
                  "output directory for plan.csv and pareto.csv (with --shard: the part file to write)")
      ->required();
  auto* shard = cmd->add_option("--shard", args->shard,
                                "run the i-th of N shares of the candidates (0 <= i < N: candidate c in share c mod "
                                "N) and write a part file to --out; without it, from SLURM_ARRAY_TASK_ID/"
                                "SLURM_ARRAY_TASK_COUNT or JOB_COMPLETION_INDEX/SERVESIM_SHARD_COUNT when set");
  cmd->add_option("--merge", args->merge, "assemble the part files of every shard into the plan's outputs")
      ->excludes(shard);
  cmd->add_option("--jobs", args->jobs, "simulations run at once (default: the number of hardware threads)")
      ->check(CLI::Range(1, 4096));
  cmd->callback([args] { plan_command(*args); });
}

}  // namespace servesim
