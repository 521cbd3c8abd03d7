#include "models/net/comm_group.h"

#include <algorithm>

#include "models/common/error.h"
#include "models/net/collective_calibration.h"
#include "models/net/group_paths.h"

namespace servesim {
namespace {

// Order in which "auto" considers algorithms (and breaks ties), followed by any other registered name.
std::vector<std::string> auto_order() {
  std::vector<std::string> order = {"ring", "tree", "nvls", "hierarchical", "direct"};
  const std::string names = collective_registry().names();  // "a, b, c"
  std::size_t pos = 0;
  while (pos < names.size()) {
    auto comma = names.find(", ", pos);
    if (comma == std::string::npos) comma = names.size();
    std::string n = names.substr(pos, comma - pos);
    if (std::find(order.begin(), order.end(), n) == order.end()) order.push_back(std::move(n));
    pos = comma + 2;
  }
  std::erase_if(order, [](const std::string& n) { return !collective_registry().contains(n); });
  return order;
}

const std::string kLocal = "local";

}  // namespace

CommGroup::CommGroup(std::shared_ptr<const Topology> topo, std::vector<int> gpu_indices, std::string algo,
                     std::shared_ptr<const CollectiveCalibration> cal)
    : topo_(std::move(topo)), gpus_(std::move(gpu_indices)), algo_(std::move(algo)), cal_(std::move(cal)) {
  if (!topo_) throw InputError("CommGroup: no topology");
  if (algo_ != "auto" && !collective_registry().contains(algo_)) {
    throw InputError("unknown collective algorithm '" + algo_ + "' (valid: " + collective_algorithm_names() + ")");
  }
  if (cal_ && cal_->algo() != algo_) {
    throw InputError("collective calibration was fitted against algorithm '" + cal_->algo() + "' but the group uses '" +
                     algo_ + "'");
  }
  const GroupPaths paths(*topo_, gpus_);
  const std::size_t n = gpus_.size();

  pos_of_gpu_.assign(static_cast<std::size_t>(topo_->gpu_count()), -1);
  for (std::size_t p = 0; p < n; ++p) pos_of_gpu_[static_cast<std::size_t>(gpus_[p])] = static_cast<int>(p);
  p2p_sec_per_byte_.assign(n * n, 0.0);
  p2p_latency_.assign(n * n, 0.0);
  for (std::size_t a = 0; a < n; ++a) {
    for (std::size_t b = 0; b < n; ++b) {
      if (a == b) continue;
      const Route& r = paths.route(static_cast<int>(a), static_cast<int>(b));
      p2p_sec_per_byte_[a * n + b] = 1.0 / r.bottleneck.value();
      p2p_latency_[a * n + b] = r.latency.value() + topo_->step_latency().value();
    }
  }
  if (n < 2) return;

  // Plans of every usable algorithm ("auto"), or of the named one with "auto" as the fallback per op.
  std::array<std::vector<Candidate>, kNumCollectiveOps> all;
  for (const auto& name : auto_order()) {
    const auto impl = collective_registry().create(name, "collective algorithm");
    const std::string why = impl->unusable_reason(paths);
    if (!why.empty()) {
      if (name == algo_) {
        throw InputError((topo_->source().empty() ? std::string() : topo_->source() + ": ") + "collective algorithm '" +
                         name + "' cannot run on topology '" + topo_->name() + "': " + why);
      }
      continue;
    }
    for (CollectiveOp op : kAllCollectiveOps) {
      if (auto plan = impl->plan(op, paths)) all[static_cast<std::size_t>(op)].push_back(Candidate{name, *plan});
    }
  }
  for (CollectiveOp op : kAllCollectiveOps) {
    auto& mine = candidates_[static_cast<std::size_t>(op)];
    const auto& every = all[static_cast<std::size_t>(op)];
    if (algo_ != "auto") {
      for (const auto& c : every) {
        if (c.name == algo_) mine.push_back(c);
      }
    }
    if (mine.empty()) mine = every;
    if (cal_) curves_[static_cast<std::size_t>(op)] = cal_->curve(op, static_cast<int>(n), topo_->nodes_spanned(gpus_));
  }
}

const CommGroup::Candidate* CommGroup::best(CollectiveOp op, Bytes size, Seconds* t) const {
  const Candidate* pick = nullptr;
  double best_t = 0.0;
  for (const auto& c : candidates_[static_cast<std::size_t>(op)]) {
    const double ct = c.plan.time(size).value();
    if (pick == nullptr || ct < best_t) {
      pick = &c;
      best_t = ct;
    }
  }
  *t = Seconds{best_t};
  return pick;
}

Seconds CommGroup::analytic_time(CollectiveOp op, Bytes size) const {
  if (gpus_.size() < 2) return Seconds{0};
  Seconds t{0};
  (void)best(op, size, &t);
  return t;
}

Seconds CommGroup::time(CollectiveOp op, Bytes size) const {
  if (gpus_.size() < 2) return Seconds{0};
  Seconds t{0};
  (void)best(op, size, &t);
  if (const CorrectionCurve* c = curves_[static_cast<std::size_t>(op)]) t = t * c->at(size);
  return t;
}

const std::string& CommGroup::chosen_algo(CollectiveOp op, Bytes size) const {
  if (gpus_.size() < 2) return kLocal;
  Seconds t{0};
  return best(op, size, &t)->name;
}

CollectiveResult CommGroup::cost(CollectiveOp op, Bytes size) const {
  CollectiveResult r;
  if (gpus_.size() < 2) {
    r.algo = kLocal;
    return r;
  }
  const Candidate* c = best(op, size, &r.time);
  if (const CorrectionCurve* curve = curves_[static_cast<std::size_t>(op)]) r.time = r.time * curve->at(size);
  r.algo = c->name;
  if (r.time.value() > 0.0) {
    r.algbw_GBps = size.value() / r.time.value() / kGB;
    r.busbw_GBps = r.algbw_GBps * busbw_factor(op, static_cast<int>(gpus_.size()));
  }
  return r;
}

Seconds CommGroup::p2p_time(int gpu_a, int gpu_b, Bytes size) const {
  if (gpu_a == gpu_b) return Seconds{0};
  const auto in_group = [&](int gpu) {
    return gpu >= 0 && static_cast<std::size_t>(gpu) < pos_of_gpu_.size() ? pos_of_gpu_[static_cast<std::size_t>(gpu)]
                                                                          : -1;
  };
  const int a = in_group(gpu_a);
  const int b = in_group(gpu_b);
  if (a >= 0 && b >= 0) {
    const std::size_t i = static_cast<std::size_t>(a) * gpus_.size() + static_cast<std::size_t>(b);
    return Seconds{p2p_sec_per_byte_[i] * size.value() + p2p_latency_[i]};
  }
  const Route r = topo_->gpu_route(gpu_a, gpu_b);
  return Seconds{size.value() / r.bottleneck.value() + r.latency.value() + topo_->step_latency().value()};
}

std::vector<std::string> CommGroup::candidates(CollectiveOp op) const {
  std::vector<std::string> out;
  for (const auto& c : candidates_[static_cast<std::size_t>(op)]) out.push_back(c.name);
  return out;
}

}  // namespace servesim
