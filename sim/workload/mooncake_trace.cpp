#include "sim/workload/mooncake_trace.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "models/common/csv.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/common/json_file.h"
#include "models/common/units.h"

namespace servesim {
namespace {

using json = nlohmann::json;

const json& field(const json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) throw InputError(where + ": missing \"" + key + "\"");
  return *it;
}

// A count in [min, kMaxTokensPerRequest].
std::int64_t count(const json& v, const char* key, std::int64_t min, const std::string& where) {
  if (!v.is_number_integer()) throw InputError(where + ": \"" + key + "\" must be an integer");
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(kMaxTokensPerRequest)) {
    throw InputError(where + ": \"" + key + "\" " + std::to_string(v.get<std::uint64_t>()) +
                     " is past the limit of " + std::to_string(kMaxTokensPerRequest) + " tokens per request");
  }
  const auto n = v.get<std::int64_t>();
  if (n < min) {
    throw InputError(where + ": \"" + key + "\" must be >= " + std::to_string(min) + " (got " + std::to_string(n) +
                     ")");
  }
  if (n > kMaxTokensPerRequest) {
    throw InputError(where + ": \"" + key + "\" " + std::to_string(n) + " is past the limit of " +
                     std::to_string(kMaxTokensPerRequest) + " tokens per request");
  }
  return n;
}

}  // namespace

std::vector<MooncakeRow> read_mooncake_trace(const std::string& path, std::int64_t block_tokens) {
  std::ifstream in = open_input_file(path, "Mooncake trace");
  std::vector<MooncakeRow> rows;
  for_each_nonblank_line(in, [&](const std::string& line, std::size_t lineno) {
    const std::string where = path + ":" + std::to_string(lineno);
    const json j = parse_json_text(line, path, lineno);
    if (!j.is_object()) throw InputError(where + ": expected a JSON object (one request per line)");
    MooncakeRow r;
    const json& ts = field(j, "timestamp", where);
    if (!ts.is_number() || !std::isfinite(ts.get<double>()) || ts.get<double>() < 0) {
      throw InputError(where + ": \"timestamp\" must be a number of ms >= 0");
    }
    r.arrival_s = ts.get<double>() / 1000.0;
    if (r.arrival_s > kMaxSimSeconds) {
      throw InputError(where + ": \"timestamp\" " + short_number(ts.get<double>()) +
                       " ms is past the simulated-time limit of 1e+07 s");
    }
    if (!rows.empty() && r.arrival_s < rows.back().arrival_s) {
      throw InputError(where + ": \"timestamp\" must not decrease (the line before is at " +
                       short_number(rows.back().arrival_s * 1000.0) + " ms)");
    }
    r.prompt_tokens = count(field(j, "input_length", where), "input_length", 1, where);
    r.output_tokens = count(field(j, "output_length", where), "output_length", 1, where);
    const json& ids = field(j, "hash_ids", where);
    if (!ids.is_array()) throw InputError(where + ": \"hash_ids\" must be an array of integers");
    const std::int64_t blocks = (r.prompt_tokens + block_tokens - 1) / block_tokens;
    if (static_cast<std::int64_t>(ids.size()) != blocks) {
      throw InputError(where + ": \"hash_ids\" has " + std::to_string(ids.size()) + " ids, but input_length " +
                       std::to_string(r.prompt_tokens) + " makes " + std::to_string(blocks) + " blocks of " +
                       std::to_string(block_tokens) + " tokens (one id per block)");
    }
    auto content = std::make_shared<Content>();
    content->reserve(ids.size());
    std::int64_t left = r.prompt_tokens;
    for (const json& id : ids) {
      if (!id.is_number_integer() || (!id.is_number_unsigned() && id.get<std::int64_t>() < 0)) {
        throw InputError(where + ": \"hash_ids\" must hold non-negative integers");
      }
      const std::int64_t n = std::min(left, block_tokens);
      content->push_back(ContentSpan{id.get<std::uint64_t>(), n});
      left -= n;
    }
    r.content = std::move(content);
    rows.push_back(std::move(r));
  });
  if (rows.empty()) throw InputError(path + ": trace has no rows");
  return rows;
}

}  // namespace servesim
