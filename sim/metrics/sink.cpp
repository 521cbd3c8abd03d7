#include "sim/metrics/sink.h"

namespace servesim {

SinkFanout::SinkFanout(std::vector<RunSink*> sinks) : sinks_(std::move(sinks)) {
  for (const RunSink* s : sinks_) wants_tokens_ = wants_tokens_ || s->wants_tokens();
}

void SinkFanout::arrived(Ns t, const Request& r, std::int32_t replica) {
  for (RunSink* s : sinks_) s->arrived(t, r, replica);
}
void SinkFanout::rejected(Ns t, std::uint64_t id, RejectReason why, const std::function<std::string()>& detail) {
  for (RunSink* s : sinks_) s->rejected(t, id, why, detail);
}
void SinkFanout::queued(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine, std::int64_t waiting) {
  for (RunSink* s : sinks_) s->queued(t, id, replica, engine, waiting);
}
void SinkFanout::scheduled(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine) {
  for (RunSink* s : sinks_) s->scheduled(t, id, replica, engine);
}
void SinkFanout::chunk_done(Ns t, std::uint64_t id, std::int64_t computed) {
  for (RunSink* s : sinks_) s->chunk_done(t, id, computed);
}
void SinkFanout::preempted(Ns t, std::uint64_t id, std::int32_t replica, std::int32_t engine) {
  for (RunSink* s : sinks_) s->preempted(t, id, replica, engine);
}
void SinkFanout::token(Ns t, std::uint64_t id) {
  for (RunSink* s : sinks_) {
    if (s->wants_tokens()) s->token(t, id);
  }
}
void SinkFanout::inter_token(Ns gap) {
  for (RunSink* s : sinks_) s->inter_token(gap);
}
void SinkFanout::finished(const RequestRecord& r) {
  for (RunSink* s : sinks_) s->finished(r);
}
void SinkFanout::step_started(const StepEvent& e) {
  for (RunSink* s : sinks_) s->step_started(e);
}
void SinkFanout::step_ended(const StepEvent& e) {
  for (RunSink* s : sinks_) s->step_ended(e);
}
void SinkFanout::transfer_started(const TransferEvent& x) {
  for (RunSink* s : sinks_) s->transfer_started(x);
}
void SinkFanout::transfer_ended(const TransferEvent& x) {
  for (RunSink* s : sinks_) s->transfer_ended(x);
}

}  // namespace servesim
