// A request as the workload produces it: when it arrives and how many tokens it has and will generate.
#pragma once
#include <cstdint>

#include "models/common/units.h"

namespace servesim {

struct Request {
  std::uint64_t id = 0;
  Ns arrival{0};
  std::int64_t prompt_tokens = 0;
  std::int64_t output_tokens = 0;
};

}  // namespace servesim
