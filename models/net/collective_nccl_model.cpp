// The nccl collective cost model (models/net/collective_model.h): NCCL's tuning model on the group, with the
// link_load model's plans for the point-to-point ops NCCL does not tune (send_recv, all_to_all).
#include <array>

#include "models/common/error.h"
#include "models/net/collective_model.h"
#include "models/net/nccl_inputs.h"
#include "models/net/nccl_tuning.h"
#include "models/net/topology.h"

namespace servesim {
namespace {

const std::array<std::string, kNcclAlgos>& algo_strings() {
  static const std::array<std::string, kNcclAlgos> s = [] {
    std::array<std::string, kNcclAlgos> out;
    for (int a = 0; a < kNcclAlgos; ++a) out[static_cast<std::size_t>(a)] = std::string(to_string(static_cast<NcclAlgo>(a)));
    return out;
  }();
  return s;
}

const std::array<std::string, kNcclProtos>& proto_strings() {
  static const std::array<std::string, kNcclProtos> s = [] {
    std::array<std::string, kNcclProtos> out;
    for (int p = 0; p < kNcclProtos; ++p) out[static_cast<std::size_t>(p)] = std::string(to_string(static_cast<NcclProto>(p)));
    return out;
  }();
  return s;
}

class NcclModel final : public CollectiveCostModel {
 public:
  NcclModel(const Topology& topo, const std::vector<int>& gpus, const GroupPaths& paths,
            const CollectiveModelOptions& opt)
      : tuning_(derive_nccl_inputs(topo, gpus)) {
    std::string where = topo.source().empty() ? std::string() : topo.source() + ": ";
    if (opt.algo != "auto") {
      const auto a = parse_nccl_algo(opt.algo);
      if (!a) {
        throw InputError("unknown collective algorithm '" + opt.algo + "' for the nccl model (valid: auto, " +
                         nccl_algo_names() + ")");
      }
      const std::string& why = tuning_.inputs().unusable[static_cast<std::size_t>(*a)];
      if (!why.empty()) {
        throw InputError(where + "collective algorithm '" + opt.algo + "' cannot run on topology '" + topo.name() +
                         "': " + why);
      }
      algo_mask_ = 1U << static_cast<unsigned>(*a);
    }
    if (opt.proto != "auto") {
      const auto p = parse_nccl_proto(opt.proto);
      if (!p) throw InputError("unknown NCCL protocol '" + opt.proto + "' (valid: auto, " + nccl_proto_names() + ")");
      proto_mask_ = 1U << static_cast<unsigned>(*p);
    }
    bool any = false;
    for (CollectiveOp op : kAllCollectiveOps) {
      if (NcclTuning::models(op) && tuning_.best(op, Bytes{1 << 20}, algo_mask_, proto_mask_)) any = true;
    }
    if (!any) {
      throw InputError(where + "no collective of topology '" + topo.name() + "' can run with algorithm '" + opt.algo +
                       "' and protocol '" + opt.proto + "' (NVLS, NVLS-tree, CollNet and PAT are Simple only; LL128 " +
                       "needs NVLink)");
    }
    CollectiveModelOptions p2p;
    p2p.model = "link_load";
    p2p_ = make_link_load_model(topo, gpus, paths, p2p);
  }

  CollectiveChoice choose(CollectiveOp op, Bytes size) const override {
    if (!NcclTuning::models(op)) return p2p_->choose(op, size);
    auto c = tuning_.best(op, size, algo_mask_, proto_mask_);
    if (!c) c = tuning_.best(op, size);  // the constraint does not apply to this op (NCCL_ALGO semantics)
    CollectiveChoice out;
    if (!c) return p2p_->choose(op, size);  // unreachable: ring/Simple is always enabled
    out.time = c->time;
    out.algo = &algo_strings()[static_cast<std::size_t>(c->algo)];
    out.proto = &proto_strings()[static_cast<std::size_t>(c->proto)];
    return out;
  }

  std::vector<std::string> candidates(CollectiveOp op) const override {
    if (!NcclTuning::models(op)) return p2p_->candidates(op);
    std::vector<std::string> out;
    for (int a = 0; a < kNcclAlgos; ++a) {
      for (int p = 0; p < kNcclProtos; ++p) {
        if (tuning_.bandwidth_GBps(op, static_cast<NcclAlgo>(a), static_cast<NcclProto>(p)) > 0.0) {
          out.push_back(algo_strings()[static_cast<std::size_t>(a)] + "/" + proto_strings()[static_cast<std::size_t>(p)]);
        }
      }
    }
    return out;
  }

 private:
  NcclTuning tuning_;
  unsigned algo_mask_ = ~0U;
  unsigned proto_mask_ = ~0U;
  std::unique_ptr<CollectiveCostModel> p2p_;
};

}  // namespace

std::unique_ptr<CollectiveCostModel> make_nccl_model(const Topology& topo, const std::vector<int>& gpus,
                                                     const GroupPaths& paths, const CollectiveModelOptions& opt) {
  return std::make_unique<NcclModel>(topo, gpus, paths, opt);
}

}  // namespace servesim
