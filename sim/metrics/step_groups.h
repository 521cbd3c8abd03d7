// Measured token times grouped into engine steps (for `servesim calibrate trace`).
//
// A continuous-batching engine emits the tokens of one step together, at the step's end, but the timestamps of a
// step's tokens spread: a client stamps them as it reads the stream (up to ~1 ms apart), an engine as it walks
// its output list (microseconds). Sorted by time, the gaps between consecutive token times of a run fall into two
// classes: inside a step (the spread) and between steps (a step's duration). Groups are formed by single
// linkage: consecutive sorted times at most `window` apart belong to one step.
//
// The window comes from the run's gap histogram (choose_group_window): the widest empty band in log(gap) that
// separates a lower class (within-step gaps, including exact ties) from an upper class (between-step gaps), with
// the window at the band's geometric middle. Two physical constraints keep the choice honest:
//  - a request emits at most one token per step, so the window must stay below the gaps between a request's own
//    consecutive tokens (below their 1st percentile: a few stream chunks carrying two tokens are tolerated);
//  - the upper class starts no lower than a factor kMinBandRatio below that percentile: between-step gaps are
//    step durations, as a request's own gaps are, so a band far below them only splits the spread of a step's
//    timestamps (e.g. ties of a microsecond clock against one tick);
//  - each class holds at least 0.2 % of the gaps, so that a sparse tail (a few near-ties, a few stalls) does not
//    make the widest band.
// A band narrower than a factor kMinBandRatio is not taken as a separation: the run then shows no within-step
// spread, and only identical times are grouped (window kTieGap).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/io/measured.h"

namespace servesim {

// Gaps at or below this (seconds) are ties: the simulator's clock resolution (1 ns), finer than any real clock.
inline constexpr double kTieGap = 1e-9;
// The smallest empty band (ratio of its upper to lower edge) taken as the separation of within-step from
// between-step gaps. A judgment constant: one population of step durations (decode and prefill steps of one
// engine) fills its range densely, so a factor-4 hole with 0.2 % of the gaps on each side is a class boundary.
inline constexpr double kMinBandRatio = 4.0;
// Each class's minimum share of the gaps (see above).
inline constexpr double kMinClassShare = 0.002;

struct GapSplit {
  double window_s = kTieGap;  // the chosen window (seconds)
  double band_low_s = 0;      // the widest admissible band: largest gap below it (0 = the ties)
  double band_high_s = 0;     //   and smallest gap above it (0 = no band found)
  bool separated = false;     // the band is at least kMinBandRatio wide (window_s is its geometric middle)
  double request_gap_p1_s = 0;  // 1st percentile of the gaps between a request's own consecutive tokens (0: none)
  std::size_t gaps = 0;       // gaps between consecutive token times of the run
  // The band's geometric middle whether or not it is wide enough (a suggestion for --group-window; 0 if none).
  [[nodiscard]] double suggestion_s() const;
  [[nodiscard]] std::string describe() const;  // "band 41us-5.2ms (x127)", or why there is none
};

[[nodiscard]] GapSplit choose_group_window(const std::vector<MeasuredRequest>& reqs);

// A token of a measured run: request index (arrival order) and token index (0 = first token).
struct TokenRef {
  std::uint32_t request = 0;
  std::uint32_t index = 0;
  auto operator<=>(const TokenRef&) const = default;
};

// The run's tokens in groups (candidate steps), in time order.
struct MeasuredSteps {
  std::vector<double> time_s;              // per group: its earliest token time (closest to the step's end)
  std::vector<std::size_t> begin;          // per group + 1: members are tokens[begin[g] .. begin[g + 1])
  std::vector<TokenRef> tokens;            // every token, group after group (sorted inside a group)
  std::vector<std::vector<std::uint32_t>> group_of;  // [request][token index] -> group
  [[nodiscard]] std::size_t groups() const { return time_s.size(); }
  [[nodiscard]] std::size_t size(std::size_t g) const { return begin[g + 1] - begin[g]; }
};

[[nodiscard]] MeasuredSteps group_tokens(const std::vector<MeasuredRequest>& reqs, double window_s);

// "41us", "5.2ms", "1.40s": a duration in a unit that suits it (3 significant digits).
[[nodiscard]] std::string format_duration(double seconds);

}  // namespace servesim
