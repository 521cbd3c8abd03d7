// Shared helpers for the step-model tests: a communication model that costs nothing, and an op of a breakdown by
// name.
#pragma once
#include <catch2/catch.hpp>

#include <string>

#include "models/cost/step_model.h"

namespace servesim::test {

// Every collective free: isolates the compute and memory parts of a step.
struct FreeComm final : GroupComm {
  [[nodiscard]] OpCost all_reduce(Bytes) const override { return {}; }
  [[nodiscard]] OpCost send_recv(Bytes) const override { return {}; }
  [[nodiscard]] OpCost gather(Bytes) const override { return {}; }
  [[nodiscard]] OpCost all_gather(Bytes) const override { return {}; }
  [[nodiscard]] OpCost expert_collective(CollectiveOp, Bytes, ExpertScope, bool) const override { return {}; }
};

// The op of `c` named `name` (fails the test when there is none).
inline const StepOp& op_named(const StepCost& c, const std::string& name) {
  for (const auto& o : c.ops) {
    if (o.name == name) return o;
  }
  FAIL("no op " << name);
  return c.ops.front();
}

}  // namespace servesim::test
