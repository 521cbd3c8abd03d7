#include "sim/sweep/grid.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <toml++/toml.h>

#include "models/common/config.h"
#include "models/common/input_file.h"

namespace servesim {

namespace {

// A value of the grid: its table, its key there, and the scenario path it sets.
struct Leaf {
  Config table;
  std::string key;
  std::string path;
  std::int64_t line = 0;
};

// Every value under table `t` (a table written with a [header] or dotted keys is walked into; anything else,
// an inline table included, is a value), in file order.
std::vector<Leaf> leaves(const Config& t) {
  std::vector<Leaf> out;
  const std::function<void(const Config&, const std::string&)> walk = [&](const Config& c, const std::string& path) {
    for (const std::string& k : c.keys()) {
      const std::string p = path.empty() ? k : path + "." + k;
      if (c.is_table(k)) {
        walk(c.table(k), p);
      } else {
        out.push_back(Leaf{c, k, p, c.place(k).line.value_or(0)});
      }
    }
  };
  walk(t, "");
  std::stable_sort(out.begin(), out.end(), [](const Leaf& a, const Leaf& b) { return a.line < b.line; });
  return out;
}

// A string value's text; any other value's TOML text.
std::string display_of(const std::string& text) {
  const toml::table t = toml::parse("v = " + text);
  if (const auto* s = t.get("v")->as_string()) return s->get();
  return text;
}

GridSet grid_set(const Leaf& leaf, const std::string& value) {
  return GridSet{leaf.path, value, display_of(value), leaf.table.place(leaf.key)};
}

std::string where(const ErrorPlace& p) {
  return p.file + (p.line ? ":" + std::to_string(*p.line) : std::string());
}

bool overlaps(const std::string& a, const std::string& b) {
  return a == b || a.rfind(b + ".", 0) == 0 || b.rfind(a + ".", 0) == 0;
}

// Throws when `s` overlaps one of `others`.
void check_overlap(const GridSet& s, const std::vector<GridSet>& others) {
  for (const GridSet& o : others) {
    if (overlaps(s.path, o.path)) {
      throw InputError(s.place, "overlaps " + o.place.key + " (" + where(o.place) +
                                    "): a grid sets each scenario path once");
    }
  }
}

std::string fingerprint(const Grid& g, const std::string& scenario_as_written, const std::string& scenario_bytes) {
  std::string text = "servesim sweep grid 1\nscenario " + scenario_as_written + "\n" +
                     std::to_string(scenario_bytes.size()) + "\n" + scenario_bytes + "\n";
  for (const GridSet& s : g.fixed) text += "set " + s.path + "=" + s.value + "\n";
  for (std::size_t p = 0; p < g.points.size(); ++p) {
    text += "point " + std::to_string(p);
    for (const GridSet& s : g.points[p].sets) text += "\n  " + s.path + "=" + s.value;
    text += "\n";
  }
  text += "seeds";
  for (const std::uint64_t s : g.seeds) text += " " + std::to_string(s);
  const boost::uuids::name_generator_sha1 gen(boost::uuids::ns::oid());
  return boost::uuids::to_string(gen(text));
}

}  // namespace

std::vector<PointSpec> Grid::runs(std::size_t p) const {
  PointSpec base;
  base.scenario = scenario;
  for (const GridSet& s : fixed) base.sets.emplace_back(s.path, s.value);
  for (const GridSet& s : points.at(p).sets) base.sets.emplace_back(s.path, s.value);
  if (seeds.empty()) return {base};
  std::vector<PointSpec> out;
  for (const std::uint64_t seed : seeds) {
    out.push_back(base);
    out.back().seed = seed;
  }
  return out;
}

std::string Grid::cell(std::size_t p, std::size_t c) const {
  for (const GridSet& s : points.at(p).sets) {
    if (s.path == columns.at(c)) return s.display;
  }
  return "";
}

std::string Grid::describe(std::size_t p) const {
  std::string out;
  for (const GridSet& s : points.at(p).sets) out += (out.empty() ? "" : ", ") + s.path + "=" + s.display;
  return out.empty() ? "the base scenario" : out;
}

Grid load_grid(const std::string& path) {
  const Config cfg = Config::from_file(path);
  Grid g;
  g.file = path;
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  const std::string written = cfg.str("scenario");
  g.scenario = cfg.path_value("scenario", folder);
  std::string scenario_bytes;
  try {
    scenario_bytes = read_input_file(g.scenario, "scenario");
  } catch (const InputError& e) {
    throw InputError(cfg.place("scenario"), g.scenario + ": " + e.detail());
  }

  if (cfg.has("seeds")) {
    if (!cfg.is_array("seeds")) cfg.fail("seeds", "expected a list of seeds, e.g. [1, 2, 3]");
    const std::vector<std::int64_t> seeds = cfg.integer_list_or("seeds", {});
    if (seeds.empty()) cfg.fail("seeds", "no seed (leave `seeds` out to run the scenario's own seed)");
    if (seeds.size() > kMaxGridSeeds) {
      cfg.fail("seeds", "more than " + std::to_string(kMaxGridSeeds) + " seeds (" + std::to_string(seeds.size()) + ")");
    }
    std::set<std::int64_t> seen;
    for (const std::int64_t s : seeds) {
      if (s < 0) cfg.fail("seeds", "seed " + std::to_string(s) + " is negative");
      if (!seen.insert(s).second) cfg.fail("seeds", "seed " + std::to_string(s) + " is given twice");
      g.seeds.push_back(static_cast<std::uint64_t>(s));
    }
  }

  for (const Leaf& leaf : leaves(cfg.table_or_empty("set"))) {
    g.fixed.push_back(grid_set(leaf, leaf.table.toml_text(leaf.key)));
  }

  // Listed points (one empty point without them).
  std::vector<GridPoint> listed;
  if (cfg.has("points")) {
    for (const Config& t : cfg.tables("points")) {
      GridPoint point;
      for (const Leaf& leaf : leaves(t)) {
        point.sets.push_back(grid_set(leaf, leaf.table.toml_text(leaf.key)));
        check_overlap(point.sets.back(), g.fixed);
        if (std::find(g.columns.begin(), g.columns.end(), leaf.path) == g.columns.end()) g.columns.push_back(leaf.path);
      }
      listed.push_back(std::move(point));
    }
  } else {
    listed.emplace_back();
  }

  // Axes: each a path and its values.
  std::vector<std::vector<GridSet>> axes;
  std::size_t total = listed.size();
  if (cfg.has("axes")) {
    const Config t = cfg.table("axes");
    const std::vector<Leaf> found = leaves(t);
    if (found.empty()) cfg.fail("axes", "no axis (an axis is path = [value, ...]; leave [axes] out for none)");
    for (const Leaf& leaf : found) {
      if (!leaf.table.is_array(leaf.key)) {
        leaf.table.fail(leaf.key, "expected a list of values (an axis is path = [value, ...])");
      }
      const std::vector<std::string> values = leaf.table.toml_texts(leaf.key);
      if (values.empty()) leaf.table.fail(leaf.key, "empty axis: give at least one value");
      std::vector<GridSet> axis;
      for (const std::string& v : values) {
        for (const GridSet& before : axis) {
          if (before.value == v) leaf.table.fail(leaf.key, "value " + v + " is given twice");
        }
        axis.push_back(grid_set(leaf, v));
      }
      check_overlap(axis.front(), g.fixed);
      for (const GridPoint& point : listed) check_overlap(axis.front(), point.sets);
      if (total > kMaxGridPoints / values.size()) {
        leaf.table.fail(leaf.key, "the grid has more than " + std::to_string(kMaxGridPoints) + " points");
      }
      total *= values.size();
      g.columns.push_back(leaf.path);
      axes.push_back(std::move(axis));
    }
  }
  if (cfg.has("points") && total > kMaxGridPoints) {
    cfg.fail("points", "the grid has more than " + std::to_string(kMaxGridPoints) + " points");
  }
  cfg.check_unknown();

  // Expansion: listed points outermost, then the axes (the first slowest).
  for (const GridPoint& point : listed) {
    std::vector<std::size_t> at(axes.size(), 0);
    for (;;) {
      GridPoint p = point;
      for (std::size_t a = 0; a < axes.size(); ++a) p.sets.push_back(axes[a][at[a]]);
      g.points.push_back(std::move(p));
      std::size_t a = axes.size();
      while (a > 0 && ++at[a - 1] == axes[a - 1].size()) at[--a] = 0;
      if (a == 0) break;
    }
  }
  g.fingerprint = fingerprint(g, written, scenario_bytes);
  return g;
}

InputError grid_error(const Grid& grid, std::size_t p, const std::optional<std::uint64_t>& seed, const InputError& e) {
  // The last override of the point that the error is about (a later one replaces an earlier one).
  const GridSet* about = nullptr;
  const auto visit = [&](const GridSet& s) {
    const std::string& k = e.key();
    if (e.file() == "--set " + s.path || (!k.empty() && (overlaps(k, s.path) || k.rfind(s.path + "[", 0) == 0))) {
      about = &s;
    }
  };
  for (const GridSet& s : grid.fixed) visit(s);
  for (const GridSet& s : grid.points.at(p).sets) visit(s);
  if (about != nullptr) {
    std::string detail = e.detail();
    if (e.key().size() > about->path.size()) detail = e.key() + ": " + detail;  // a key inside the value
    if (about->place.key.rfind("axes.", 0) == 0) detail += " (at " + about->path + " = " + about->value + ")";
    return InputError(about->place, detail);
  }
  const std::string context = "point " + std::to_string(p) + " (" + grid.describe(p) +
                              (seed ? ", seed " + std::to_string(*seed) : std::string()) + ")";
  return InputError(grid.file + ": " + context + ": " + e.what(), ErrorPlace{grid.file, std::nullopt, ""},
                    context + ": " + e.what());
}

}  // namespace servesim
