// CUDA graphs as vLLM v1 runs its forward passes, and what launching kernels from the host costs without them.
//
// vLLM captures the model's forward pass as CUDA graphs for a list of token counts (`cudagraph_capture_sizes`) and
// replays the smallest captured graph that holds a step's tokens: a step of N <= max_capture_size() tokens runs its
// graphed operators on padded_tokens(N) tokens, the next capture size (gpu_model_runner._get_num_input_tokens ->
// VllmConfig.pad_for_cudagraph); larger steps and `cudagraph_mode` NONE (`--enforce-eager`) run eagerly on N. Which
// graph a step replays (vllm/v1/cudagraph_dispatcher.py, docs/design/cuda_graphs.md), GraphRun:
//   full       the whole forward pass one graph: a step of decodes alone ("uniform decode") under FULL,
//              FULL_DECODE_ONLY or FULL_AND_PIECEWISE (vLLM v1's default) whose capture size is at most
//              max_num_seqs (vLLM captures no larger decode graph: cudagraph_dispatcher.initialize_cudagraph_keys),
//              any step under FULL;
//   piecewise  graphs between the attention calls, attention run eagerly (one call per layer): steps with a
//              prefill chunk under PIECEWISE or FULL_AND_PIECEWISE;
//   eager      every operator launched from the host: NONE, FULL_DECODE_ONLY's steps with a prefill chunk (or
//              decodes past max_num_seqs), and every step over max_capture_size() tokens.
//
// Launch-bound time: the host issues a step's kernels asynchronously, so the GPU's timeline is the longer of its
// kernels' time and the host's time to issue them (the host running ahead of the GPU wherever it can):
//   step GPU timeline = max(kernels, host), host = graph replays x graph_replay_host + eager calls x eager_op_host
// with one replay for a full graph; layers + 1 replays and one eager attention call per layer for piecewise; for
// eager, every operator of the step's breakdown one call per layer it repeats in, a layer's attention kernels
// (prefill and decode) one call; and the logits and the sampler (final_norm, lm_head, sampling), which run outside
// the graphs, eager calls in every mode. With pipeline parallelism
// each stage's host issues its own layers when its micro-batch arrives (the sum over stages: conservative when stages
// could issue ahead).
// A step past the largest graph runs torch.compile's code without a graph in vLLM, which issues its kernels with
// less host work than eager PyTorch: the eager cost is an upper bound there. Not modelled: the graphs' memory (vLLM
// captures them after sizing the KV cache, out of the 1 - gpu_memory_utilization headroom), torch.compile's fusions
// (the breakdown's operators are the same in every mode), attention backends that write the KV cache in a call of
// its own (two eager calls per layer), FULL's fallback for backends without full graphs of mixed batches, and
// Blackwell's 1024 default.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/common/units.h"

namespace servesim {

// vLLM's CompilationConfig.cudagraph_mode (CUDAGraphMode).
enum class CudaGraphMode { none, piecewise, full, full_decode_only, full_and_piecewise };
// How one step runs.
enum class GraphRun { eager, piecewise, full };

// The mode named as vLLM spells it (NONE, PIECEWISE, FULL, FULL_DECODE_ONLY, FULL_AND_PIECEWISE); throws
// std::invalid_argument naming the valid ones otherwise.
[[nodiscard]] CudaGraphMode parse_cuda_graph_mode(const std::string& name);
[[nodiscard]] const char* to_string(CudaGraphMode m);
[[nodiscard]] const char* to_string(GraphRun r);  // "eager", "piecewise", "full"

// vLLM's default capture sizes for a largest size `max_size` (>= 0): 1, 2, 4, then multiples of 8 below 256, then
// multiples of 16 from 256, every one at most max_size, and max_size itself when it is `max_num_batched_tokens`
// (vllm/config/vllm.py _set_cudagraph_sizes: the step budget is captured when the list reaches it, vLLM PR #40734).
[[nodiscard]] std::vector<std::int64_t> default_cuda_graph_capture_sizes(std::int64_t max_size,
                                                                         std::int64_t max_num_batched_tokens = 0);

struct CudaGraphConfig {
  // false: no padding and no launch-bound time (a bare cost model: every step's time is its kernels').
  bool modelled = false;
  CudaGraphMode mode = CudaGraphMode::full_and_piecewise;
  std::vector<std::int64_t> capture_sizes;  // ascending, distinct, each >= 1; empty = no graph is ever replayed
  std::int64_t max_num_seqs = 0;  // the largest full decode graph (0 = no limit)
  std::string off_reason;         // with mode NONE: what turned the graphs off (for reports)
  Seconds eager_op_host{0.0};      // host time to issue one operator eagerly (PyTorch dispatch + launch)
  Seconds graph_replay_host{0.0};  // host time to replay one captured graph

  [[nodiscard]] std::int64_t max_capture_size() const { return capture_sizes.empty() ? 0 : capture_sizes.back(); }
  // How a step of `tokens` tokens runs; `decodes_only`: every sequence of the step decodes one token.
  [[nodiscard]] GraphRun run_of(bool decodes_only, std::int64_t tokens) const;
  // The tokens a step's graphed operators run on: the smallest capture size >= tokens when it replays a graph,
  // else `tokens` (also when not modelled).
  [[nodiscard]] std::int64_t padded_tokens(bool decodes_only, std::int64_t tokens) const;
  // The smallest capture size >= tokens (tokens in 1..max_capture_size()).
  [[nodiscard]] std::int64_t capture_size_for(std::int64_t tokens) const;
  // Why a step of `tokens` tokens (`decodes_only` as in run_of) runs eagerly, in words ("" when it replays a graph).
  [[nodiscard]] std::string eager_reason(bool decodes_only, std::int64_t tokens) const;
  // The host's time to issue one step that runs as `run`, over `layers` layers (every pipeline stage's) whose
  // eager breakdown has `eager_ops` operator calls in all.
  [[nodiscard]] Seconds host_time(GraphRun run, std::int64_t layers, double eager_ops) const;
};

}  // namespace servesim
