#include "sim/cluster/admission.h"

namespace servesim {

AdmissionLimits read_admission(const Config& admission) {
  AdmissionLimits a;
  if (admission.has("max_queued_requests")) a.max_queued_requests = admission.positive_int("max_queued_requests");
  if (admission.has("max_total_queued_requests")) {
    a.max_total_queued_requests = admission.positive_int("max_total_queued_requests");
  }
  return a;
}

}  // namespace servesim
