#include "sim/scenario/workload_setup.h"

#include "models/common/error.h"

namespace servesim {

std::unique_ptr<WorkloadSource> build_workload(const Config& doc, const PathResolver& paths, std::uint64_t seed) {
  return std::make_unique<WorkloadSource>(doc.table("workload"), paths, seed);
}

void check_requests_fit(const WorkloadSource& workload, std::int64_t max_model_len) {
  const auto min_prompt = workload.min_prompt_tokens();
  if (!min_prompt || max_model_len <= 0) return;
  const std::int64_t min_output = workload.min_output_tokens().value_or(1);
  if (*min_prompt + min_output > max_model_len) {
    throw InputError(workload.prompt_where() + ": every request is longer than engine.max_model_len " +
                     std::to_string(max_model_len) + " (at least " + std::to_string(*min_prompt) + " prompt + " +
                     std::to_string(min_output) +
                     " output tokens), so every one would be rejected: shorten the prompts or raise max_model_len");
  }
}

}  // namespace servesim
