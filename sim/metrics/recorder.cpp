#include "sim/metrics/recorder.h"

#include <ostream>

#include "sim/metrics/measured.h"
#include "sim/metrics/summary.h"

namespace servesim {

const char* reject_reason_name(RejectReason r) {
  switch (r) {
    case RejectReason::exceeds_max_model_len:
      return "exceeds_max_model_len";
    case RejectReason::exceeds_kv_cache:
      return "exceeds_kv_cache";
  }
  return "unknown";
}

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
  if (streaming()) {
    Pending p{records_.size() - 1, {}};
    if (tokens_out_ != nullptr) {
      if (const auto it = live_tokens_.find(r.id); it != live_tokens_.end()) {
        p.tokens = std::move(it->second);
        live_tokens_.erase(it);
      }
    }
    pending_.emplace(r.id, std::move(p));
    flush_ready();
  }
}

void Recorder::stream_to(std::ostream* requests_csv, std::ostream* tokens_jsonl) {
  csv_out_ = requests_csv;
  tokens_out_ = tokens_jsonl;
  if (tokens_out_ != nullptr) logs_ = true;
  if (csv_out_ != nullptr) *csv_out_ << kRequestsCsvHeader;
}

void Recorder::write_row(const Pending& p) {
  if (p.row == kRejectedRow) return;
  const RequestRecord& r = records_[p.row];
  if (csv_out_ != nullptr) {
    line_.clear();
    append_request_row(line_, r);
    *csv_out_ << line_;
  }
  if (tokens_out_ != nullptr) {
    MeasuredRequest m{ns_to_s(r.arrival), r.prompt_tokens, r.output_tokens, {}};
    m.token_times_s.reserve(p.tokens.size());
    for (const Ns t : p.tokens) m.token_times_s.push_back(ns_to_s(t));
    write_measured_jsonl(*tokens_out_, {m});
  }
}

void Recorder::flush_ready() {
  while (!pending_.empty() && pending_.begin()->first == next_id_) {
    write_row(pending_.begin()->second);
    pending_.erase(pending_.begin());
    ++next_id_;
  }
}

void Recorder::finish_streams() {
  for (const auto& [id, p] : pending_) write_row(p);
  pending_.clear();
  live_tokens_.clear();
}

}  // namespace servesim
