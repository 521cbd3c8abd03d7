// select_transport(): the fastest transport alone for a pair, or the one forced (models/net/transport.h).
#include <algorithm>

#include <fmt/format.h>

#include "models/common/error.h"
#include "models/net/transport.h"
#include "models/net/transport_calibration.h"

namespace servesim {

TransportChoice select_transport(const Topology& topo, int src, int dst, Bytes bytes,
                                 const std::optional<std::string>& forced, const TransportCalibration* cal,
                                 std::optional<Bytes> message_size, const std::string& where) {
  topo.check_gpu_index(src);
  topo.check_gpu_index(dst);
  if (src == dst) {
    throw InputError(fmt::format("{}: {} -> {}: source and destination are the same GPU", where,
                                 gpu_label(topo, src), gpu_label(topo, dst)));
  }
  if (!(bytes.value() >= 0.0) || !std::isfinite(bytes.value())) {
    throw InputError(fmt::format("{}: bytes must be finite and >= 0", where));
  }
  if (message_size && !(message_size->value() >= 1.0 && std::isfinite(message_size->value()))) {
    throw InputError(fmt::format("{}: message size must be at least 1 byte", where));
  }
  if (forced && !transport_registry().contains(*forced)) {
    (void)transport_registry().create(*forced, where);  // throws, listing the valid names
  }
  std::vector<TransportCandidate> candidates;
  std::vector<bool> automatic;
  TransportChoice choice;
  for (const std::string& name : transport_names()) {
    const auto t = transport_registry().create(name, where);
    TransportSupport s = t->plan(topo, src, dst);
    if (!s.path) {
      choice.unsupported.emplace_back(name, s.reason);
      continue;
    }
    if (cal != nullptr) cal->apply(topo, *s.path);
    if (message_size) s.path->message_size = *message_size;
    const Seconds time = s.path->time_alone(bytes);
    candidates.push_back({std::move(*s.path), time});
    automatic.push_back(t->auto_selectable());
  }
  std::optional<std::size_t> pick;
  if (forced) {
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].path.transport == *forced) pick = i;
    }
    if (!pick) {
      std::string reason;
      for (const auto& [name, r] : choice.unsupported) {
        if (name == *forced) reason = r;
      }
      throw InputError(fmt::format("{} {}: cannot carry {} -> {} on {}: {}", where, *forced, gpu_label(topo, src),
                                   gpu_label(topo, dst), topo.name(), reason));
    }
  } else {
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (!automatic[i]) continue;
      if (!pick || candidates[i].time < candidates[*pick].time) pick = i;  // ties: the earlier in UCX's order
    }
    if (!pick) {
      std::string reasons;
      for (const auto& [name, r] : choice.unsupported) reasons += (reasons.empty() ? "" : "; ") + name + ": " + r;
      throw InputError(fmt::format("{}: no transport can carry {} -> {} on {} ({})", where, gpu_label(topo, src),
                                   gpu_label(topo, dst), topo.name(), reasons));
    }
  }
  choice.path = candidates[*pick].path;
  choice.time = candidates[*pick].time;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (i != *pick) choice.others.push_back(std::move(candidates[i]));
  }
  // Fastest first; equal times keep UCX's order (the candidates' order).
  std::stable_sort(choice.others.begin(), choice.others.end(),
                   [](const TransportCandidate& a, const TransportCandidate& b) { return a.time < b.time; });
  return choice;
}

}  // namespace servesim
