#include "sim/cluster/kv_handoff.h"

#include <algorithm>
#include <stdexcept>

#include "models/common/error.h"
#include "models/cost/kv_transfer.h"

namespace servesim {

namespace {
constexpr std::uint64_t kStartFlows = 0;
constexpr std::uint64_t kFloor = 1;
}  // namespace

KvHandOff::KvHandOff(KvHandOffConfig cfg, const Topology& topology, FlowNetwork& network,
                     const std::vector<std::unique_ptr<Replica>>& decode, std::unique_ptr<Router> decode_router,
                     RunSink& sink)
    : cfg_(std::move(cfg)),
      topo_(topology),
      decode_(decode),
      router_(std::move(decode_router)),
      sink_(sink),
      net_(network),
      waiting_(decode.size()) {
  for (std::size_t i = 0; i < decode_.size(); ++i) {
    for (const auto& e : decode_[i]->engines()) decode_pos_[e.get()] = i;
  }
}

bool KvHandOff::decodable(const Request& r) const {
  for (const auto& d : decode_) {
    for (const auto& e : d->engines()) {
      if (e->can_ever_hold(r)) return true;
    }
  }
  return false;
}

void KvHandOff::refuse(Simulator& sim, const Request& r, std::int32_t replica) {
  sink_.arrived(sim.now(), r, replica);
  sink_.rejected(sim.now(), r.id, RejectReason::exceeds_kv_cache, [&] {
    return "request " + std::to_string(r.id) + " (" + std::to_string(r.prompt_tokens) + " prompt + " +
           std::to_string(r.output_tokens) + " output tokens) can never fit the KV cache of a decode replica";
  });
}

std::size_t KvHandOff::route(const Sequence& s) {
  const std::size_t i = router_->route(s.req, decode_);
  if (i >= decode_.size()) throw std::logic_error("decode router returned a replica out of range");
  return i;
}

const std::vector<TransportPath>& KvHandOff::paths(int src, int dst) {
  const auto key = std::make_pair(src, dst);
  auto it = paths_.find(key);
  if (it != paths_.end()) return it->second;
  // Every transport that can carry the pair (the forced one only), chosen per request by its time alone.
  const TransportChoice c = select_transport(topo_, src, dst, Bytes{1 << 20}, cfg_.transport, cfg_.calibration.get(),
                                             std::nullopt, cfg_.transport_key);
  std::vector<TransportPath> all{c.path};
  if (!cfg_.transport) {
    for (const TransportCandidate& o : c.others) {
      if (transport_registry().create(o.path.transport, cfg_.transport_key)->auto_selectable()) all.push_back(o.path);
    }
  }
  return paths_.emplace(key, std::move(all)).first->second;
}

void KvHandOff::prefill_starting(Simulator& sim, Engine& from, Sequence& s, Ns step_end) {
  if (!cfg_.layer_streamed) return;
  const std::size_t d = route(s);
  if (!waiting_[d].empty()) return;  // first come, first served behind the requests already waiting there
  if (!try_start(sim, from, s, d, kNever, s.computed + s.scheduled)) return;
  Transfer& t = transfers_[streaming_.at(&s)];
  // The last layer's KV leaves the last stage when the prefill step ends: at its share of the bytes at the rate
  // alone.
  Seconds last{0};
  for (std::size_t k = 0; k < t.flows.size(); ++k) {
    last = std::max(last, Seconds{t.flow_last_layer[k] / t.flows[k].cap.v});
  }
  t.floor = step_end + to_ns(last);
}

bool KvHandOff::try_start(Simulator& sim, Engine& from, Sequence& s, std::size_t d, Ns handed,
                          std::int64_t tokens) {
  Replica& rep = *decode_[d];
  // The engine with the fewest requests (outstanding, and reserved with their KV on its way; ties: the lowest index)
  // that has the blocks.
  std::vector<Engine*> order;
  for (const auto& e : rep.engines()) order.push_back(e.get());
  std::stable_sort(order.begin(), order.end(), [](const Engine* a, const Engine* b) {
    return a->outstanding() + a->incoming() < b->outstanding() + b->incoming();
  });
  Sequence* dst = nullptr;
  Engine* to = nullptr;
  for (Engine* e : order) {
    dst = e->reserve(s, tokens);
    if (dst != nullptr) {
      to = e;
      break;
    }
  }
  if (dst == nullptr) return false;
  std::uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<std::uint32_t>(transfers_.size());
    transfers_.emplace_back();
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
    transfers_[slot] = Transfer{};
  }
  Transfer& t = transfers_[slot];
  t.from = &from;
  t.src = &s;
  t.to = to;
  t.dst = dst;
  t.decode_replica = rep.index();
  t.reserved = sim.now();
  t.handed = handed;
  const auto& src_gpus = cfg_.replica_gpus.at(static_cast<std::size_t>(from.replica()));
  const auto& dst_gpus = cfg_.replica_gpus.at(static_cast<std::size_t>(rep.index()));
  const KvLayout src_layout = cfg_.replica_layout.at(static_cast<std::size_t>(from.replica()));
  const KvLayout dst_layout = cfg_.replica_layout.at(static_cast<std::size_t>(rep.index()));
  // Sliding-window layers move only the blocks the prefill engine still holds (vLLM's NIXL connector with the hybrid
  // KV cache manager: each group's held blocks).
  const std::vector<KvShard> shards = kv_transfer_pairs(cfg_.arch, tokens, src_layout, dst_layout,
                                                        from.kv().sliding_window(), from.kv().block_size());
  Seconds delay{0};
  // With data-parallel attention each engine is one rank of its replica (its index); else every engine (pipeline
  // micro-batch engines) uses all of the replica's GPUs.
  const int src_rank = src_layout.dp > 1 ? from.index() : 0;
  const int dst_rank = dst_layout.dp > 1 ? to->index() : 0;
  for (const KvShard& k : shards) {
    t.bytes += k.bytes.v;
    const int a = src_gpus.at(src_layout.gpu(k.sender_stage, src_rank, k.sender_rank));
    const int b = dst_gpus.at(dst_layout.gpu(k.receiver_stage, dst_rank, k.receiver_rank));
    if (a == b) continue;  // the same GPU: nothing moves
    const TransportPath* best = nullptr;
    Seconds best_time{0};
    for (const TransportPath& p : paths(a, b)) {
      const Seconds time = p.time_alone(k.bytes);
      if (best == nullptr || time < best_time) {
        best = &p;
        best_time = time;
      }
    }
    delay = std::max(delay, best->start_delay(k.bytes));
    t.flows.push_back(best->flow_demand(k.bytes));
    t.flow_bytes.push_back(k.bytes.v);
    t.flow_last_layer.push_back(k.sender_stage == src_layout.pp - 1 && k.layers > 0
                                    ? k.bytes.v / static_cast<double>(k.layers)
                                    : 0.0);
  }
  t.flows_left = static_cast<std::int32_t>(t.flows.size());
  t.delay = to_ns(delay);
  ++counts_.in_transfer;
  if (handed == kNever) {
    streaming_[&s] = slot;
    ++counts_.streaming;
  }
  sink_.transfer_started(TransferEvent{s.req.id, from.replica(), rep.index(), t.bytes, t.reserved, t.reserved});
  sim.schedule(sim.now() + t.delay, Priority::transfer_end, this, std::uint64_t{slot} * 2 + kStartFlows);
  return true;
}

void KvHandOff::on_event(Simulator& sim, std::uint64_t arg) {
  const auto slot = static_cast<std::uint32_t>(arg / 2);
  Transfer& t = transfers_[slot];
  if (arg % 2 == kStartFlows) {
    if (t.flows.empty()) {
      t.data_done = sim.now();
      maybe_finish(sim, slot);
      return;
    }
    if (sampler_ != nullptr) sampler_->observe(sim.now());
    for (std::size_t k = 0; k < t.flows.size(); ++k) {
      net_.start(sim, t.flows[k], Bytes{t.flow_bytes[k]}, this, slot);
    }
  } else {
    maybe_finish(sim, slot);
  }
}

void KvHandOff::flow_done(Simulator& sim, std::uint64_t tag) {
  if (sampler_ != nullptr) sampler_->observe(sim.now());
  const auto slot = static_cast<std::uint32_t>(tag);
  Transfer& t = transfers_[slot];
  if (--t.flows_left > 0) return;
  t.data_done = sim.now();
  maybe_finish(sim, slot);
}

void KvHandOff::maybe_finish(Simulator& sim, std::uint32_t slot) {
  Transfer& t = transfers_[slot];
  if (t.data_done == kNever || t.handed == kNever) return;
  if (sim.now() < t.floor) {
    sim.schedule(t.floor, Priority::transfer_end, this, std::uint64_t{slot} * 2 + kFloor);
    return;
  }
  const Ns now = sim.now();
  Sequence* dst = t.dst;
  dst->prefill_replica = t.from->replica();
  dst->decode_wait = std::max(Ns{0}, t.reserved - t.handed);
  dst->kv_transfer = now - std::max(t.reserved, t.handed);
  sink_.transfer_ended(TransferEvent{t.src->req.id, t.from->replica(), t.decode_replica, t.bytes, t.reserved, now});
  --counts_.in_transfer;
  ++counts_.received;
  Engine* from = t.from;
  Sequence* src = t.src;
  Engine* to = t.to;
  free_slots_.push_back(slot);
  from->release_handed_off(sim, src);
  to->receive(sim, dst);
}

void KvHandOff::prefill_done(Simulator& sim, Engine& from, Sequence& s) {
  ++counts_.handed_off;
  const auto it = streaming_.find(&s);
  if (it != streaming_.end()) {
    const std::uint32_t slot = it->second;
    streaming_.erase(it);
    --counts_.streaming;
    Transfer& t = transfers_[slot];
    t.handed = sim.now();
    // The copy reserved when the step started missed the step's results: its first token and its times.
    Sequence* dst = t.dst;
    const std::int64_t blocks = dst->blocks;
    const std::int64_t null_blocks = dst->null_blocks;
    const std::int64_t swa_blocks = dst->swa_blocks;
    const std::int64_t swa_null = dst->swa_null;
    *dst = s;
    dst->blocks = blocks;
    dst->null_blocks = null_blocks;
    dst->swa_blocks = swa_blocks;
    dst->swa_null = swa_null;
    dst->scheduled = 0;
    maybe_finish(sim, slot);
    return;
  }
  const std::size_t d = route(s);
  if (waiting_[d].empty() && try_start(sim, from, s, d, sim.now(), s.computed)) return;
  ++counts_.waiting;
  waiting_[d].push_back(Waiting{&from, &s, sim.now()});
}

void KvHandOff::kv_freed(Simulator& sim, Engine& e) {
  const std::size_t d = decode_pos_.at(&e);
  auto& q = waiting_[d];
  while (!q.empty()) {
    const Waiting w = q.front();
    if (!try_start(sim, *w.from, *w.src, d, w.handed, w.src->computed)) break;
    q.pop_front();
    --counts_.waiting;
  }
}

}  // namespace servesim
