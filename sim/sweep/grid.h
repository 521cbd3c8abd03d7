// A sweep's grid: a base scenario, the --set overrides that make its points, and the seeds each point runs with.
//
//   scenario = "../quickstart.toml"      # the base scenario, relative to the grid file's folder (required)
//   seeds = [1, 2, 3]                    # every point runs once per seed (default: the scenario's [sim] seed)
//   [set]                                # overrides of every point
//   workload.num_requests = 300
//   [axes]                               # cartesian axes: a scenario path -> its values
//   workload.arrival.rate = [5.0, 10.0, 20.0]
//   engine.max_num_seqs = [64, 256]
//   [[points]]                           # listed points: each a set of overrides
//   engine.max_num_batched_tokens = 2048
//
// A path is a scenario key as `--set` takes it, written as TOML dotted keys (workload.arrival.rate) or quoted
// ("workload.arrival.rate"); a value is any TOML value (an inline table `{ impl = "gamma", ... }` replaces a
// whole table, as --set does). Paths of [set], [axes] and one listed point must not overlap (be equal, or one
// inside the other).
//
// Expansion order (the CSV's point numbers, 0-based): the listed points in file order (one empty point without
// [[points]]), each combined with every combination of the axes, the axes in file order with the first varying
// slowest (nested loops, as itertools.product); seeds are innermost: point p runs seeds[0], seeds[1], ... A point
// applies [set] first, then its listed point's overrides, then one value per axis (in axis order).
// Limits: at most kMaxGridPoints points and kMaxGridSeeds seeds; an axis with no value, a value given twice in
// one axis, a seed given twice, and unknown keys are errors (InputError naming grid file:line and the key).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "models/common/error.h"
#include "sim/sweep/runner.h"

namespace servesim {

inline constexpr std::size_t kMaxGridPoints = 1'000'000;
inline constexpr std::size_t kMaxGridSeeds = 10'000;

// One override of the grid.
struct GridSet {
  std::string path;     // the scenario path: "workload.arrival.rate"
  std::string value;    // the TOML text --set takes: "5.0", "\"vllm\"", "{ impl = 'poisson', rate = 5.0 }"
  std::string display;  // the CSV's cell: a string's text without quotes, else `value`
  ErrorPlace place;     // the grid file, its line and the grid key ("axes.workload.arrival.rate")
};

struct GridPoint {
  std::vector<GridSet> sets;  // its listed point's, then one per axis (not [set]'s)
};

struct Grid {
  std::string file;                  // the grid file, as named
  std::string scenario;              // the base scenario (resolved against the grid's folder)
  std::vector<GridSet> fixed;        // [set], in file order
  std::vector<std::string> columns;  // the paths the points set: listed points' in first appearance, then axes'
  std::vector<GridPoint> points;     // in expansion order
  std::vector<std::uint64_t> seeds;  // empty: each point runs once, with the scenario's seed
  // SHA-1 name-based UUID (Boost.Uuid) of the grid's meaning: the scenario path as written in the grid and the
  // base scenario's bytes, every point's overrides and the seeds (not files the scenario names, nor comments of
  // the grid). Sweep parts with equal fingerprints come from the same grid.
  std::string fingerprint;

  // Seeds per point (1 without `seeds`).
  [[nodiscard]] std::size_t runs_per_point() const { return seeds.empty() ? 1 : seeds.size(); }
  // The runs of point `p`, one per seed in the order of `seeds`.
  [[nodiscard]] std::vector<PointSpec> runs(std::size_t p) const;
  // Point p's CSV cell of columns[c] ("" when it does not set that path).
  [[nodiscard]] std::string cell(std::size_t p, std::size_t c) const;
  // "path=display, ..." of point p (for messages; "the base scenario" when it sets nothing).
  [[nodiscard]] std::string describe(std::size_t p) const;
};

// Reads and expands the grid at `path` (InputError: unreadable, not TOML, unknown key, bad value, missing base
// scenario, limits). The points are not loaded here: check_points (runner.h) does that.
[[nodiscard]] Grid load_grid(const std::string& path);

// An InputError of point p's run (`seed`: its seed, or nullopt for the scenario's) in terms of the grid: an
// error about a path the grid sets names the grid's file:line and key; any other is prefixed with the point
// ("GRID: point 3 (workload.arrival.rate=20.0, seed 2): ...").
[[nodiscard]] InputError grid_error(const Grid& grid, std::size_t p, const std::optional<std::uint64_t>& seed,
                                    const InputError& e);

}  // namespace servesim
