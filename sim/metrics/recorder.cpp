#include "sim/metrics/recorder.h"

namespace servesim {

void Recorder::finished(const Sequence& s, std::int32_t replica, Ns now) {
  RequestRecord r;
  r.id = s.req.id;
  r.replica = replica;
  r.preemptions = s.preemptions;
  r.prompt_tokens = s.req.prompt_tokens;
  r.output_tokens = s.generated;
  r.arrival = s.req.arrival;
  r.ready = s.ready;
  r.first_scheduled = s.first_scheduled;
  r.first_token = s.first_token;
  r.finish = now;
  records_.push_back(r);
}

}  // namespace servesim
