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
#include <limits>

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

// Rounds a duration to the event core's integer nanoseconds (half away from zero).
[[nodiscard]] inline Ns to_ns(Seconds s) { return Ns{static_cast<std::int64_t>(std::llround(s.v * 1e9))}; }
[[nodiscard]] constexpr Seconds to_seconds(Ns t) { return Seconds{static_cast<double>(t.v) * 1e-9}; }
[[nodiscard]] constexpr double ns_to_s(Ns t) { return static_cast<double>(t.v) * 1e-9; }
[[nodiscard]] constexpr double ns_to_ms(Ns t) { return static_cast<double>(t.v) * 1e-6; }

inline constexpr Ns kNever{std::numeric_limits<std::int64_t>::max()};

}  // namespace servesim
