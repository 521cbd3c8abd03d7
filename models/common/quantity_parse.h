// Parsing of quantities written with units, as found in scenarios and on the command line:
//   sizes       "512", "4KiB", "1.5MiB", "16GiB", "80GB", "1TB"   -> Bytes   (KiB = 1024, KB = 1000)
//   bandwidths  "450GB/s", "25GiB/s", "400Gb/s", "400Gbps"        -> BytesPerSec (b = bit, B = byte)
//   durations   "5us", "1.5ms", "2s", "700ns"                      -> Seconds
// A bare number is taken in the base unit (bytes, bytes/s, seconds). A wrong unit throws InputError.
#pragma once
#include <string>
#include <string_view>

#include "models/common/units.h"

namespace servesim {

[[nodiscard]] Bytes parse_bytes(std::string_view text);
[[nodiscard]] BytesPerSec parse_bandwidth(std::string_view text);
[[nodiscard]] Seconds parse_duration(std::string_view text);

}  // namespace servesim
