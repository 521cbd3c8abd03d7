// servesim sweep and merge (sim/sweep/): grid expansion, the Student-t interval, flattened metrics, runs that do
// not depend on --jobs, shards merged back to the unsharded CSV, shard specs from flags and batch systems, and
// bad grids and parts (one line naming file:line or the key; the CLI exits 2 and writes nothing).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <map>

#include "helpers.h"
#include "sim/metrics/sink.h"
#include "sim/sweep/grid.h"
#include "sim/sweep/runner.h"
#include "sim/sweep/stats.h"
#include "sim/sweep/sweep.h"

using namespace servesim;
using namespace servesim::test;

namespace {

// A grid file over the quickstart (by absolute path) with `body` after the scenario line.
std::string grid_file(const std::filesystem::path& dir, const std::string& body, const std::string& name = "grid.toml") {
  return write_file(dir / name, "scenario = \"" + scenario_path("quickstart.toml") + "\"\n" + body);
}

// 2 rates x 2 seeds, 50 requests per run.
const char* kSmallGrid = R"(seeds = [1, 2]
[set]
workload.num_requests = 50
[axes]
workload.arrival.rate = [5.0, 20.0]
)";

// 3 rates x 2 seeds, 40 requests per run.
const char* kThreeRates = R"(seeds = [1, 2]
[set]
workload.num_requests = 40
[axes]
workload.arrival.rate = [5.0, 10.0, 20.0]
)";

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string f; std::getline(ss, f, ',');) out.push_back(f);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

// The cell of `column` in data row `row` (0-based) of a CSV without quoted fields.
std::string cell(const std::string& csv, std::size_t row, const std::string& column) {
  const auto lines = split_lines(csv);
  const auto header = split_fields(lines.at(0));
  const auto fields = split_fields(lines.at(row + 1));
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == column) return fields.at(i);
  }
  FAIL("no column " << column);
  return "";
}

// Message of the InputError of loading the grid `body` and checking its points ("" when none).
std::string grid_error_of(const std::filesystem::path& dir, const std::string& body) {
  const std::string path = grid_file(dir, body);
  return input_error([&] {
    const Grid g = load_grid(path);
    (void)run_sweep(g, SweepOptions{1, std::nullopt, {}});
  });
}

}  // namespace

TEST_CASE("sweep grid: listed points x axes (first axis slowest), seeds innermost, [set] first", "[sweep]") {
  const auto dir = temp_dir("sweep-grid");
  const Grid g = load_grid(grid_file(dir, R"(seeds = [7, 3]
[set]
workload.num_requests = 50
[[points]]
engine.max_num_seqs = 64
[[points]]
engine.max_num_seqs = 128
engine.enable_chunked_prefill = false
[axes]
workload.arrival.rate = [5.0, 10]
"workload.prompt_tokens.mean" = [512, 1024, 2048]
)"));
  REQUIRE(g.points.size() == 12);  // 2 listed points x 2 rates x 3 means
  CHECK(g.columns == std::vector<std::string>{"engine.max_num_seqs", "engine.enable_chunked_prefill",
                                              "workload.arrival.rate", "workload.prompt_tokens.mean"});
  // Point p = listed * 6 + rate * 3 + mean.
  const auto row = [&g](std::size_t p) {
    std::string s;
    for (std::size_t c = 0; c < g.columns.size(); ++c) s += (c ? "|" : "") + g.cell(p, c);
    return s;
  };
  CHECK(row(0) == "64||5.0|512");
  CHECK(row(1) == "64||5.0|1024");
  CHECK(row(2) == "64||5.0|2048");
  CHECK(row(3) == "64||10|512");
  CHECK(row(5) == "64||10|2048");
  CHECK(row(6) == "128|false|5.0|512");
  CHECK(row(11) == "128|false|10|2048");
  const std::vector<PointSpec> runs = g.runs(5);
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].seed == 7u);
  CHECK(runs[1].seed == 3u);
  CHECK(runs[0].scenario == scenario_path("quickstart.toml"));
  const std::vector<std::pair<std::string, std::string>> sets = {{"workload.num_requests", "50"},
                                                                 {"engine.max_num_seqs", "64"},
                                                                 {"workload.arrival.rate", "10"},
                                                                 {"workload.prompt_tokens.mean", "2048"}};
  CHECK(runs[0].sets == sets);
  CHECK(runs[1].sets == sets);
  CHECK(g.describe(6) == "engine.max_num_seqs=128, engine.enable_chunked_prefill=false, workload.arrival.rate=5.0, "
                         "workload.prompt_tokens.mean=512");
}

TEST_CASE("sweep grid: values as --set text, strings shown unquoted - the fingerprint follows the meaning", "[sweep]") {
  const auto dir = temp_dir("sweep-values");
  const Grid g = load_grid(grid_file(dir, R"([axes]
engine.scheduler = [{ impl = "vllm" }]
workload.arrival.rate = [0.1, 2e3]
router.impl = ["round_robin"]
)"));
  REQUIRE(g.points.size() == 2);
  CHECK(load_grid(grid_file(dir, "[[points]]\nworkload.arrival = { impl = \"poisson\", rate = 2.5 }\n", "inline.toml"))
            .points.at(0).sets.at(0).value == "{ impl = 'poisson', rate = 2.5 }");
  CHECK(g.points[1].sets[0].value == "{ impl = 'vllm' }");
  CHECK(g.points[1].sets[1].value == "2000.0");  // a float stays a float
  CHECK(g.points[0].sets[1].value == "0.1");     // fmt's shortest form, not 0.10000000000000001
  CHECK(g.points[0].sets[2].value == "'round_robin'");
  CHECK(g.cell(0, 2) == "round_robin");
  CHECK(g.runs(0).at(0).seed == std::nullopt);  // no seeds: the scenario's own
  // The same grid elsewhere (and with comments) has the same fingerprint; another seed list another.
  const auto other = temp_dir("sweep-values-other");
  CHECK(load_grid(grid_file(other, "# a comment\n" + std::string(kSmallGrid))).fingerprint ==
        load_grid(grid_file(dir, kSmallGrid, "small.toml")).fingerprint);
  std::string reseeded = kSmallGrid;
  reseeded.replace(reseeded.find("[1, 2]"), 6, "[1, 3]");
  CHECK(load_grid(grid_file(other, reseeded)).fingerprint != load_grid(grid_file(dir, kSmallGrid, "small.toml")).fingerprint);
}

TEST_CASE("sweep stats: mean and Student-t 95% half-width", "[sweep]") {
  // Student's t with 2 degrees of freedom has F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so its 0.975 quantile is
  // 0.95 / sqrt(2 x 0.975 x 0.025) = 4.30265272974946...; with 1, tan(0.475 pi) = 12.7062047361747...
  const double t2 = 0.95 / std::sqrt(2 * 0.975 * 0.025);
  CHECK(t_quantile_975(2) == Approx(t2).epsilon(1e-14));
  CHECK(t_quantile_975(2) == Approx(4.302652729749464).epsilon(1e-14));
  CHECK(t_quantile_975(1) == Approx(std::tan(0.475 * M_PI)).epsilon(1e-14));
  // 1, 2, 3: mean 2, s = 1, half-width t2 x 1 / sqrt(3) = 0.95 / sqrt(0.14625) = 2.48413771175033...
  const MeanCi ci = mean_ci95({1, 2, 3});
  CHECK(ci.mean == 2.0);
  REQUIRE(ci.half_width);
  CHECK(*ci.half_width == Approx(0.95 / std::sqrt(0.14625)).epsilon(1e-14));
  CHECK(*ci.half_width == Approx(2.484137711750331).epsilon(1e-14));
  // One value: no interval. Equal values: a zero one.
  const MeanCi one = mean_ci95({4.5});
  CHECK(one.mean == 4.5);
  CHECK_FALSE(one.half_width);
  CHECK(mean_ci95({7, 7, 7, 7}).half_width == 0.0);
  CHECK_THROWS_AS(mean_ci95({}), std::invalid_argument);
}

TEST_CASE("sweep flatten: every number of summary.json under a stable name", "[sweep]") {
  nlohmann::ordered_json s = nlohmann::ordered_json::parse(R"({
    "completed": 3, "duration": 1.5, "p99_ttft_ms": 12.25, "note": "text", "flag": true,
    "servesim": {"rejected": 0, "time_share": {"compute": 0.25, "memory": 0.75},
                 "config": {"max_num_seqs": 256}, "run": {"seed": 1},
                 "disaggregation": {"transport": "auto", "kv_transfer_ms": {"p99": 2.5},
                                    "pools": [{"name": "prefill", "role": "prefill", "busy_fraction": 0.5},
                                              {"name": "decode", "busy_fraction": 0.75}]}}})");
  std::vector<std::pair<std::string, double>> want = {{"completed", 3}, {"duration", 1.5}, {"p99_ttft_ms", 12.25},
                                                      {"rejected", 0}};
  for (std::size_t r = 0; r < kNumRejectReasons; ++r) {
    want.emplace_back("rejected_by_reason_" + std::string(reject_reason_name(static_cast<RejectReason>(r))), 0);
  }
  for (const auto& m : std::vector<std::pair<std::string, double>>{{"time_share_compute", 0.25},
                                                                   {"time_share_memory", 0.75},
                                                                   {"disaggregation_kv_transfer_ms_p99", 2.5},
                                                                   {"disaggregation_pools_prefill_busy_fraction", 0.5},
                                                                   {"disaggregation_pools_decode_busy_fraction", 0.75}}) {
    want.push_back(m);
  }
  CHECK(flatten_summary(s) == want);
  // A run with rejections reports its own counts, once.
  s["servesim"]["rejected"] = 2;
  s["servesim"]["rejected_by_reason"] = {{"exceeds_kv_cache", 2}};
  const PointResult r{flatten_summary(s)};
  CHECK(r.metric("rejected_by_reason_exceeds_kv_cache") == 2);
  CHECK(r.metric("rejected") == 2);
  CHECK_THROWS_AS(r.metric("rejected_by_reason_exceeds_max_model_len"), std::out_of_range);
}

TEST_CASE("sweep run: identical rows on re-run and for --jobs 1 and 2 - means and intervals of the seeds", "[sweep]") {
  const auto dir = temp_dir("sweep-run");
  const Grid g = load_grid(grid_file(dir, kSmallGrid));
  std::vector<std::size_t> seen;
  const SweepOutput one = run_sweep(g, SweepOptions{1, std::nullopt, [&](std::size_t done, std::size_t total) {
                                                      CHECK(total == 4);
                                                      seen.push_back(done);
                                                    }});
  CHECK(seen == std::vector<std::size_t>{1, 2, 3, 4});
  const SweepOutput two = run_sweep(g, SweepOptions{2, std::nullopt, {}});
  const SweepOutput again = run_sweep(g, SweepOptions{2, std::nullopt, {}});
  CHECK(one.threads == 1);
  CHECK(two.threads == 2);
  CHECK(one.runs == 4);
  CHECK(one.csv == two.csv);
  CHECK(two.csv == again.csv);
  const auto lines = split_lines(one.csv);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("point,workload.arrival.rate,seeds,completed,completed_ci95,total_input_tokens,", 0) == 0);
  CHECK(lines[1].rfind("0,5.0,2,50,0,", 0) == 0);  // both seeds complete 50: mean 50, half-width 0
  CHECK(lines[2].rfind("1,20.0,2,50,0,", 0) == 0);
  // Point 1's P99 TTFT against its two runs: mean (a + b) / 2, half-width t_{0.975,1} x s / sqrt(2) = tan(0.475
  // pi) x |a - b| / 2.
  const std::vector<PointSpec> runs = g.runs(1);
  const double a = run_point(runs[0]).metric("p99_ttft_ms");
  const double b = run_point(runs[1]).metric("p99_ttft_ms");
  REQUIRE(a != b);
  CHECK(std::stod(cell(one.csv, 1, "p99_ttft_ms")) == (a + b) / 2);
  CHECK(std::stod(cell(one.csv, 1, "p99_ttft_ms_ci95")) == Approx(std::tan(0.475 * M_PI) * std::fabs(a - b) / 2).epsilon(1e-12));
}

TEST_CASE("sweep shards: the parts merged (in any order) equal the unsharded sweep", "[sweep]") {
  const auto dir = temp_dir("sweep-shards");
  const Grid g = load_grid(grid_file(dir, kThreeRates));
  const std::string whole = run_sweep(g, SweepOptions{2, std::nullopt, {}}).csv;
  std::vector<std::string> parts;
  std::size_t points = 0;
  for (std::int64_t i = 0; i < 4; ++i) {
    const SweepOutput part = run_sweep(g, SweepOptions{2, Shard{i, 4}, {}});
    points += part.points;
    CHECK(part.points == (i < 3 ? 1u : 0u));  // point p -> shard p mod 4; shard 3 has none
    parts.push_back(write_file(dir / ("part" + std::to_string(i) + ".csv"), part.csv));
  }
  CHECK(points == 3);
  CHECK(read_file(parts[3]) == part_line(g, Shard{3, 4}));
  CHECK(read_file(parts[1]).rfind("# servesim sweep part 1/4, grid " + g.fingerprint + ", 3 points\npoint,", 0) == 0);
  const MergeOutput merged = merge_parts(parts);
  CHECK(merged.points == 3);
  CHECK(merged.parts == 4);
  CHECK(merged.csv == whole);
  CHECK(merge_parts({parts[3], parts[1], parts[0], parts[2]}).csv == whole);
  // Two shards, too.
  const std::string p0 = write_file(dir / "half0.csv", run_sweep(g, SweepOptions{1, Shard{0, 2}, {}}).csv);
  const std::string p1 = write_file(dir / "half1.csv", run_sweep(g, SweepOptions{1, Shard{1, 2}, {}}).csv);
  CHECK(merge_parts({p1, p0}).csv == whole);
}

TEST_CASE("sweep merge: parts of other sweeps, missing or repeated shards and points are refused", "[sweep]") {
  const auto dir = temp_dir("sweep-merge");
  const Grid g = load_grid(grid_file(dir, kThreeRates));
  std::vector<std::string> parts;
  std::vector<std::string> texts;
  for (std::int64_t i = 0; i < 2; ++i) {
    texts.push_back(run_sweep(g, SweepOptions{1, Shard{i, 2}, {}}).csv);
    parts.push_back(write_file(dir / ("part" + std::to_string(i) + ".csv"), texts.back()));
  }
  // Shard 0 holds points 0 and 2 (lines 3 and 4), shard 1 point 1 (line 3).
  const auto error = [](const std::vector<std::string>& paths) { return input_error([&] { (void)merge_parts(paths); }); };
  CHECK(error({parts[0]}) == "merge: shard 1/2 of grid " + g.fingerprint + " is missing (1 of 2 parts given)");
  CHECK(error({parts[0], parts[1], parts[0]}) == parts[0] + ":1: shard 0/2 again (also " + parts[0] + ")");
  const std::string whole = write_file(dir / "whole.csv", run_sweep(g, SweepOptions{1, std::nullopt, {}}).csv);
  CHECK(error({parts[0], whole}).rfind(whole + ":1: not a sweep part (its first line is not", 0) == 0);
  // Another grid (other seeds).
  std::string reseeded = kThreeRates;
  reseeded.replace(reseeded.find("[1, 2]"), 6, "[1, 3]");
  const Grid other = load_grid(grid_file(dir, reseeded, "other.toml"));
  const std::string foreign = write_file(dir / "foreign.csv", run_sweep(other, SweepOptions{1, Shard{1, 2}, {}}).csv);
  CHECK(error({parts[0], foreign}) == foreign + ":1: from another sweep: shard 1/2 of grid " + other.fingerprint +
                                          " with 3 points, but " + parts[0] + " is shard 0/2 of grid " +
                                          g.fingerprint + " with 3 points");
  // A point cut off, a point twice, a point in the wrong shard, a last line cut short.
  const auto lines0 = split_lines(texts[0]);
  const auto lines1 = split_lines(texts[1]);
  const std::string cut = write_file(dir / "cut.csv", lines0[0] + "\n" + lines0[1] + "\n" + lines0[2] + "\n");
  CHECK(error({cut, parts[1]}) == cut + ": point 2 of shard 0/2 is missing (was the part cut short?)");
  const std::string twice = write_file(dir / "twice.csv", texts[0] + lines0[3] + "\n");
  CHECK(error({twice, parts[1]}) == twice + ":5: point 2 again (also " + twice + ":4)");
  const std::string stray = write_file(dir / "stray.csv", texts[1] + lines0[2] + "\n");
  CHECK(error({parts[0], stray}) == stray + ":4: point 0 is not in shard 1/2");
  const std::string truncated = write_file(dir / "truncated.csv", texts[1].substr(0, texts[1].size() - 5));
  CHECK(error({parts[0], truncated}) == truncated + ": truncated (its last line has no newline)");
  CHECK(error({parts[0], (dir / "absent.csv").string()}) == (dir / "absent.csv").string() + ": cannot open sweep part: not found");
  CHECK(lines1.size() == 3);
}

TEST_CASE("sweep shard specs: --shard i/N, Slurm job arrays, Kubernetes Indexed Jobs", "[sweep]") {
  CHECK(parse_shard("0/4") == Shard{0, 4});
  CHECK(parse_shard("3/4") == Shard{3, 4});
  CHECK(to_string(Shard{2, 5}) == "2/5");
  CHECK(input_error([] { (void)parse_shard("4/4"); }) ==
        "--shard 4/4: shard index 4 is outside [0, 4) (shards are numbered from 0)");
  CHECK(input_error([] { (void)parse_shard("0/0"); }) ==
        "--shard 0/0: the number of shards must be in [1, 1000000] (got 0)");
  for (const char* bad : {"1", "a/b", "-1/4", "1/4x", "1/+4", "", "1//4"}) {
    CHECK(input_error([bad] { (void)parse_shard(bad); }) ==
          "--shard: '" + std::string(bad) + "' is not i/N (e.g. 0/4: the first of 4 shards)");
  }
  CHECK(in_shard(5, Shard{1, 4}));
  CHECK_FALSE(in_shard(5, Shard{0, 4}));

  const auto env = [](std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const char* name) -> const char* {
      const auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  };
  CHECK(shard_from_env(env({})) == std::nullopt);
  CHECK(shard_from_env(env({{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_COUNT", "4"}})) == Shard{2, 4});
  // --array=1-4: ids 1..4 are shards 0..3; --array=0-6:2: ids 0, 2, 4, 6.
  CHECK(shard_from_env(env({{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "1"}})) ==
        Shard{3, 4});
  CHECK(shard_from_env(env({{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "0"},
                            {"SLURM_ARRAY_TASK_STEP", "2"}})) == Shard{2, 4});
  CHECK(input_error([&] { (void)shard_from_env(env({{"SLURM_ARRAY_TASK_ID", "2"}})); }) ==
        "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (pass --shard i/N)");
  CHECK(input_error([&] {
          (void)shard_from_env(env({{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "1"}}));
        }) == "SLURM_ARRAY_TASK_ID=5: shard index 4 is outside [0, 4) (shards are numbered from 0)");
  CHECK(input_error([&] { (void)shard_from_env(env({{"SLURM_ARRAY_TASK_ID", "x"}})); }) ==
        "SLURM_ARRAY_TASK_ID='x': not a non-negative integer");
  CHECK(shard_from_env(env({{"JOB_COMPLETION_INDEX", "1"}, {"SERVESIM_SHARD_COUNT", "3"}})) == Shard{1, 3});
  CHECK(input_error([&] { (void)shard_from_env(env({{"JOB_COMPLETION_INDEX", "1"}})); }) ==
        "JOB_COMPLETION_INDEX is set but SERVESIM_SHARD_COUNT is not: set it to the Job's completions (or pass "
        "--shard i/N)");
  // Slurm's variables win.
  CHECK(shard_from_env(env({{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_TASK_COUNT", "2"}, {"JOB_COMPLETION_INDEX", "1"},
                            {"SERVESIM_SHARD_COUNT", "3"}})) == Shard{0, 2});
}

TEST_CASE("sweep bad grids: one line naming the grid's file:line and key", "[sweep]") {
  const auto dir = temp_dir("sweep-bad");
  const std::string g = (dir / "grid.toml").string();
  // Unknown key of the grid.
  CHECK(grid_error_of(dir, "seed = [1]\n") == g + ":2: unknown key 'seed' (valid: axes, points, scenario, seeds, set)");
  // A path the scenario does not have.
  const std::string unknown = grid_error_of(dir, "[axes]\nworkload.arival.rate = [1.0]\n");
  CHECK(unknown.rfind(g + ":3: axes.workload.arival.rate: unknown key 'workload.arival' (valid: ", 0) == 0);
  // An empty axis, an axis that is not a list, a value given twice.
  CHECK(grid_error_of(dir, "[axes]\nworkload.arrival.rate = []\n") ==
        g + ":3: axes.workload.arrival.rate: empty axis: give at least one value");
  CHECK(grid_error_of(dir, "[axes]\nworkload.arrival.rate = 5.0\n") ==
        g + ":3: axes.workload.arrival.rate: expected a list of values (an axis is path = [value, ...])");
  CHECK(grid_error_of(dir, "[axes]\nworkload.arrival.rate = [5.0, 5.0]\n") ==
        g + ":3: axes.workload.arrival.rate: value 5.0 is given twice");
  CHECK(grid_error_of(dir, "[axes]\n") == g + ":2: axes: no axis (an axis is path = [value, ...]; leave [axes] out for none)");
  // A value the scenario rejects, checked before any point runs: the axis, and which value.
  CHECK(grid_error_of(dir, "[set]\nworkload.num_requests = 20\n[axes]\nworkload.arrival.rate = [5.0, -1.0]\n") ==
        g + ":5: axes.workload.arrival.rate: must be > 0 (got -1.000000) (at workload.arrival.rate = -1.0)");
  CHECK(grid_error_of(dir, "[[points]]\nengine.max_num_seqs = 8\n[[points]]\nengine.max_num_seqs = 0\n") ==
        g + ":5: points[1].engine.max_num_seqs: must be a positive integer (got 0)");
  CHECK(grid_error_of(dir, "[set]\nworkload.arrival = 3\n").rfind(g + ":3: set.workload.arrival: expected a table", 0) == 0);
  // Seeds.
  CHECK(grid_error_of(dir, "seeds = [1, 1]\n") == g + ":2: seeds: seed 1 is given twice");
  CHECK(grid_error_of(dir, "seeds = [-1]\n") == g + ":2: seeds: seed -1 is negative");
  CHECK(grid_error_of(dir, "seeds = []\n") == g + ":2: seeds: no seed (leave `seeds` out to run the scenario's own seed)");
  // A path set twice.
  CHECK(grid_error_of(dir, "[set]\nworkload.arrival.rate = 5.0\n[axes]\nworkload.arrival = [{ impl = \"poisson\", rate = 1.0 }]\n") ==
        g + ":5: axes.workload.arrival: overlaps set.workload.arrival.rate (" + g + ":3): a grid sets each scenario path once");
  // The base scenario.
  const std::string missing = write_file(dir / "missing.toml", "scenario = \"nope.toml\"\n");
  CHECK(input_error([&] { (void)load_grid(missing); }) ==
        missing + ":1: scenario: " + (dir / "nope.toml").string() + ": cannot open scenario: not found");
  const std::string no_scenario = write_file(dir / "none.toml", "seeds = [1]\n");
  CHECK(input_error([&] { (void)load_grid(no_scenario); }) == no_scenario + ":1: scenario: missing required key 'scenario'");
  // Not TOML.
  CHECK(grid_error_of(dir, "[axes\n").rfind(g + ":2:", 0) == 0);
  // An error that names no path of the grid: the point and seed come first.
  const Grid small = load_grid(grid_file(dir, kSmallGrid, "small.toml"));
  CHECK(std::string(grid_error(small, 1, 2u, InputError("every request was rejected")).what()) ==
        (dir / "small.toml").string() + ": point 1 (workload.arrival.rate=20.0, seed 2): every request was rejected");
}

TEST_CASE("sweep CLI: sweep, shards from the environment, merge - bad input exits 2 writing nothing", "[sweep]") {
  const auto dir = temp_dir("sweep-cli");
  const std::string grid = grid_file(dir, kThreeRates);
  const std::string d = dir.string();
  // No batch system around this test's commands.
  const std::string clean = "env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX ";
  CliResult r = run_command(clean + SERVESIM_BINARY + " sweep " + grid + " --jobs 2 --out " + d + "/all.csv");
  REQUIRE(r.code == 0);
  CHECK(r.output == "wrote " + d + "/all.csv: 3 points x 2 seeds = 6 runs on 2 threads\n");
  const std::string all = read_file(dir / "all.csv");
  CHECK(count_lines(all) == 4);
  // Slurm: --array=1-2 (MIN 1); Kubernetes: index 0 and 1 of 2.
  for (int id = 1; id <= 2; ++id) {
    r = run_command("env -u JOB_COMPLETION_INDEX SLURM_ARRAY_TASK_ID=" + std::to_string(id) +
                    " SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=1 " + SERVESIM_BINARY + " sweep " + grid +
                    " --out " + d + "/slurm" + std::to_string(id) + ".csv");
    REQUIRE(r.code == 0);
  }
  CHECK(r.output == "wrote " + d + "/slurm2.csv: shard 1/2, 1 of 3 points x 2 seeds = 2 runs on " +
                        std::to_string(pool_threads(0, 2)) + (pool_threads(0, 2) == 1 ? " thread" : " threads") + "\n");
  r = run_cli("merge " + d + "/slurm2.csv " + d + "/slurm1.csv --out " + d + "/merged.csv");
  REQUIRE(r.code == 0);
  CHECK(r.output == "wrote " + d + "/merged.csv: 3 points from 2 parts\n");
  CHECK(read_file(dir / "merged.csv") == all);
  for (int i = 0; i < 2; ++i) {
    r = run_command("env -u SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX=" + std::to_string(i) + " SERVESIM_SHARD_COUNT=2 " +
                    SERVESIM_BINARY + " sweep " + grid + " --out " + d + "/k8s" + std::to_string(i) + ".csv");
    REQUIRE(r.code == 0);
  }
  REQUIRE(run_cli("merge " + d + "/k8s0.csv " + d + "/k8s1.csv --out " + d + "/merged-k8s.csv").code == 0);
  CHECK(read_file(dir / "merged-k8s.csv") == all);

  // Bad input: one line, exit 2, no output file.
  const std::string bad = grid_file(dir, "[axes]\nworkload.arival.rate = [1.0]\n", "bad.toml");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {clean + SERVESIM_BINARY + " sweep " + bad + " --out " + d + "/out/x.csv", bad + ":3: axes.workload.arival.rate: unknown key"},
      {clean + SERVESIM_BINARY + " sweep " + grid + " --shard 2/2 --out " + d + "/out/x.csv", "--shard 2/2: shard index 2"},
      {clean + SERVESIM_BINARY + " sweep " + grid + " --jobs 0 --out " + d + "/out/x.csv", "--jobs"},
      {"env -u SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX=1 " + std::string(SERVESIM_BINARY) + " sweep " + grid +
           " --out " + d + "/out/x.csv", "JOB_COMPLETION_INDEX is set but SERVESIM_SHARD_COUNT is not"},
      {std::string(SERVESIM_BINARY) + " merge " + d + "/k8s0.csv --out " + d + "/out/x.csv", "shard 1/2 of grid"},
      {std::string(SERVESIM_BINARY) + " merge " + d + "/k8s0.csv " + d + "/all.csv --out " + d + "/out/x.csv",
       "all.csv:1: not a sweep part"}};
  for (const auto& [cmd, message] : cases) {
    INFO(cmd);
    r = run_command(cmd);
    CHECK(r.code == 2);
    CHECK(count_lines(r.output) == 1);
    CHECK(r.output.find(message) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "out"));
  }
}
