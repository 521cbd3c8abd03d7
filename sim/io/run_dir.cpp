#include "sim/io/run_dir.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <variant>

#include "models/common/csv.h"
#include "models/common/error.h"
#include "models/common/input_file.h"

namespace servesim {
namespace {

// One column of a CSV file read into a field of Row: the header name, whether the file must have it, and the
// member it fills.
template <class Row>
struct Column {
  const char* name;
  bool required;
  std::variant<double Row::*, std::int64_t Row::*, std::int32_t Row::*, std::uint64_t Row::*> member;
};

// requests.csv: the 12 columns every run directory has, then the per-request breakdown (read when present, so a
// run directory written before the breakdown existed still loads; its breakdown stays 0).
const std::vector<Column<RequestRow>>& request_columns() {
  using R = RequestRow;
  static const std::vector<Column<R>> cols = {
      {"id", true, &R::id},
      {"replica", true, &R::replica},
      {"arrival_s", true, &R::arrival_s},
      {"prompt_tokens", true, &R::prompt_tokens},
      {"output_tokens", true, &R::output_tokens},
      {"first_token_s", true, &R::first_token_s},
      {"finish_s", true, &R::finish_s},
      {"ttft_ms", true, &R::ttft_ms},
      {"tpot_ms", true, &R::tpot_ms},
      {"e2el_ms", true, &R::e2el_ms},
      {"queue_ms", true, &R::queue_ms},
      {"preemptions", true, &R::preemptions},
      {"front_end_ms", false, &R::front_end_ms},
      {"prefill_ms", false, &R::prefill_ms},
      {"prefill_stall_ms", false, &R::prefill_stall_ms},
      {"prefill_preempted_ms", false, &R::prefill_preempted_ms},
      {"decode_ms", false, &R::decode_ms},
      {"decode_stall_ms", false, &R::decode_stall_ms},
      {"decode_preempted_ms", false, &R::decode_preempted_ms},
      {"preempted_ms", false, &R::preempted_ms},
      {"kv_transfer_ms", false, &R::kv_transfer_ms},
      {"decode_wait_ms", false, &R::decode_wait_ms},
      {"compute_share", false, &R::compute_share},
      {"memory_share", false, &R::memory_share},
      {"communication_share", false, &R::communication_share},
      {"overhead_share", false, &R::overhead_share},
  };
  return cols;
}

const std::vector<Column<TimeseriesRow>>& timeseries_columns() {
  using T = TimeseriesRow;
  static const std::vector<Column<T>> cols = {
      {"time_s", true, &T::time_s},
      {"replica", true, &T::replica},
      {"waiting", true, &T::waiting},
      {"running", true, &T::running},
      {"kv_usage", true, &T::kv_usage},
      {"steps", true, &T::steps},
      {"mean_step_ms", true, &T::mean_step_ms},
      {"busy_fraction", true, &T::busy_fraction},
      {"communication_fraction", true, &T::communication_fraction},
  };
  return cols;
}

// Parses all of `text` as a T with std::from_chars; throws InputError "WHERE: column 'NAME': 'TEXT' is not ...".
template <class T>
T parse_field(std::string_view text, const std::string& where, const char* name) {
  T v{};
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  const char* kind = std::is_floating_point_v<T> ? "a number"
                     : std::is_signed_v<T>         ? "an integer"
                                                   : "a non-negative integer";
  if (text.empty() || ec != std::errc() || p != end) {
    throw InputError(where + ": column '" + name + "': '" + std::string(text) + "' is not " + kind);
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      throw InputError(where + ": column '" + name + "': '" + std::string(text) + "' is not finite");
    }
  }
  return v;
}

// Reads a CSV file with a header line: columns are found by name (in any order; columns not in `cols` are
// ignored), a required column missing from the header or a repeated name is an error at line 1, a row with
// another number of fields than the header or a field that is not a number an error at its line. Empty lines are
// skipped.
template <class Row>
std::vector<Row> read_table(const std::string& path, const char* what, const std::vector<Column<Row>>& cols) {
  std::ifstream in = open_input_file(path, what);
  std::string line;
  if (!std::getline(in, line)) throw InputError(path + ":1: empty file (expected a header line)");
  const std::vector<std::string> header = split_csv(line);
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (!index.emplace(header[i], i).second) throw InputError(path + ":1: column '" + header[i] + "' appears twice");
  }
  std::vector<std::pair<const Column<Row>*, std::size_t>> present;  // (column, its field index)
  for (const auto& c : cols) {
    const auto it = index.find(c.name);
    if (it != index.end()) {
      present.emplace_back(&c, it->second);
    } else if (c.required) {
      throw InputError(path + ":1: header has no column '" + c.name + "' (not a " + what + " file)");
    }
  }
  std::vector<Row> rows;
  std::size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    const std::vector<std::string> fields = split_csv(line);
    const std::string where = path + ":" + std::to_string(line_no);
    if (fields.size() != header.size()) {
      throw InputError(where + ": " + std::to_string(fields.size()) + " fields, the header has " +
                       std::to_string(header.size()));
    }
    Row row;
    for (const auto& entry : present) {
      const auto* col = entry.first;
      const std::string& field = fields[entry.second];
      std::visit(
          [&](auto member) {
            using T = std::remove_reference_t<decltype(row.*member)>;
            row.*member = parse_field<T>(field, where, col->name);
          },
          col->member);
    }
    rows.push_back(row);
  }
  if (in.bad()) throw InputError(path + ": read error");
  return rows;
}

}  // namespace

RunDir read_run_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  RunDir run;
  run.dir = dir;
  const std::string summary_path = (fs::path(dir) / "summary.json").string();
  const std::string text = read_input_file(summary_path, "summary.json");
  try {
    run.summary = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(summary_path + ": not valid JSON (" + e.what() + ")");
  }
  if (!run.summary.is_object()) throw InputError(summary_path + ": expected a JSON object");
  const std::string requests_path = (fs::path(dir) / "requests.csv").string();
  run.requests = read_table(requests_path, "requests.csv", request_columns());
  // Every finished request has its row: fewer rows than summary.json's "completed" is a cut file.
  if (const auto c = run.summary.find("completed"); c != run.summary.end() && c->is_number_unsigned() &&
                                                    c->get<std::uint64_t>() != run.requests.size()) {
    throw InputError(requests_path + ": " + std::to_string(run.requests.size()) + " rows, but summary.json says " +
                     std::to_string(c->get<std::uint64_t>()) + " requests completed (a cut or mixed run directory)");
  }
  const fs::path ts = fs::path(dir) / "timeseries.csv";
  std::error_code ec;
  if (fs::exists(ts, ec)) {
    run.timeseries = read_table(ts.string(), "timeseries.csv", timeseries_columns());
    run.has_timeseries = true;
  }
  return run;
}

}  // namespace servesim
