// merge_parts (sweep.h): sweep part files -> the unsharded CSV.
#include <charconv>
#include <map>
#include <regex>

#include "models/common/input_file.h"
#include "sim/sweep/sweep.h"

namespace servesim {

namespace {

struct Part {
  std::string path;
  Shard shard;
  std::string grid;
  std::size_t points = 0;
  std::string header;
};

struct Row {
  std::string text;  // with its newline
  std::string path;  // its part
  std::size_t line = 0;
};

[[noreturn]] void fail(const std::string& path, std::size_t line, const std::string& detail) {
  throw InputError(ErrorPlace{path, static_cast<std::int64_t>(line), ""}, detail);
}

std::string describe(const Part& p) {
  return "shard " + to_string(p.shard) + " of grid " + p.grid + " with " + std::to_string(p.points) + " points";
}

}  // namespace

MergeOutput merge_parts(const std::vector<std::string>& paths) {
  static const std::regex kPartLine(R"(# servesim sweep part (\d+)/(\d+), grid ([0-9a-f-]+), (\d+) points)");
  std::vector<Part> parts;
  std::map<std::int64_t, std::size_t> by_shard;  // shard index -> parts[]
  std::map<std::size_t, Row> rows;               // point -> its row
  std::string header, header_from;               // the CSV header and the first part that has it
  for (const std::string& path : paths) {
    const std::string text = read_input_file(path, "sweep part", kMaxLineFileBytes);
    if (!text.empty() && text.back() != '\n') throw InputFileError(path, "truncated (its last line has no newline)");
    std::vector<std::string> lines;
    for (std::size_t at = 0; at < text.size();) {
      const std::size_t end = text.find('\n', at);
      lines.push_back(text.substr(at, end - at));
      at = end + 1;
    }
    std::smatch m;
    if (lines.empty() || !std::regex_match(lines[0], m, kPartLine)) {
      fail(path, 1, "not a sweep part (its first line is not '# servesim sweep part i/N, grid ..., P points': a part "
                    "is what `servesim sweep --shard i/N` writes)");
    }
    Part part;
    part.path = path;
    try {
      part.shard = parse_shard(m[1].str() + "/" + m[2].str(), "shard");
      part.points = std::stoull(m[4].str());
    } catch (const std::exception& e) {
      fail(path, 1, std::string("bad part line: ") + e.what());
    }
    part.grid = m[3].str();
    if (lines.size() > 1) part.header = lines[1];  // none: a shard without points
    if (!parts.empty()) {
      const Part& first = parts.front();
      if (part.grid != first.grid || part.shard.count != first.shard.count || part.points != first.points) {
        fail(path, 1, "from another sweep: " + describe(part) + ", but " + first.path + " is " + describe(first));
      }
    }
    if (!part.header.empty()) {
      if (header_from.empty()) {
        header = part.header;
        header_from = path;
      } else if (part.header != header) {
        fail(path, 2, "its columns differ from those of " + header_from);
      }
    }
    if (const auto it = by_shard.find(part.shard.index); it != by_shard.end()) {
      fail(path, 1, "shard " + to_string(part.shard) + " again (also " + parts[it->second].path + ")");
    }
    by_shard.emplace(part.shard.index, parts.size());
    for (std::size_t i = 2; i < lines.size(); ++i) {
      const std::string& line = lines[i];
      std::size_t point = 0;
      const char* end = line.data() + line.size();
      const auto [p, ec] = std::from_chars(line.data(), end, point);
      if (ec != std::errc() || p == line.data() || p == end || *p != ',') {
        fail(path, i + 1, "not a row of a sweep (a row starts with its point number)");
      }
      if (point >= part.points) {
        fail(path, i + 1, "point " + std::to_string(point) + " is outside the grid's " + std::to_string(part.points) +
                              " points");
      }
      if (!in_shard(point, part.shard)) {
        fail(path, i + 1, "point " + std::to_string(point) + " is not in shard " + to_string(part.shard));
      }
      if (const auto it = rows.find(point); it != rows.end()) {
        fail(path, i + 1,
             "point " + std::to_string(point) + " again (also " + it->second.path + ":" + std::to_string(it->second.line) + ")");
      }
      rows.emplace(point, Row{line + "\n", path, i + 1});
    }
    parts.push_back(std::move(part));
  }
  if (parts.empty()) throw InputError("merge: no part given");
  const Part& first = parts.front();
  for (std::int64_t s = 0; s < first.shard.count; ++s) {
    if (by_shard.count(s) == 0) {
      throw InputError("merge: shard " + to_string(Shard{s, first.shard.count}) + " of grid " + first.grid +
                       " is missing (" + std::to_string(parts.size()) + " of " +
                       std::to_string(first.shard.count) + " parts given)");
    }
  }
  for (std::size_t point = 0; point < first.points; ++point) {
    if (rows.count(point) == 0) {
      const Part& owner = parts[by_shard.at(static_cast<std::int64_t>(point % static_cast<std::size_t>(first.shard.count)))];
      throw InputFileError(owner.path, "point " + std::to_string(point) + " of shard " + to_string(owner.shard) +
                                           " is missing (was the part cut short?)");
    }
  }
  MergeOutput out;
  out.csv = header + "\n";
  for (const auto& [point, row] : rows) out.csv += row.text;
  out.points = rows.size();
  out.parts = parts.size();
  return out;
}

}  // namespace servesim
