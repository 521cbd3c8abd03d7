// servesim sweep GRID.toml --out FILE.csv [--jobs N] [--shard i/N]
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "models/common/error.h"
#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/sweep/sweep.h"

namespace servesim {

namespace {

// Progress on stderr, rewritten in place: "sweep: 5/9 runs, 2.3 runs/s, ETA 2 s" (at most every 0.2 s, and at
// the end).
class Progress {
 public:
  void operator()(std::size_t done, std::size_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
    std::string line = fmt::format("\rsweep: {}/{} runs, {:.1f} runs/s", done, total, rate);
    if (done < total && rate > 0) line += fmt::format(", ETA {:.0f} s", double(total - done) / rate);
    std::cerr << line << "\x1b[K" << (done == total ? "\n" : "") << std::flush;
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "sweep", "run a grid of scenario variants x seeds in parallel; one CSV row per point with 95% intervals");
  auto grid_path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto jobs = std::make_shared<int>(0);
  auto shard_text = std::make_shared<std::string>();
  cmd->add_option("grid", *grid_path, "grid TOML file (scenario, seeds, [set], [axes], [[points]])")->required();
  cmd->add_option("--out", *out, "the CSV to write (a part file with a shard)")->required();
  cmd->add_option("--jobs", *jobs, "simulations run at once (default: the number of hardware threads)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--shard", *shard_text,
                  "run the i-th of N shares of the points (0 <= i < N) and write a part file for `servesim merge`; "
                  "without it, from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or JOB_COMPLETION_INDEX/"
                  "SERVESIM_SHARD_COUNT when set");
  cmd->callback([grid_path, out, jobs, shard_text] {
    SweepOptions opts;
    opts.jobs = *jobs;
    opts.shard = shard_text->empty() ? shard_from_env([](const char* name) { return std::getenv(name); })
                                     : std::optional<Shard>(parse_shard(*shard_text));
    const Grid grid = load_grid(*grid_path);
    OutputFiles files;
    files.expect(*out);
    Progress progress;
    if (::isatty(STDERR_FILENO) == 1) opts.progress = std::ref(progress);
    const SweepOutput result = run_sweep(grid, opts);
    files.add(*out, result.csv);
    files.commit();
    const std::size_t seeds = grid.runs_per_point();
    std::cout << "wrote " << *out << ": ";
    if (opts.shard) {
      std::cout << "shard " << to_string(*opts.shard) << ", " << result.points << " of " << grid.points.size()
                << " points";
    } else {
      std::cout << result.points << " points";
    }
    std::cout << " x " << seeds << (seeds == 1 ? " seed" : " seeds") << " = " << result.runs << (result.runs == 1 ? " run on " : " runs on ")
              << result.threads << (result.threads == 1 ? " thread" : " threads") << "\n";
  });
}

}  // namespace servesim
