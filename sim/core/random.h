// Seeded random streams, one per purpose ("arrivals", "prompt_tokens", ...). Each stream's seed is derived from
// the scenario seed and the stream's name, so adding a component (a new stream) does not shift the numbers any
// other component draws. Use Boost.Random distributions with these engines: they give the same numbers on
// every platform, unlike std:: distributions.
#pragma once
#include <cstdint>
#include <string_view>

#include <boost/random/mersenne_twister.hpp>

namespace servesim {

using RandomEngine = boost::random::mt19937_64;

[[nodiscard]] constexpr std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

[[nodiscard]] inline RandomEngine make_stream(std::uint64_t seed, std::string_view name) {
  return RandomEngine(splitmix64(seed ^ fnv1a(name)));
}

}  // namespace servesim
