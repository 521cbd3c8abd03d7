#include "sim/report/svg_chart.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

namespace servesim::report {
namespace {

constexpr const char* kAxisColor = "#333333";
constexpr const char* kGridColor = "#e6e6e6";
constexpr const char* kMarkerColor = "#555555";
constexpr double kCharPx = 6.6;  // mean advance of an 11 px DejaVu Sans glyph, for laying out legends

std::string px(double v) { return format_number(v, 1); }

int tick_decimals(const std::vector<double>& ticks) {
  if (ticks.size() < 2) return 0;
  const double step = ticks[1] - ticks[0];
  return std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 6);
}

void text(std::string& out, double x, double y, std::string_view s, std::string_view attrs = "") {
  fmt::format_to(std::back_inserter(out), "<text x=\"{}\" y=\"{}\"{}{}>{}</text>", px(x), px(y),
                 attrs.empty() ? "" : " ", attrs, escape_xml(s));
}

void line(std::string& out, double x1, double y1, double x2, double y2, std::string_view color,
          std::string_view extra = "") {
  fmt::format_to(std::back_inserter(out), "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\"{}{}/>", px(x1),
                 px(y1), px(x2), px(y2), color, extra.empty() ? "" : " ", extra);
}

// Legend items laid left to right from (x0, y0), wrapping at x_end; returns the y below the last row.
double legend(std::string& out, const std::vector<std::pair<std::string, std::string>>& items, double x0, double y0,
              double x_end) {
  if (items.empty()) return y0;
  double x = x0, y = y0;
  for (const auto& [name, color] : items) {
    const double w = 18 + kCharPx * static_cast<double>(name.size()) + 14;
    if (x > x0 && x + w > x_end) {
      x = x0;
      y += 16;
    }
    fmt::format_to(std::back_inserter(out), "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"10\" fill=\"{}\"/>", px(x),
                   px(y - 9), color);
    text(out, x + 16, y, name);
    x += w;
  }
  return y + 8;
}

// Drops points that cannot change the drawing: of consecutive points in the same half-pixel column, keeps the first,
// the lowest, the highest and the last (in their order). Keeps a CDF of 10^5 requests to ~2 points per pixel.
std::vector<std::pair<double, double>> thin(const std::vector<std::pair<double, double>>& pts) {
  std::vector<std::pair<double, double>> out;
  std::size_t i = 0;
  while (i < pts.size()) {
    const double col = std::round(pts[i].first * 2);
    std::size_t j = i;
    std::size_t lo = i, hi = i;
    while (j < pts.size() && std::round(pts[j].first * 2) == col) {
      if (pts[j].second < pts[lo].second) lo = j;
      if (pts[j].second > pts[hi].second) hi = j;
      ++j;
    }
    std::array<std::size_t, 4> keep{i, std::min(lo, hi), std::max(lo, hi), j - 1};
    for (const std::size_t k : keep) {
      if (out.empty() || out.back() != pts[k]) out.push_back(pts[k]);
    }
    i = j;
  }
  return out;
}

struct Scale {
  double d0, d1, p0, p1;  // data [d0, d1] -> pixels [p0, p1]
  [[nodiscard]] double operator()(double v) const {
    const double t = std::clamp((v - d0) / (d1 - d0), 0.0, 1.0);
    return p0 + t * (p1 - p0);
  }
};

std::vector<double> axis_ticks(double lo, double hi, double data_max, int target) {
  return nice_ticks(lo, hi > lo ? hi : data_max, target);
}

}  // namespace

const std::string& palette_color(std::size_t i) {
  static const std::array<std::string, 10> kColors{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                   "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79"};
  return kColors[i % kColors.size()];
}

std::string format_number(double v, int decimals) {
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.find_first_not_of("-0.") == std::string::npos && s.front() == '-') s.erase(0, 1);
  return s;
}

std::string escape_xml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(hi) || !std::isfinite(lo)) {
    if (!std::isfinite(lo)) lo = 0;
    hi = lo + 1;
  }
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const double first = std::floor(lo / step + 1e-9);
  std::vector<double> ticks;
  for (double k = first;; k += 1) {
    ticks.push_back(k * step);
    if (k * step >= hi - 1e-9 * step) break;
  }
  return ticks;
}

std::vector<std::pair<double, double>> cdf_points(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  std::vector<std::pair<double, double>> pts;
  pts.reserve(values.size() * 2);
  const auto n = static_cast<double>(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    pts.emplace_back(values[i], static_cast<double>(i) / n);
    pts.emplace_back(values[i], static_cast<double>(i + 1) / n);
  }
  return pts;
}

SvgChart line_chart(const LineChartSpec& spec) {
  SvgChart c{spec.id, spec.width, spec.height, {}, {}, {}};
  std::string& out = c.body;
  const auto w = static_cast<double>(spec.width), h = static_cast<double>(spec.height);
  text(out, 8, 18, spec.title, "font-size=\"13\" font-weight=\"bold\"");

  double data_x = spec.x_min, data_y = spec.y_min;
  bool any = false;
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& s : spec.series) {
    for (const auto& [x, y] : s.points) {
      data_x = std::max(data_x, x);
      data_y = std::max(data_y, y);
      any = true;
    }
    if (!s.name.empty()) items.emplace_back(s.name, s.color);
  }
  const double legend_bottom = legend(out, items, 64, 36, w - 8);
  const double top = items.empty() ? 34 : legend_bottom + 6;
  c.plot = Rect{64, top, w - 64 - 18, h - top - 40};
  const Rect& p = c.plot;

  const std::vector<double> xt = axis_ticks(spec.x_min, spec.x_max, data_x, spec.width >= 600 ? 10 : 5);
  const std::vector<double> yt = axis_ticks(spec.y_min, spec.y_max, data_y, 5);
  const Scale sx{xt.front(), xt.back(), p.x, p.x + p.w};
  const Scale sy{yt.front(), yt.back(), p.y + p.h, p.y};
  const int xd = tick_decimals(xt), yd = tick_decimals(yt);
  for (const double t : yt) {
    line(out, p.x, sy(t), p.x + p.w, sy(t), kGridColor);
    text(out, p.x - 6, sy(t) + 4, format_number(t, yd), "text-anchor=\"end\"");
  }
  for (const double t : xt) text(out, sx(t), p.y + p.h + 15, format_number(t, xd), "text-anchor=\"middle\"");
  line(out, p.x, p.y + p.h, p.x + p.w, p.y + p.h, kAxisColor);
  line(out, p.x, p.y, p.x, p.y + p.h, kAxisColor);
  text(out, p.x + p.w / 2, h - 6, spec.x_label, "text-anchor=\"middle\"");
  fmt::format_to(std::back_inserter(out),
                 "<text transform=\"translate(14,{}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
                 px(p.y + p.h / 2), escape_xml(spec.y_label));

  // Marker labels near the bottom of the plot, stacked upwards: in a CDF that corner is right of the curve.
  for (std::size_t i = 0; i < spec.markers.size(); ++i) {
    const double x = sx(spec.markers[i].x);
    const bool right_half = x > p.x + p.w * 0.6;  // label on the left of the line near the right edge
    line(out, x, p.y, x, p.y + p.h, kMarkerColor, "stroke-dasharray=\"4 3\"");
    text(out, right_half ? x - 3 : x + 3, p.y + p.h - 6 - 14 * static_cast<double>(i), spec.markers[i].label,
         right_half ? "fill=\"#555555\" text-anchor=\"end\"" : "fill=\"#555555\"");
  }
  if (!any) text(out, p.x + p.w / 2, p.y + p.h / 2, spec.empty_text, "text-anchor=\"middle\" fill=\"#555555\"");

  for (const auto& s : spec.series) {
    std::vector<std::pair<double, double>> pix;
    pix.reserve(s.points.size());
    for (const auto& [x, y] : s.points) pix.emplace_back(sx(x), sy(y));
    pix = thin(pix);
    if (pix.size() < 2) continue;
    double x0 = pix[0].first, x1 = x0, y0 = pix[0].second, y1 = y0;
    std::string pts;
    for (const auto& [x, y] : pix) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
      if (!pts.empty()) pts += ' ';
      pts += px(x) + "," + px(y);
    }
    fmt::format_to(std::back_inserter(out),
                   "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"{}\"/>",
                   s.color, pts);
    if (std::max(x1 - x0, y1 - y0) >= kMinMarkPx &&
        std::find(c.colors.begin(), c.colors.end(), s.color) == c.colors.end()) {
      c.colors.push_back(s.color);
    }
  }
  return c;
}

SvgChart stacked_bar_chart(const StackedBarSpec& spec) {
  SvgChart c{spec.id, spec.width, spec.height, {}, {}, {}};
  std::string& out = c.body;
  const auto w = static_cast<double>(spec.width), h = static_cast<double>(spec.height);
  text(out, 8, 18, spec.title, "font-size=\"13\" font-weight=\"bold\"");
  const double label_w = 170, total_w = 110;
  const double legend_bottom = legend(out, spec.components, label_w, 36, w - 8);
  c.plot = Rect{label_w, legend_bottom + 6, w - label_w - total_w, h - legend_bottom - 6 - 38};
  const Rect& p = c.plot;

  double max_total = 0;
  for (const auto& b : spec.bars) {
    double t = 0;
    for (const double v : b.values) t += std::max(v, 0.0);
    max_total = std::max(max_total, t);
  }
  const std::vector<double> xt = nice_ticks(0, max_total, 8);
  const Scale sx{xt.front(), xt.back(), p.x, p.x + p.w};
  const int xd = tick_decimals(xt);
  for (const double t : xt) {
    line(out, sx(t), p.y, sx(t), p.y + p.h, kGridColor);
    text(out, sx(t), p.y + p.h + 15, format_number(t, xd), "text-anchor=\"middle\"");
  }
  line(out, p.x, p.y + p.h, p.x + p.w, p.y + p.h, kAxisColor);
  line(out, p.x, p.y, p.x, p.y + p.h, kAxisColor);
  text(out, p.x + p.w / 2, h - 6, spec.axis_label, "text-anchor=\"middle\"");
  if (spec.bars.empty() || max_total <= 0) {
    text(out, p.x + p.w / 2, p.y + p.h / 2, "no data", "text-anchor=\"middle\" fill=\"#555555\"");
    return c;
  }

  std::vector<bool> drawn(spec.components.size(), false);
  const double band = p.h / static_cast<double>(spec.bars.size());
  const double bar_h = std::min(band * 0.6, 40.0);
  for (std::size_t b = 0; b < spec.bars.size(); ++b) {
    const Bar& bar = spec.bars[b];
    const double y = p.y + band * (static_cast<double>(b) + 0.5) - bar_h / 2;
    text(out, p.x - 8, y + bar_h / 2 + 4, bar.label, "text-anchor=\"end\"");
    double acc = 0;
    for (std::size_t k = 0; k < spec.components.size() && k < bar.values.size(); ++k) {
      const double v = std::max(bar.values[k], 0.0);
      if (v <= 0) continue;
      const double x0 = sx(acc), x1 = sx(acc + v);
      acc += v;
      fmt::format_to(std::back_inserter(out), "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
                     px(x0), px(y), px(x1 - x0), px(bar_h), spec.components[k].second);
      if (x1 - x0 >= kMinMarkPx) drawn[k] = true;
      const std::string label = format_number(v, v < 10 ? 2 : 1);
      if (x1 - x0 >= kCharPx * static_cast<double>(label.size()) + 8) {
        text(out, (x0 + x1) / 2, y + bar_h / 2 + 4, label, "text-anchor=\"middle\" fill=\"#ffffff\"");
      }
    }
    text(out, sx(acc) + 6, y + bar_h / 2 + 4, format_number(acc, acc < 10 ? 2 : 1) + " " + spec.unit);
  }
  for (std::size_t k = 0; k < drawn.size(); ++k) {
    if (drawn[k] && std::find(c.colors.begin(), c.colors.end(), spec.components[k].second) == c.colors.end()) {
      c.colors.push_back(spec.components[k].second);
    }
  }
  return c;
}

}  // namespace servesim::report
