#include "models/net/comm_group.h"

#include <algorithm>

#include "models/net/collective_model.h"

#include "models/common/error.h"
#include "models/net/collective_calibration.h"
#include "models/net/group_paths.h"

namespace servesim {
namespace {

const std::string kLocal = "local";
const std::string kNone;

}  // namespace

CommGroup::CommGroup(std::shared_ptr<const Topology> topo, std::vector<int> gpu_indices, std::string algo,
                     std::shared_ptr<const CollectiveCalibration> cal, std::string model, std::string proto)
    : topo_(std::move(topo)),
      gpus_(std::move(gpu_indices)),
      algo_(std::move(algo)),
      cal_(std::move(cal)),
      model_(std::move(model)),
      proto_(std::move(proto)) {
  if (!topo_) throw InputError("CommGroup: no topology");
  if (!collective_model_registry().contains(model_)) {
    throw InputError("unknown collective cost model '" + model_ + "' (valid: " + collective_model_names() + ")");
  }
  if (cal_ && cal_->algo() != model_key(model_, algo_, proto_)) {
    throw InputError("collective calibration was fitted against '" + cal_->algo() + "' but the group uses '" +
                     model_key(model_, algo_, proto_) + "' (model/algorithm/protocol)");
  }
  const GroupPaths paths(*topo_, gpus_);
  const std::size_t n = gpus_.size();

  pos_of_gpu_.clear();
  for (std::size_t p = 0; p < n; ++p) pos_of_gpu_.emplace_back(gpus_[p], static_cast<int>(p));
  std::sort(pos_of_gpu_.begin(), pos_of_gpu_.end());
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
  one_shot_ = paths.phase(GroupPaths::all_pairs_transfers(static_cast<int>(n), 1.0 / static_cast<double>(n)), 1);

  CollectiveModelOptions opt;
  opt.model = model_;
  opt.algo = algo_;
  opt.proto = proto_;
  impl_ = collective_model_registry().create(model_, "collective cost model", *topo_, gpus_, paths, opt);
  if (cal_) {
    for (CollectiveOp op : kAllCollectiveOps) {
      curves_[static_cast<std::size_t>(op)] = cal_->curve(op, static_cast<int>(n), topo_->nodes_spanned(gpus_));
    }
  }
}

Seconds CommGroup::analytic_time(CollectiveOp op, Bytes size) const {
  if (gpus_.size() < 2) return Seconds{0};
  return impl_->choose(op, size).time;
}

Seconds CommGroup::time(CollectiveOp op, Bytes size) const {
  if (gpus_.size() < 2) return Seconds{0};
  Seconds t = impl_->choose(op, size).time;
  if (const CorrectionCurve* c = curves_[static_cast<std::size_t>(op)]) t = t * c->at(size);
  return t;
}

const std::string& CommGroup::chosen_algo(CollectiveOp op, Bytes size) const {
  if (gpus_.size() < 2) return kLocal;
  return *impl_->choose(op, size).algo;
}

const std::string& CommGroup::chosen_protocol(CollectiveOp op, Bytes size) const {
  if (gpus_.size() < 2) return kNone;
  return *impl_->choose(op, size).proto;
}

CollectiveResult CommGroup::cost(CollectiveOp op, Bytes size) const {
  CollectiveResult r;
  if (gpus_.size() < 2) {
    r.algo = kLocal;
    return r;
  }
  const CollectiveChoice c = impl_->choose(op, size);
  r.time = c.time;
  if (const CorrectionCurve* curve = curves_[static_cast<std::size_t>(op)]) r.time = r.time * curve->at(size);
  r.algo = *c.algo;
  r.protocol = *c.proto;
  if (r.time.value() > 0.0) {
    r.algbw_GBps = size.value() / r.time.value() / kGB;
    r.busbw_GBps = r.algbw_GBps * busbw_factor(op, static_cast<int>(gpus_.size()));
  }
  return r;
}

Seconds CommGroup::one_shot_all_to_all(Bytes size) const {
  if (gpus_.size() < 2) return Seconds{0};
  return one_shot_.time(size);
}

Seconds CommGroup::p2p_time(int gpu_a, int gpu_b, Bytes size) const {
  if (gpu_a == gpu_b) return Seconds{0};
  const auto in_group = [&](int gpu) {
    const auto it = std::lower_bound(pos_of_gpu_.begin(), pos_of_gpu_.end(), std::pair<int, int>{gpu, -1});
    return it != pos_of_gpu_.end() && it->first == gpu ? it->second : -1;
  };
  const int a = in_group(gpu_a);
  const int b = in_group(gpu_b);
  if (a >= 0 && b >= 0) {
    const std::size_t i = static_cast<std::size_t>(a) * gpus_.size() + static_cast<std::size_t>(b);
    return Seconds{p2p_sec_per_byte_[i] * size.value() + p2p_latency_[i]};
  }
  return route_time(topo_->gpu_route(gpu_a, gpu_b), topo_->step_latency(), size);
}

Seconds CommGroup::route_time(const Route& r, Seconds step_latency, Bytes size) {
  return Seconds{size.value() / r.bottleneck.value() + r.latency.value() + step_latency.value()};
}

std::vector<std::string> CommGroup::candidates(CollectiveOp op) const {
  if (!impl_) return {};
  return impl_->candidates(op);
}

}  // namespace servesim
