#include "sim/metrics/step_groups.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include <fmt/format.h>

#include "models/common/error.h"
#include "sim/metrics/summary.h"

namespace servesim {
namespace {

struct TimedToken {
  double t;
  TokenRef ref;
};

// Every token of the run, sorted by (time, request, index): a deterministic order for ties.
std::vector<TimedToken> sorted_tokens(const std::vector<MeasuredRequest>& reqs) {
  std::vector<TimedToken> all;
  for (std::size_t r = 0; r < reqs.size(); ++r) {
    const auto& times = reqs[r].token_times_s;
    for (std::size_t k = 0; k < times.size(); ++k) {
      all.push_back({times[k], {static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(k)}});
    }
  }
  std::sort(all.begin(), all.end(),
            [](const TimedToken& a, const TimedToken& b) { return std::tie(a.t, a.ref) < std::tie(b.t, b.ref); });
  return all;
}

}  // namespace

std::string format_duration(double s) {
  const double a = std::abs(s);
  double v = s;
  const char* unit = "s";
  if (a < 1e-6) {
    v = s * 1e9;
    unit = "ns";
  } else if (a < 1e-3) {
    v = s * 1e6;
    unit = "us";
  } else if (a < 1.0) {
    v = s * 1e3;
    unit = "ms";
  }
  const double m = std::abs(v);
  const int decimals = m >= 100 ? 0 : m >= 10 ? 1 : 2;
  return fmt::format("{:.{}f}{}", v, decimals, unit);
}

double GapSplit::suggestion_s() const {
  if (!(band_high_s > 0)) return 0.0;
  return std::sqrt(std::max(band_low_s, kTieGap) * band_high_s);
}

std::string GapSplit::describe() const {
  if (!separated) {
    return fmt::format("no empty band of x{:.0f} or more: every distinct time is a step", kMinBandRatio);
  }
  return fmt::format("band {}-{} (x{:.0f})", band_low_s > 0 ? format_duration(band_low_s) : "ties",
                     format_duration(band_high_s), band_high_s / std::max(band_low_s, kTieGap));
}

GapSplit choose_group_window(const std::vector<MeasuredRequest>& reqs) {
  GapSplit split;
  const auto all = sorted_tokens(reqs);
  if (all.size() < 2) return split;
  std::vector<double> gaps;
  gaps.reserve(all.size() - 1);
  for (std::size_t i = 1; i < all.size(); ++i) gaps.push_back(std::max(all[i].t - all[i - 1].t, kTieGap));
  std::sort(gaps.begin(), gaps.end());
  split.gaps = gaps.size();
  // The window must stay below a request's own inter-token gaps (one token per request per step).
  std::vector<double> own;
  for (const auto& r : reqs) {
    for (std::size_t k = 1; k < r.token_times_s.size(); ++k) own.push_back(r.token_times_s[k] - r.token_times_s[k - 1]);
  }
  double cap = std::numeric_limits<double>::infinity();
  if (!own.empty()) {
    std::sort(own.begin(), own.end());
    split.request_gap_p1_s = percentile(own, 1.0);
    cap = std::max(split.request_gap_p1_s, kTieGap);
  }
  // Bands between consecutive sorted gaps [gaps[i], gaps[i + 1]], each class at least kMinClassShare of them, the
  // window (the band's geometric middle) below the cap, and the upper class starting near the cap (between-step
  // gaps are step durations, as a request's own gaps are: a band far below them splits the spread of a step's
  // timestamps, e.g. ties from a coarse clock against one clock tick).
  const double floor = std::isfinite(cap) ? cap / kMinBandRatio : 0.0;
  const auto min_class = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(kMinClassShare * double(gaps.size()))));
  double best = 0;
  for (std::size_t i = min_class - 1; i + min_class < gaps.size(); ++i) {
    const double lo = gaps[i], hi = gaps[i + 1];
    if (!(hi > lo) || std::sqrt(lo * hi) >= cap || hi < floor) continue;
    const double width = std::log(hi / lo);
    if (width > best) {
      best = width;
      split.band_low_s = lo <= kTieGap ? 0.0 : lo;
      split.band_high_s = hi;
    }
  }
  split.separated = best >= std::log(kMinBandRatio);
  split.window_s = split.separated ? split.suggestion_s() : kTieGap;
  return split;
}

MeasuredSteps group_tokens(const std::vector<MeasuredRequest>& reqs, double window_s) {
  MeasuredSteps m;
  m.group_of.resize(reqs.size());
  for (std::size_t r = 0; r < reqs.size(); ++r) m.group_of[r].assign(reqs[r].token_times_s.size(), 0);
  const auto all = sorted_tokens(reqs);
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i == 0 || all[i].t - all[i - 1].t > window_s) {
      m.time_s.push_back(all[i].t);
      m.begin.push_back(m.tokens.size());
    }
    m.tokens.push_back(all[i].ref);
    m.group_of[all[i].ref.request][all[i].ref.index] = static_cast<std::uint32_t>(m.time_s.size() - 1);
  }
  m.begin.push_back(m.tokens.size());
  for (std::size_t g = 0; g + 1 < m.begin.size(); ++g) {
    std::sort(m.tokens.begin() + static_cast<std::ptrdiff_t>(m.begin[g]),
              m.tokens.begin() + static_cast<std::ptrdiff_t>(m.begin[g + 1]));
  }
  return m;
}

}  // namespace servesim
