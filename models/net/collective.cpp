#include "models/net/collective.h"

#include <stdexcept>

namespace servesim {
namespace {

constexpr struct {
  CollectiveOp op;
  const char* name;
} kOps[] = {{CollectiveOp::all_reduce, "all_reduce"},         {CollectiveOp::all_gather, "all_gather"},
            {CollectiveOp::reduce_scatter, "reduce_scatter"}, {CollectiveOp::broadcast, "broadcast"},
            {CollectiveOp::send_recv, "send_recv"},           {CollectiveOp::all_to_all, "all_to_all"}};

}  // namespace

std::string_view to_string(CollectiveOp op) {
  for (const auto& o : kOps) {
    if (o.op == op) return o.name;
  }
  return "?";
}

std::optional<CollectiveOp> parse_collective_op(std::string_view text) {
  for (const auto& o : kOps) {
    if (text == o.name) return o.op;
  }
  return std::nullopt;
}

std::string collective_op_names() {
  std::string out;
  for (const auto& o : kOps) {
    if (!out.empty()) out += ", ";
    out += o.name;
  }
  return out;
}

double busbw_factor(CollectiveOp op, int n) {
  if (n < 2) return 0.0;
  const double nd = static_cast<double>(n);
  switch (op) {
    case CollectiveOp::all_reduce:
      return 2.0 * (nd - 1.0) / nd;
    case CollectiveOp::all_gather:
    case CollectiveOp::reduce_scatter:
    case CollectiveOp::all_to_all:
      return (nd - 1.0) / nd;
    case CollectiveOp::broadcast:
    case CollectiveOp::send_recv:
      return 1.0;
  }
  return 1.0;
}

void CollectivePlan::add(const CollectivePhase& p) {
  if (count_ >= kMaxPhases) throw std::logic_error("CollectivePlan: more than 3 phases");
  phases_[static_cast<std::size_t>(count_++)] = p;
}

}  // namespace servesim
