#include "sim/sweep/shard.h"

#include <charconv>

#include "models/common/error.h"

namespace servesim {

namespace {

// Decimal digits only, as an int64 (no sign, no spaces).
std::optional<std::int64_t> parse_count(const std::string& text) {
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || text[0] == '-' || text[0] == '+' || ec != std::errc() || p != end) return std::nullopt;
  return v;
}

// The integer value of environment variable `name` (nullopt when unset); malformed throws.
std::optional<std::int64_t> env_int(const EnvLookup& getenv, const char* name) {
  const char* v = getenv(name);
  if (v == nullptr) return std::nullopt;
  const auto n = parse_count(v);
  if (!n) throw InputError(std::string(name) + "='" + v + "': not a non-negative integer");
  return n;
}

Shard checked(std::int64_t index, std::int64_t count, const std::string& what) {
  if (count < 1 || count > kMaxShards) {
    throw InputError(what + ": the number of shards must be in [1, " + std::to_string(kMaxShards) + "] (got " +
                     std::to_string(count) + ")");
  }
  if (index < 0 || index >= count) {
    throw InputError(what + ": shard index " + std::to_string(index) + " is outside [0, " + std::to_string(count) +
                     ") (shards are numbered from 0)");
  }
  return Shard{index, count};
}

}  // namespace

Shard parse_shard(const std::string& text, const std::string& flag) {
  const auto slash = text.find('/');
  const auto i = slash == std::string::npos ? std::nullopt : parse_count(text.substr(0, slash));
  const auto n = slash == std::string::npos ? std::nullopt : parse_count(text.substr(slash + 1));
  if (!i || !n) throw InputError(flag + ": '" + text + "' is not i/N (e.g. 0/4: the first of 4 shards)");
  return checked(*i, *n, flag + " " + text);
}

std::string to_string(const Shard& s) { return std::to_string(s.index) + "/" + std::to_string(s.count); }

bool in_shard(std::size_t point, const Shard& s) {
  return static_cast<std::int64_t>(point % static_cast<std::size_t>(s.count)) == s.index;
}

std::optional<Shard> shard_from_env(const EnvLookup& getenv) {
  if (const auto id = env_int(getenv, "SLURM_ARRAY_TASK_ID")) {
    const auto count = env_int(getenv, "SLURM_ARRAY_TASK_COUNT");
    if (!count) throw InputError("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (pass --shard i/N)");
    const std::int64_t min = env_int(getenv, "SLURM_ARRAY_TASK_MIN").value_or(0);
    const std::int64_t step = env_int(getenv, "SLURM_ARRAY_TASK_STEP").value_or(1);
    const std::string what = "SLURM_ARRAY_TASK_ID=" + std::to_string(*id);
    if (step < 1 || *id < min || (*id - min) % step != 0) {
      throw InputError(what + ": not in the range SLURM_ARRAY_TASK_MIN=" + std::to_string(min) +
                       ", SLURM_ARRAY_TASK_STEP=" + std::to_string(step) +
                       " (an array of listed ids needs --shard i/N)");
    }
    return checked((*id - min) / step, *count, what);
  }
  if (const auto index = env_int(getenv, "JOB_COMPLETION_INDEX")) {
    const auto count = env_int(getenv, "SERVESIM_SHARD_COUNT");
    if (!count) {
      throw InputError("JOB_COMPLETION_INDEX is set but SERVESIM_SHARD_COUNT is not: set it to the Job's "
                       "completions (or pass --shard i/N)");
    }
    return checked(*index, *count, "JOB_COMPLETION_INDEX=" + std::to_string(*index));
  }
  return std::nullopt;
}

}  // namespace servesim
