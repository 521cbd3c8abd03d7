// Inline SVG charts for the HTML report (sim/report/html_report.h): line charts (CDFs, time series) and horizontal
// stacked bars. Pure functions of their inputs: the same spec gives the same bytes (numbers are formatted with fmt,
// independent of the locale). No scripts, no external resources.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace servesim::report {

// A rectangle in CSS pixels (SVG user units, 1:1).
struct Rect {
  double x = 0, y = 0, w = 0, h = 0;
};

// The data-mark colours: matplotlib's tab10 with its grey replaced by tab20b's dark blue (#393b79), since grey
// would be confused with anti-aliased text by a pixel check. Index i mod 10.
[[nodiscard]] const std::string& palette_color(std::size_t i);

// One line: points in data coordinates, drawn in order.
struct Series {
  std::string name;   // legend label
  std::string color;  // "#rrggbb"
  std::vector<std::pair<double, double>> points;
};

// A vertical reference line at data x (e.g. "P99"), dashed grey, labelled near the bottom of the plot (the i-th
// marker's label 14 px above the (i-1)-th's), on the line's right (left in the right 40 % of the plot).
struct Marker {
  double x = 0;
  std::string label;
};

struct LineChartSpec {
  std::string id;     // the <svg> element's id
  std::string title;  // drawn at the top left
  int width = 0, height = 0;  // px
  std::string x_label, y_label;
  // Axis ranges; an upper bound <= the lower bound is taken from the data (rounded up to a tick).
  double x_min = 0, x_max = 0, y_min = 0, y_max = 0;
  std::vector<Series> series;
  std::vector<Marker> markers;
  std::string empty_text = "no data";  // drawn in the plot area when no series has a point
};

// One horizontal bar of a stacked-bar chart: its label and one value per component (>= 0; negatives drawn as 0).
struct Bar {
  std::string label;
  std::vector<double> values;
};

struct StackedBarSpec {
  std::string id, title;
  int width = 0, height = 0;  // px
  std::string unit;           // of the values, e.g. "ms"; the axis reads "mean per request (unit)"
  std::string axis_label;
  std::vector<std::pair<std::string, std::string>> components;  // (legend name, colour), stacking order
  std::vector<Bar> bars;
};

// A rendered chart: `body` is the markup inside <svg>. `plot` is where the data marks are drawn (SVG pixels; the
// legend and labels lie outside it), `colors` the colours of the data marks actually drawn there with at least
// kMinMarkPx pixels of extent (so a pixel check can require each of them).
struct SvgChart {
  std::string id;
  int width = 0, height = 0;
  Rect plot;
  std::vector<std::string> colors;
  std::string body;
};

inline constexpr double kMinMarkPx = 3.0;

[[nodiscard]] SvgChart line_chart(const LineChartSpec& spec);
[[nodiscard]] SvgChart stacked_bar_chart(const StackedBarSpec& spec);

// "Nice" axis ticks covering [lo, hi]: multiples of 1, 2 or 5 x 10^k, about `target` of them; the last tick is
// >= hi. hi <= lo gives [lo, lo + 1].
[[nodiscard]] std::vector<double> nice_ticks(double lo, double hi, int target);

// The empirical CDF of `values` as a step line: (v, i/n) -> (v, (i+1)/n) for the sorted values; y in [0, 1].
[[nodiscard]] std::vector<std::pair<double, double>> cdf_points(std::vector<double> values);

// `text` with & < > " ' escaped for XML/HTML text and attribute values.
[[nodiscard]] std::string escape_xml(std::string_view text);

// A number with `decimals` digits after the point; -0 prints as 0.
[[nodiscard]] std::string format_number(double v, int decimals);

}  // namespace servesim::report
