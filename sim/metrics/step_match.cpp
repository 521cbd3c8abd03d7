#include "sim/metrics/step_match.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace servesim {

EngineOverhead to_overhead(const TermVector& t) {
  EngineOverhead o;
  o.per_step = Seconds{t[0]};
  o.per_decode_seq = Seconds{t[1]};
  o.per_prefill_seq = Seconds{t[2]};
  o.per_prefill_token = Seconds{t[3]};
  o.per_sampled_token = Seconds{t[4]};
  return o;
}

TermVector from_overhead(const EngineOverhead& o) {
  return {o.per_step.v, o.per_decode_seq.v, o.per_prefill_seq.v, o.per_prefill_token.v, o.per_sampled_token.v};
}

double StepRow::overhead(const TermVector& t) const {
  double s = 0;
  for (std::size_t j = 0; j < kTerms; ++j) s += x[j] * t[j];
  return s;
}

namespace {

TermVector features_of(const BatchShape& b) {
  return {1.0, double(b.num_decodes), double(b.prefills.size()), double(b.prefill_tokens()), double(b.num_sampled)};
}

// The step's GPU time: StepModel's token, sampling and attention parts, or the host's launch time if longer (its
// step time adds the overhead to them). With data-parallel attention, of the busiest rank (StepModel::busiest_rank).
double gpu_time(const StepModel& m, const BatchShape& b) {
  BoundTimes unused;
  const bool samples = b.num_sampled > 0;
  if (m.parallel().data > 1) {
    const BatchShape rank = m.busiest_rank(b);
    const StepModel::GraphStep g = m.graph_step(b.prefills.empty(), rank.total_tokens(), b.total_tokens());
    return StepModel::launch_bound(m.rank_token_time(g.rank_tokens, g.step_tokens, unused) +
                                       m.sampling_time(b.num_sampled) + m.attention_time(rank),
                                   m.host_time(g.run, samples), unused)
        .v;
  }
  const StepModel::GraphStep g = m.graph_step(b.prefills.empty(), b.total_tokens(), b.total_tokens());
  return StepModel::launch_bound(m.token_time(g.rank_tokens) + m.sampling_time(b.num_sampled) + m.attention_time(b),
                                 m.host_time(g.run, samples), unused)
      .v;
}

void add(TermVector& a, const TermVector& b) {
  for (std::size_t j = 0; j < kTerms; ++j) a[j] += b[j];
}

// Steps summed since the last measured anchor.
struct Chain {
  double start = 0;    // measured time the first step started (seconds)
  bool valid = false;  // the start is a measured time
  bool idle = false;   // the first step started an idle engine
  TermVector x{};
  double gpu = 0;
  std::int32_t steps = 0;
};

}  // namespace

MatchResult match_steps(const std::vector<MeasuredRequest>& reqs, const MeasuredSteps& groups,
                        const ScheduleEngine& engine, const TermVector& terms, double burst_s) {
  MatchResult out;
  out.groups = groups.groups();
  const EngineConfig& cfg = engine.config;
  const StepModel& model = *engine.model;
  auto scheduler = engine.make_scheduler();
  KvCacheManager kv(cfg.num_kv_blocks, cfg.block_size);
  std::vector<Sequence> seqs(reqs.size());
  std::vector<double> ready(reqs.size());
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    seqs[i].req = Request{i, Ns{0}, reqs[i].prompt_tokens, reqs[i].output_tokens};
    ready[i] = reqs[i].arrival_s + ns_to_s(cfg.front_end.delay(reqs[i].prompt_tokens));
  }
  std::vector<std::size_t> order(reqs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ready[a] < ready[b]; });

  std::vector<Sequence*> running;
  std::deque<Sequence*> waiting;
  EngineQueues q{running, waiting, kv};
  StepPlan plan;
  BatchShape batch;
  std::vector<TokenRef> emitted;
  std::vector<std::uint32_t> hits;
  std::size_t next = 0;
  double t = -std::numeric_limits<double>::infinity();
  Chain chain;
  for (;;) {
    // Requests ready by the step's start join the waiting queue (Engine::submit's checks first).
    for (; next < order.size() && ready[order[next]] <= t; ++next) {
      Sequence& s = seqs[order[next]];
      const std::int64_t total = s.req.prompt_tokens + s.req.output_tokens;
      if ((cfg.max_model_len > 0 && total > cfg.max_model_len) || !kv.can_ever_fit(total - 1)) {
        ++out.rejected;
        continue;
      }
      waiting.push_back(&s);
    }
    if (running.empty() && waiting.empty()) {
      if (next >= order.size()) break;
      // An idle engine starts when the next request is ready; a burst of requests sent closer together than
      // the step window (an offline batch submitted over a millisecond) is picked up as one, as is every request
      // whose first token the first step emitted (the engine evidently waited for it).
      t = ready[order[next]];
      const auto& wake_tokens = groups.group_of[order[next]];
      const double end = wake_tokens.empty() ? t : groups.time_s[wake_tokens.front()];
      for (std::size_t j = next; j + 1 < order.size() && ready[order[j + 1]] - ready[order[j]] <= burst_s &&
                                 ready[order[j + 1]] < end;
           ++j) {
        t = ready[order[j + 1]];
      }
      if (!wake_tokens.empty()) {
        const std::uint32_t g = wake_tokens.front();
        for (std::size_t i = groups.begin[g]; i < groups.begin[g + 1]; ++i) {
          const TokenRef& tok = groups.tokens[i];
          if (tok.index == 0 && ready[tok.request] < end) t = std::max(t, ready[tok.request]);
        }
      }
      chain = Chain{t, true, true, {}, 0.0, 0};
      continue;
    }
    scheduler->schedule(q, plan);
    if (plan.scheduled.empty()) throw std::logic_error("calibrate trace: the scheduler made no progress with work queued");
    plan.shape(batch);  // as Engine::start_step does
    const TermVector x = features_of(batch);
    const double gpu = gpu_time(model, batch);
    ++out.simulated_steps;
    add(chain.x, x);
    chain.gpu += gpu;
    ++chain.steps;
    // The step's end, as Engine::end_step handles it.
    emitted.clear();
    for (Sequence* s : plan.scheduled) {
      s->computed += s->scheduled;
      s->scheduled = 0;
      if (s->computed < s->num_tokens()) continue;
      emitted.push_back({static_cast<std::uint32_t>(s->req.id), static_cast<std::uint32_t>(s->generated)});
      ++s->generated;
      if (s->done()) kv.release(*s);
    }
    running.erase(std::remove_if(running.begin(), running.end(), [](const Sequence* s) { return s->done(); }),
                  running.end());
    if (emitted.empty()) {
      // No timestamp: the step takes its predicted time.
      double overhead = 0;
      for (std::size_t j = 0; j < kTerms; ++j) overhead += x[j] * terms[j];
      t += gpu + overhead;
      continue;
    }
    // The measured group of the step's tokens: the one most of them fell in (earliest on a tie).
    hits.clear();
    for (const TokenRef& e : emitted) hits.push_back(groups.group_of[e.request][e.index]);
    std::sort(hits.begin(), hits.end());
    std::uint32_t g = hits.front();
    std::size_t best = 0;
    for (std::size_t i = 0; i < hits.size();) {
      std::size_t j = i;
      while (j < hits.size() && hits[j] == hits[i]) ++j;
      if (j - i > best) {
        best = j - i;
        g = hits[i];
      }
      i = j;
    }
    const double end = groups.time_s[g];
    const bool matched = best == emitted.size() && groups.size(g) == emitted.size() && end >= t;
    if (matched) {
      ++out.matched;
      if (chain.valid && end > chain.start) {
        out.rows.push_back({end - chain.start, chain.gpu, chain.x, chain.steps, chain.idle, chain.start, end});
        if (chain.idle) ++out.idle_starts;
      }
    }
    t = std::max(t, end);
    chain = Chain{t, matched, false, {}, 0.0, 0};
  }
  return out;
}

MatchResult direct_rows(const std::vector<MeasuredRequest>& reqs, const MeasuredSteps& groups,
                        const ScheduleEngine& engine) {
  MatchResult out;
  out.groups = groups.groups();
  BatchShape batch;
  for (std::size_t g = 0; g < groups.groups(); ++g) {
    batch.clear();
    double latest_ready = -std::numeric_limits<double>::infinity();
    for (std::size_t i = groups.begin[g]; i < groups.begin[g + 1]; ++i) {
      const TokenRef& tok = groups.tokens[i];
      const MeasuredRequest& r = reqs[tok.request];
      if (tok.index == 0) {
        batch.prefills.push_back(PrefillChunk{r.prompt_tokens, 0});
        latest_ready = std::max(latest_ready, r.arrival_s + ns_to_s(engine.config.front_end.delay(r.prompt_tokens)));
      } else {
        ++batch.num_decodes;
        batch.decode_context_tokens += r.prompt_tokens + tok.index;
      }
      ++batch.num_sampled;
    }
    double anchor = g > 0 ? groups.time_s[g - 1] : -std::numeric_limits<double>::infinity();
    const bool idle = latest_ready > anchor;
    if (idle) anchor = latest_ready;
    if (!(groups.time_s[g] > anchor)) continue;
    ++out.matched;
    out.idle_starts += idle;
    out.rows.push_back(
        {groups.time_s[g] - anchor, gpu_time(*engine.model, batch), features_of(batch), 1, idle, anchor, groups.time_s[g]});
    ++out.simulated_steps;
  }
  return out;
}

}  // namespace servesim
