#include "sim/io/measured.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/common/csv.h"
#include "models/common/error.h"
#include "models/common/units.h"
#include "models/common/input_file.h"
#include "models/common/json_file.h"

namespace servesim {
namespace {

using json = nlohmann::json;

// A measured run is line-oriented (JSONL) or one JSON document: either way at most 4 GiB, read whole.
std::string read_text(const std::string& path) { return read_input_file(path, "measured run", kMaxLineFileBytes); }

std::string num(double v) { return fmt::format("{}", v); }

// Python's json module writes NaN, Infinity and -Infinity, which are not JSON: outside strings they become null,
// "inf" and "-inf".
std::string sanitize_python_json(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < text.size()) {
        out.push_back(text[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (text.compare(i, 3, "NaN") == 0) {
      out += "null";
      i += 2;
      continue;
    } else if (text.compare(i, 8, "Infinity") == 0) {
      out += "\"inf\"";
      i += 7;
      continue;
    } else if (text.compare(i, 9, "-Infinity") == 0) {
      out += "\"-inf\"";
      i += 8;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string type_word(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "a number";
}

double number(const json& v, const std::string& where, const std::string& key) {
  if (!v.is_number()) throw InputError(where + ": " + key + ": expected a number, got " + type_word(v));
  const double d = v.get<double>();
  if (!std::isfinite(d)) throw InputError(where + ": " + key + ": expected a finite number");
  return d;
}

double non_negative(const json& v, const std::string& where, const std::string& key) {
  const double d = number(v, where, key);
  if (d < 0) throw InputError(where + ": " + key + ": must not be negative (got " + num(d) + ")");
  return d;
}

std::int64_t integer(const json& v, const std::string& where, const std::string& key, std::int64_t min) {
  std::int64_t n = 0;
  if (v.is_number_integer() && !v.is_number_unsigned()) {
    n = v.get<std::int64_t>();
  } else if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw InputError(where + ": " + key + ": integer out of range");
    }
    n = static_cast<std::int64_t>(u);
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
             std::fabs(v.get<double>()) < 9e18) {
    n = static_cast<std::int64_t>(v.get<double>());
  } else {
    throw InputError(where + ": " + key + ": expected an integer, got " +
                     (v.is_number() ? num(v.get<double>()) : type_word(v)));
  }
  if (n < min) throw InputError(where + ": " + key + ": must be >= " + std::to_string(min) + " (got " + std::to_string(n) + ")");
  // Every integer of a measured run is a token count.
  if (n > kMaxTokensPerRequest) {
    throw InputError(where + ": " + key + ": " + std::to_string(n) + " is past the limit of " +
                     std::to_string(kMaxTokensPerRequest) + " tokens per request");
  }
  return n;
}

// ---- (a) JSONL ----

std::vector<MeasuredRequest> parse_jsonl(const std::string& path, const std::string& text) {
  std::vector<MeasuredRequest> out;
  std::istringstream in(text);
  for_each_nonblank_line(in, [&](const std::string& line, std::size_t lineno) {
    const std::string where = path + ":" + std::to_string(lineno);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw InputError(where + ": not valid JSON at column " + std::to_string(e.byte) +
                       " (expected one JSON object per line)");
    } catch (const json::exception& e) {
      // E.g. out_of_range.406, a number that overflows a double: "FILE:LINE:COL: number overflow parsing ...".
      (void)parse_json_text(line, path, lineno);
      throw InputError(where + ": " + json_error_message(e));
    }
    if (!j.is_object()) throw InputError(where + ": expected a JSON object (one request per line), got " + type_word(j));
    for (const char* key : {"arrival_s", "prompt_tokens", "output_tokens", "token_times_s"}) {
      if (!j.contains(key)) throw InputError(where + ": missing '" + key + "'");
    }
    MeasuredRequest r;
    r.arrival_s = non_negative(j["arrival_s"], where, "arrival_s");
    r.prompt_tokens = integer(j["prompt_tokens"], where, "prompt_tokens", 1);
    r.output_tokens = integer(j["output_tokens"], where, "output_tokens", 1);
    const json& times = j["token_times_s"];
    if (!times.is_array()) throw InputError(where + ": token_times_s: expected an array, got " + type_word(times));
    if (static_cast<std::int64_t>(times.size()) != r.output_tokens) {
      throw InputError(where + ": token_times_s has " + std::to_string(times.size()) + " entries but output_tokens = " +
                       std::to_string(r.output_tokens));
    }
    r.token_times_s.reserve(times.size());
    for (std::size_t k = 0; k < times.size(); ++k) {
      const std::string key = "token_times_s[" + std::to_string(k) + "]";
      const double t = number(times[k], where, key);
      if (k == 0 && t < r.arrival_s) {
        throw InputError(where + ": " + key + " (" + num(t) + ") is before arrival_s (" + num(r.arrival_s) + ")");
      }
      if (k > 0 && t < r.token_times_s.back()) {
        throw InputError(where + ": " + key + " (" + num(t) + ") is before token_times_s[" + std::to_string(k - 1) +
                         "] (" + num(r.token_times_s.back()) + ")");
      }
      r.token_times_s.push_back(t);
    }
    out.push_back(std::move(r));
  });
  if (out.empty()) throw InputError(path + ": no requests");
  return out;
}

// ---- (b) vLLM bench serve result ----

bool is_inf(const json& v) {
  if (!v.is_string()) return false;
  std::string s = v.get<std::string>();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s == "inf" || s == "infinity";
}

MeasuredRun parse_vllm(const std::string& path, const json& j) {
  const char* kHint = " (a vLLM bench serve result saved with per-request details)";
  for (const char* key : {"input_lens", "output_lens", "ttfts", "itls"}) {
    if (!j.contains(key)) throw InputError(path + ": missing key '" + key + "'" + kHint);
  }
  const std::size_t n = j["input_lens"].is_array() ? j["input_lens"].size() : 0;
  for (const char* key : {"input_lens", "output_lens", "ttfts", "itls", "errors", "start_times"}) {
    if (!j.contains(key)) continue;
    const json& a = j[key];
    if (!a.is_array()) throw InputError(path + ": key '" + key + "': expected an array, got " + type_word(a));
    if (a.size() != n) {
      throw InputError(path + ": key '" + std::string(key) + "' has " + std::to_string(a.size()) +
                       " entries but 'input_lens' has " + std::to_string(n));
    }
  }
  const bool has_starts = j.contains("start_times");
  if (!has_starts) {
    const std::string kFix =
        "; record the run as JSONL (arrival_s, prompt_tokens, output_tokens, token_times_s) instead";
    if (!j.contains("request_rate")) {
      throw InputError(path + ": no 'start_times' and no 'request_rate': the file lacks per-request send times, so "
                       "arrivals cannot be reconstructed" + kFix);
    }
    const json& rate = j["request_rate"];
    if (!is_inf(rate)) {
      throw InputError(path + ": no 'start_times' and request_rate = " + rate.dump() +
                       ": vLLM's result lacks per-request send times, so arrivals cannot be reconstructed" + kFix);
    }
    if (j.contains("max_concurrency") && !j["max_concurrency"].is_null()) {
      throw InputError(path + ": no 'start_times' and max_concurrency = " + j["max_concurrency"].dump() +
                       ": requests waited for a free slot at unrecorded times, so arrivals cannot be reconstructed" +
                       kFix);
    }
  }
  MeasuredRun run;
  run.format = "vllm";
  for (std::size_t i = 0; i < n; ++i) {
    const std::string idx = "[" + std::to_string(i) + "]";
    if (j.contains("errors")) {
      const json& e = j["errors"][i];
      if (!e.is_null() && !e.is_string()) {
        throw InputError(path + ": errors" + idx + ": expected a string, got " + type_word(e));
      }
      if (e.is_string() && !e.get<std::string>().empty()) {
        ++run.skipped_failed;
        continue;
      }
    }
    const json& ttft_v = j["ttfts"][i];
    if (ttft_v.is_null()) {
      ++run.skipped_failed;
      continue;
    }
    MeasuredRequest r;
    const double ttft = non_negative(ttft_v, path, "ttfts" + idx);
    r.arrival_s = has_starts ? non_negative(j["start_times"][i], path, "start_times" + idx) : 0.0;
    r.prompt_tokens = integer(j["input_lens"][i], path, "input_lens" + idx, 1);
    r.output_tokens = integer(j["output_lens"][i], path, "output_lens" + idx, 0);
    const json& itl = j["itls"][i];
    if (!itl.is_array()) throw InputError(path + ": itls" + idx + ": expected an array, got " + type_word(itl));
    r.token_times_s.reserve(itl.size() + 1);
    // Each value is finite, but their sums may not be (1e308 + 1e308): a token time must be.
    r.token_times_s.push_back(r.arrival_s + ttft);
    if (!std::isfinite(r.token_times_s.back())) {
      throw InputError(path + ": ttfts" + idx + ": the first token's time (start + ttft) is not a finite number");
    }
    for (std::size_t k = 0; k < itl.size(); ++k) {
      const std::string key = "itls" + idx + "[" + std::to_string(k) + "]";
      const double gap = non_negative(itl[k], path, key);
      r.token_times_s.push_back(r.token_times_s.back() + gap);
      if (!std::isfinite(r.token_times_s.back())) {
        throw InputError(path + ": " + key + ": the token's time (start + ttft + itls) is not a finite number");
      }
    }
    if (static_cast<std::int64_t>(r.token_times_s.size()) != r.output_tokens) {
      ++run.skipped_token_mismatch;
      continue;
    }
    run.requests.push_back(std::move(r));
  }
  if (run.requests.empty()) {
    throw InputError(path + ": no usable requests (" + std::to_string(n) + " in the file, " +
                     std::to_string(run.skipped_failed) + " failed, " + std::to_string(run.skipped_token_mismatch) +
                     " whose 1 + len(itls) differs from output_lens)");
  }
  return run;
}

}  // namespace

MeasuredRun read_measured_run_detailed(const std::string& path) {
  const std::string text = read_text(path);
  std::istringstream in(text);
  std::string first;
  bool found = false;
  while (std::getline(in, first)) {
    if (first.find_first_not_of(" \t\r") != std::string::npos) {
      found = true;
      break;
    }
  }
  if (!found) throw InputError(path + ": empty measured run");
  MeasuredRun run;
  const json head = json::parse(first, nullptr, false);
  if (!(head.is_object() && head.contains("arrival_s"))) {
    const std::string clean = sanitize_python_json(text);
    const json whole = json::parse(clean, nullptr, false);
    // A first line that opens a JSON document without closing it: the file is one JSON document (a vLLM
    // result), so its own error ("FILE:LINE:COL: ...", 1e999 included) is the one to report.
    const auto open = first.find_first_not_of(" \t\r");
    if (whole.is_discarded() && head.is_discarded() && (first[open] == '{' || first[open] == '[')) {
      (void)parse_json_text(clean, path);
    }
    if (whole.is_object() && (whole.contains("input_lens") || whole.contains("ttfts") || whole.contains("itls"))) {
      run = parse_vllm(path, whole);
    }
  }
  if (run.format.empty()) {
    run.format = "jsonl";
    run.requests = parse_jsonl(path, text);
  }
  std::stable_sort(run.requests.begin(), run.requests.end(),
                   [](const MeasuredRequest& a, const MeasuredRequest& b) { return a.arrival_s < b.arrival_s; });
  return run;
}

std::vector<MeasuredRequest> read_measured_run(const std::string& path) {
  return std::move(read_measured_run_detailed(path).requests);
}

void check_fits_max_model_len(const std::vector<MeasuredRequest>& requests, std::int64_t max_model_len,
                              const std::string& path) {
  if (max_model_len <= 0) return;
  for (const MeasuredRequest& r : requests) {
    if (r.prompt_tokens + r.output_tokens <= max_model_len) continue;
    throw InputError(path + ": the request arriving at " + short_number(r.arrival_s) + " s has " +
                     std::to_string(r.prompt_tokens) + " prompt + " + std::to_string(r.output_tokens) +
                     " output tokens, more than engine.max_model_len " + std::to_string(max_model_len) +
                     " of the scenario: the measured server served it, so the replay would drop it (raise "
                     "engine.max_model_len)");
  }
}

void write_measured_jsonl(std::ostream& out, const std::vector<MeasuredRequest>& requests) {
  auto check = [](double v) {
    if (!std::isfinite(v)) throw std::invalid_argument("write_measured_jsonl: non-finite time");
    return v;
  };
  std::string line;
  for (const auto& r : requests) {
    line = fmt::format(R"({{"arrival_s":{},"prompt_tokens":{},"output_tokens":{},"token_times_s":[)", check(r.arrival_s),
                       r.prompt_tokens, r.output_tokens);
    for (std::size_t k = 0; k < r.token_times_s.size(); ++k) {
      if (k > 0) line.push_back(',');
      line += fmt::format("{}", check(r.token_times_s[k]));
    }
    line += "]}\n";
    out << line;
  }
}

}  // namespace servesim
