// Shards: splitting a sweep's (or a plan's) points over several processes or machines, and where a process finds
// its share when a batch system starts it.
//
// A shard is "i/N": the i-th of N shares, 0 <= i < N (0-based, as Slurm job arrays `--array=0-(N-1)` and
// Kubernetes Indexed Jobs number their tasks). Point p (0-based, in the grid's expansion order) belongs to shard
// p mod N, so each shard gets every N-th point and the shares differ by at most one point; every seed of a point
// runs in the point's shard (the point's mean and interval need them all), so merging shards is concatenating
// their rows and sorting them by point.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace servesim {

struct Shard {
  std::int64_t index = 0;  // i, in [0, count)
  std::int64_t count = 1;  // N >= 1
  bool operator==(const Shard&) const = default;
};

// Largest N of a shard spec.
inline constexpr std::int64_t kMaxShards = 1'000'000;

// "i/N" (decimal digits only, 0 <= i < N <= kMaxShards); anything else throws InputError naming `flag`.
[[nodiscard]] Shard parse_shard(const std::string& text, const std::string& flag = "--shard");

// "i/N" as parse_shard() reads it.
[[nodiscard]] std::string to_string(const Shard& s);

// Whether point `point` belongs to shard `s` (point mod N == i).
[[nodiscard]] bool in_shard(std::size_t point, const Shard& s);

// Reads the environment variable `name`: its value, or nullptr when unset (std::getenv in the CLI; tests pass
// their own).
using EnvLookup = std::function<const char*(const char* name)>;

// The shard a batch system gave this process, when no --shard is given; nullopt when none did:
//   Slurm job arrays: SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT (N), SLURM_ARRAY_TASK_MIN (default 0) and
//     SLURM_ARRAY_TASK_STEP (default 1): i = (ID - MIN) / STEP. This assumes a range `--array=MIN-MAX[:STEP]`
//     (with or without a `%` throttle); an array given as a list of ids (`--array=1,5,9`) is not numbered this
//     way: pass --shard instead.
//   Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX (i) with SERVESIM_SHARD_COUNT (N), which the Job must set to
//     its `completions` (Kubernetes exposes the index only).
// Slurm's variables win when both are set. A variable that is set but malformed, an index outside [0, N), or an
// index without its count throws InputError naming the variable.
[[nodiscard]] std::optional<Shard> shard_from_env(const EnvLookup& getenv);

}  // namespace servesim
