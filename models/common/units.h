// Strong unit types. Every physical quantity in servesim carries its unit in its type:
//   Ns          simulated time or a duration, int64 nanoseconds (the event core's clock)
//   Seconds     a duration as double seconds (cost models compute in these)
//   Bytes       a data size, double bytes (sizes of tensors reach 1e12 and are divided freely)
//   BytesPerSec a bandwidth, double bytes per second
//   Flops       an amount of floating-point work, double FLOP
//   FlopsPerSec a compute rate, double FLOP per second
// Arithmetic that mixes units is only defined where it means something (Bytes / BytesPerSec = Seconds).
#pragma once
#include <cmath>
#include <compare>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "models/common/error.h"

namespace servesim {

template <class Tag, class Rep>
struct Quantity {
  Rep v{};
  constexpr Quantity() = default;
  constexpr explicit Quantity(Rep value) : v(value) {}
  [[nodiscard]] constexpr Rep value() const { return v; }
  constexpr auto operator<=>(const Quantity&) const = default;
  constexpr Quantity& operator+=(Quantity o) { v += o.v; return *this; }
  constexpr Quantity& operator-=(Quantity o) { v -= o.v; return *this; }
  [[nodiscard]] friend constexpr Quantity operator+(Quantity a, Quantity b) { return Quantity{a.v + b.v}; }
  [[nodiscard]] friend constexpr Quantity operator-(Quantity a, Quantity b) { return Quantity{a.v - b.v}; }
  [[nodiscard]] friend constexpr Quantity operator*(Quantity a, Rep k) { return Quantity{a.v * k}; }
  [[nodiscard]] friend constexpr Quantity operator*(Rep k, Quantity a) { return Quantity{a.v * k}; }
  [[nodiscard]] friend constexpr Quantity operator/(Quantity a, Rep k) { return Quantity{a.v / k}; }
  [[nodiscard]] friend constexpr Rep operator/(Quantity a, Quantity b) { return a.v / b.v; }
};

struct NsTag {};
struct SecondsTag {};
struct BytesTag {};
struct BytesPerSecTag {};
struct FlopsTag {};
struct FlopsPerSecTag {};

using Ns = Quantity<NsTag, std::int64_t>;
using Seconds = Quantity<SecondsTag, double>;
using Bytes = Quantity<BytesTag, double>;
using BytesPerSec = Quantity<BytesPerSecTag, double>;
using Flops = Quantity<FlopsTag, double>;
using FlopsPerSec = Quantity<FlopsPerSecTag, double>;

[[nodiscard]] constexpr Seconds operator/(Bytes b, BytesPerSec bw) { return Seconds{b.v / bw.v}; }
[[nodiscard]] constexpr Seconds operator/(Flops f, FlopsPerSec r) { return Seconds{f.v / r.v}; }
[[nodiscard]] constexpr Bytes operator*(BytesPerSec bw, Seconds t) { return Bytes{bw.v * t.v}; }

inline constexpr double kKiB = 1024.0;
inline constexpr double kMiB = 1024.0 * 1024.0;
inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
inline constexpr double kGB = 1e9;

[[nodiscard]] constexpr Seconds us(double x) { return Seconds{x * 1e-6}; }
[[nodiscard]] constexpr Seconds ms(double x) { return Seconds{x * 1e-3}; }
[[nodiscard]] constexpr double to_ms(Seconds s) { return s.v * 1e3; }
[[nodiscard]] constexpr double to_us(Seconds s) { return s.v * 1e6; }

// Limits of one run. Input is checked against them where it enters (scenario keys, traces, measured runs,
// command-line flags), and anything past them is an InputError naming the key (or file:line) and the limit, so
// that no count or time inside the simulator can overflow its int64 (or lose its exactness in a double):
//   kMaxSimSeconds        1e7 s (about 116 days) of simulated time: a time or duration anywhere in a run. The
//                         clock holds 9.2e9 s, so sums of a few such times (arrival + queueing + steps) never
//                         overflow; a week-long production trace (Azure's: 6.0e5 s) fits with room to replay it
//                         16x slower; and in a double, times up to 1e7 s keep a resolution of 2 ns.
//   kMaxTokensPerRequest  1e7 tokens in one request's prompt or output (and in max_model_len): the longest
//                         context windows of today's models are 1e6-1e7 tokens; products such as tokens x tokens
//                         (attention) and tokens x requests stay far inside int64 and exact in a double (2^53).
//   kMaxRequestsPerRun    1e8 requests in one run: the recorder keeps one packed record per request for the
//                         percentiles (10 M requests of the benchmark load peak at 538 MB resident:
//                         tests/perf/bench_simulate.cpp), so 1e8 is hours of simulation and several GB; with
//                         kMaxTokensPerRequest the run's token total stays below 2^53.
inline constexpr double kMaxSimSeconds = 1e7;
inline constexpr std::int64_t kMaxTokensPerRequest = 10'000'000;
inline constexpr std::int64_t kMaxRequestsPerRun = 100'000'000;
inline constexpr std::int64_t kMaxSimNs = 10'000'000'000'000'000;  // kMaxSimSeconds in ns

// "%g" of a number, for messages ("1e+30", "0.5").
[[nodiscard]] inline std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// The one conversion from seconds to the event core's integer nanoseconds (rounded half away from zero).
// Throws InputError "... s is beyond the simulated-time limit of 1e+07 s" for a value that is not finite or whose
// magnitude exceeds kMaxSimSeconds (input is checked against the limit, with its key, before it gets here; this
// catches what input can still reach through arithmetic, e.g. an absurd step time).
[[nodiscard]] inline Ns to_ns(Seconds s) {
  if (!(std::fabs(s.v) <= kMaxSimSeconds)) {
    throw InputError("a time of " + short_number(s.v) + " s is beyond the simulated-time limit of 1e+07 s");
  }
  // std::llround, written out so the event loop's several conversions a step need no library call: t = trunc(x),
  // and x - t is exact (both have x's sign and |x - t| < 1 <= |t|, or t = 0), so the rounding is exactly llround's.
  const double x = s.v * 1e9;
  const auto t = static_cast<std::int64_t>(x);
  const double frac = x - static_cast<double>(t);
  return Ns{t + (frac >= 0.5 ? 1 : 0) - (frac <= -0.5 ? 1 : 0)};
}
[[nodiscard]] constexpr Seconds to_seconds(Ns t) { return Seconds{static_cast<double>(t.v) * 1e-9}; }
[[nodiscard]] constexpr double ns_to_s(Ns t) { return static_cast<double>(t.v) * 1e-9; }
[[nodiscard]] constexpr double ns_to_ms(Ns t) { return static_cast<double>(t.v) * 1e-6; }

inline constexpr Ns kNever{std::numeric_limits<std::int64_t>::max()};

}  // namespace servesim
