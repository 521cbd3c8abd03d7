#include "sim/metrics/sort_values.h"

#include <algorithm>
#include <array>
#include <boost/sort/pdqsort/pdqsort.hpp>
#include <utility>

namespace servesim {

namespace {

// LSD radix sort of `v` (n values of T, keyed by key(x), an unsigned integer of kDigits x kBits bits or fewer)
// through `scratch`. The digits are taken least significant first; each scatter is stable, so after the last one
// the values are in ascending key order.
template <unsigned kBits, unsigned kDigits, class T, class Key>
void lsd_radix_sort(std::vector<T>& v, std::vector<T>& scratch, Key key) {
  constexpr std::size_t kRadix = std::size_t{1} << kBits;
  constexpr auto kMask = static_cast<std::uint64_t>(kRadix - 1);
  const std::size_t n = v.size();
  std::array<std::array<std::size_t, kRadix>, kDigits> count{};
  for (const T& x : v) {
    const std::uint64_t k = key(x);
    for (unsigned d = 0; d < kDigits; ++d) ++count[d][(k >> (kBits * d)) & kMask];
  }
  scratch.resize(n);
  std::vector<T>* from = &v;
  std::vector<T>* to = &scratch;
  for (unsigned d = 0; d < kDigits; ++d) {
    std::array<std::size_t, kRadix>& at = count[d];
    if (std::find(at.begin(), at.end(), n) != at.end()) continue;  // one value of this digit: already in order
    std::size_t sum = 0;
    for (std::size_t& c : at) sum += std::exchange(c, sum);
    T* out = to->data();
    for (const T& x : *from) out[at[(key(x) >> (kBits * d)) & kMask]++] = x;
    std::swap(from, to);
  }
  if (from != &v) std::copy(from->begin(), from->end(), v.begin());
}

}  // namespace

void sort_ascending(std::vector<std::uint32_t>& v, std::vector<std::uint32_t>& scratch) {
  if (v.size() < 2048) {
    boost::sort::pdqsort(v.begin(), v.end());
    return;
  }
  lsd_radix_sort<11, 3>(v, scratch, [](std::uint32_t x) { return std::uint64_t{x}; });
}

}  // namespace servesim
