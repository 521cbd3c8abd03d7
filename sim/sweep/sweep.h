// `servesim sweep`: a grid's points run in parallel, one CSV row per point with every metric's mean across the
// seeds and its 95 % confidence interval; sharded runs write part files that `servesim merge` combines.
//
// The CSV (RFC 4180; one line per row):
//   point,<each path the points set>,seeds,<metric>,<metric>_ci95,...
// point is the 0-based expansion index (grid.h); a path's cell is the point's value ("" when the point does not
// set it); seeds the runs averaged; then for every metric of flatten_summary (runner.h), in summary.json's order,
// the mean over the seeds and the half-width of its Student-t 95 % interval (stats.h; empty with one seed).
// Numbers are written in fmt's shortest round-trip form ("31.348146379999974", "1e-07"). Rows are in point
// order whatever the order in which runs finish, so equal grids give byte-identical files for any --jobs.
//
// A part file (a sharded sweep) is the same CSV for the shard's points, after one line
//   # servesim sweep part i/N, grid <fingerprint>, P points
// (P: the grid's points); a shard without points (more shards than points) is that line alone. merge_parts checks
// and combines parts into the unsharded file, byte for byte.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/sweep/grid.h"
#include "sim/sweep/runner.h"
#include "sim/sweep/shard.h"

namespace servesim {

struct SweepOptions {
  int jobs = 0;                // threads (0: the hardware's concurrency)
  std::optional<Shard> shard;  // run only this shard's points and write a part file
  ProgressFn progress;         // after each run (runner.h)
};

struct SweepOutput {
  std::string csv;          // the file's text (a part file's with a shard)
  std::size_t points = 0;   // points run (the shard's)
  std::size_t runs = 0;     // points x seeds
  int threads = 1;          // threads used
};

// Checks every point of the grid (all shards' points: every shard reports the same errors) by loading its
// scenario, then runs the points of the shard (all without one). InputError: grid_error() of the lowest failing
// point; points whose metrics would differ (an aggregated point and a prefill/decode one, or different pools).
[[nodiscard]] SweepOutput run_sweep(const Grid& grid, const SweepOptions& options);

// The first line of a part file (with its newline).
[[nodiscard]] std::string part_line(const Grid& grid, const Shard& shard);

// A CSV field: as it is, or in double quotes (inner quotes doubled) when it has a comma, quote or leading or
// trailing space; control characters as C escapes (\n, \t, \x01), so a row stays one line.
[[nodiscard]] std::string csv_field(std::string_view text);

// A number as the CSV writes it (fmt's shortest round-trip form).
[[nodiscard]] std::string csv_number(double v);

struct MergeOutput {
  std::string csv;
  std::size_t points = 0;
  std::size_t parts = 0;
};

// Combines the part files at `paths` (each read whole) into the unsharded CSV: its rows sorted by point. Throws
// InputError naming the file (and line) when a file is not a part, parts come from different grids (fingerprint,
// shard count or point count differ) or have different columns, a shard is given twice or is missing, a row's
// point is outside its shard, or a point is missing or given twice.
[[nodiscard]] MergeOutput merge_parts(const std::vector<std::string>& paths);

}  // namespace servesim
