// The link-load collective model (models/net/collective.h) behind the CollectiveCostModel interface, and the
// registry of collective cost models.
#include <algorithm>

#include "models/common/error.h"
#include "models/net/collective_model.h"
#include "models/net/group_paths.h"
#include "models/net/topology.h"

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

const std::string kNoProto;

class LinkLoadModel final : public CollectiveCostModel {
 public:
  LinkLoadModel(const Topology& topo, const GroupPaths& paths, const CollectiveModelOptions& opt) {
    const std::string& algo = opt.algo;
    if (algo != "auto" && !collective_registry().contains(algo)) {
      throw InputError("unknown collective algorithm '" + algo + "' for the link_load model (valid: " +
                       collective_algorithm_names() + ")");
    }
    if (opt.proto != "auto") {
      throw InputError("the link_load collective model has no protocols (--proto / collective_proto '" + opt.proto +
                       "' needs the nccl model)");
    }
    std::array<std::vector<Candidate>, kNumCollectiveOps> all;
    for (const auto& name : auto_order()) {
      const auto impl = collective_registry().create(name, "collective algorithm");
      const std::string why = impl->unusable_reason(paths);
      if (!why.empty()) {
        if (name == algo) {
          throw InputError((topo.source().empty() ? std::string() : topo.source() + ": ") + "collective algorithm '" +
                           name + "' cannot run on topology '" + topo.name() + "': " + why);
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
      if (algo != "auto") {
        for (const auto& c : every) {
          if (c.name == algo) mine.push_back(c);
        }
      }
      if (mine.empty()) mine = every;
    }
  }

  CollectiveChoice choose(CollectiveOp op, Bytes size) const override {
    CollectiveChoice out;
    for (const auto& c : candidates_[static_cast<std::size_t>(op)]) {
      const Seconds t = c.plan.time(size);
      if (out.algo == nullptr || t.value() < out.time.value()) {
        out.time = t;
        out.algo = &c.name;
      }
    }
    out.proto = &kNoProto;
    return out;
  }

  std::vector<std::string> candidates(CollectiveOp op) const override {
    std::vector<std::string> out;
    for (const auto& c : candidates_[static_cast<std::size_t>(op)]) out.push_back(c.name);
    return out;
  }

 private:
  struct Candidate {
    std::string name;
    CollectivePlan plan;
  };
  std::array<std::vector<Candidate>, kNumCollectiveOps> candidates_;
};

}  // namespace

std::unique_ptr<CollectiveCostModel> make_link_load_model(const Topology& topo, const std::vector<int>& /*gpus*/,
                                                          const GroupPaths& paths, const CollectiveModelOptions& opt) {
  return std::make_unique<LinkLoadModel>(topo, paths, opt);
}

const CollectiveModelRegistry& collective_model_registry() {
  static const CollectiveModelRegistry registry = [] {
    CollectiveModelRegistry r("collective cost model");
    r.add("nccl", make_nccl_model);
    r.add("link_load", make_link_load_model);
    return r;
  }();
  return registry;
}

std::string collective_model_names() { return collective_model_registry().names(); }

}  // namespace servesim
