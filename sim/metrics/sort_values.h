// Exact ascending sort of the recorder's packed gap runs (sim/metrics/recorder.h GapRuns): a bucket's entries, which
// the run statistics visit in ascending order.
#pragma once
#include <cstdint>
#include <vector>

namespace servesim {

// Sorts `v` ascending: by LSD radix sort on 11-bit digits (one counting pass for all three digits, then one stable
// scatter for each digit whose values are not all equal; O(n) time and n x 4 bytes of scratch, which `scratch`
// provides and keeps for reuse), or by pattern-defeating quicksort (Boost.Sort) below 2048 values.
void sort_ascending(std::vector<std::uint32_t>& v, std::vector<std::uint32_t>& scratch);

}  // namespace servesim
