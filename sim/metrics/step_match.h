// Regression rows for the engine-overhead fit: measured step durations next to the simulated steps that produced
// the same tokens (for `servesim calibrate trace`).
//
// Why the schedule runs on the measured clock. A free replay of a measured run through the mean model drifts
// from it: the real engine's steps jitter (sim/engine/step_jitter.h), the sum of that jitter random-walks, and
// after a few dozen steps a request arriving during step k of the real run is admitted at step k +- 1 of the
// replay; every later step holding that request then emits a different set of tokens, and almost nothing
// matches. So match_steps() runs the scenario's own scheduler and KV cache (the Replica's step loop, in the
// same order) with every step ending when its measured token group was stamped: requests join the waiting queue
// at arrival + front end, as in the simulator, but each step starts at the measured end of the one before.
// A step whose prompt chunks emit no token has no timestamp: it ends after its predicted time under the current
// terms, which is why the fit iterates until the terms settle.
//
// Matching: a measured group (step_groups.h) matches a simulated step that emitted exactly its set of (request,
// token index). Each matched group closes one row, from an anchor that is itself measured:
//  - the previous matched group, when the steps in between (prompt chunks that emitted nothing) ran back to back;
//    those steps' features and GPU times are summed into the row;
//  - the arrival (+ front end) of the request that started an idle engine (this captures a real engine's stall
//    on its first step). Requests ready within the step window of each other (an offline batch submitted over a
//    millisecond), and those whose first tokens the step emitted, are taken as one burst: the step starts at the
//    latest of their arrivals.
// A row is y = measured duration - simulated GPU time, x = summed features [1, decodes, prefill sequences,
// prefill tokens, sampled tokens] (models/cost/step_model.h EngineOverhead).
#pragma once
#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "models/cost/step_model.h"
#include "sim/engine/engine.h"
#include "sim/engine/scheduler.h"
#include "sim/io/measured.h"
#include "sim/metrics/step_groups.h"

namespace servesim {

// The overhead terms in EngineOverhead's order, seconds per unit of each feature.
inline constexpr std::size_t kTerms = 5;
using TermVector = std::array<double, kTerms>;
inline constexpr std::array<const char*, kTerms> kTermNames = {"per_step", "per_decode_seq", "per_prefill_seq",
                                                               "per_prefill_token", "per_sampled_token"};
[[nodiscard]] EngineOverhead to_overhead(const TermVector& t);
[[nodiscard]] TermVector from_overhead(const EngineOverhead& o);

struct StepRow {
  double measured_s = 0;  // measured duration of the row's steps (seconds)
  double gpu_s = 0;       // their simulated GPU time (seconds)
  TermVector x{};         // summed features: steps, decodes, prefill sequences, prefill tokens, sampled tokens
  std::int32_t steps = 0;
  bool idle_start = false;  // the first step started an idle engine at a request's arrival (+ front end)
  double start_s = 0;       // measured anchor (the previous group, or the arrival that woke the engine)
  double end_s = 0;         // measured time of the row's own group
  [[nodiscard]] double y() const { return measured_s - gpu_s; }  // the overhead part (seconds)
  [[nodiscard]] double overhead(const TermVector& t) const;      // x . t (seconds)
};

struct MatchResult {
  std::vector<StepRow> rows;
  std::size_t groups = 0;       // measured groups: the candidate steps (each closes one gap)
  std::size_t matched = 0;      // groups that a simulated step emitted exactly
  std::size_t idle_starts = 0;  // rows anchored at an arrival
  std::size_t simulated_steps = 0;
  std::size_t rejected = 0;     // requests the scenario's engine refuses (too long for its KV cache / max_model_len)
};

// The engine the schedule runs: the scenario's step model, limits, KV cache and scheduler.
struct ScheduleEngine {
  std::shared_ptr<const StepModel> model;
  EngineConfig config;
  std::function<std::unique_ptr<Scheduler>()> make_scheduler;
};

// `reqs` in arrival order; `terms` time the steps that emit no token; requests ready within `burst_s` of each
// other (the step window) wake an idle engine together.
[[nodiscard]] MatchResult match_steps(const std::vector<MeasuredRequest>& reqs, const MeasuredSteps& groups,
                                      const ScheduleEngine& engine, const TermVector& terms, double burst_s);

// Rows straight from the measured groups, without a schedule (the fit's starting point): a group's batch is its
// tokens (first tokens = whole prompts as one chunk each, the others decodes at context prompt + index), its
// anchor the previous group or, when one of its new requests was not yet ready then, the latest such
// arrival + front end. Chunked prompts and sequences that emit nothing are invisible here.
[[nodiscard]] MatchResult direct_rows(const std::vector<MeasuredRequest>& reqs, const MeasuredSteps& groups,
                                      const ScheduleEngine& engine);

}  // namespace servesim
