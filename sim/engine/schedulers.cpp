// The scheduler registry: one line per implementation.
#include "sim/engine/scheduler.h"

namespace servesim {

const SchedulerRegistry& scheduler_registry() {
  static const SchedulerRegistry r = [] {
    SchedulerRegistry reg("scheduler");
    reg.add("vllm", make_vllm_scheduler);
    return reg;
  }();
  return r;
}

}  // namespace servesim
