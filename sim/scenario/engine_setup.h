// The engine part of a scenario: [engine] (vLLM's engine-argument names) turned into an EngineConfig - scheduler
// limits, max_model_len, KV-cache sizing, the scheduler, the per-step CPU overhead, step-time jitter and the front
// end - for one pool (the scenario without pools is one).
#pragma once
#include <cstdint>
#include <string>
#include <utility>

#include "models/arch/model_arch.h"
#include "models/common/config.h"
#include "models/cost/step_model.h"
#include "models/hw/gpu.h"
#include "sim/engine/engine.h"
#include "sim/engine/kv_cache.h"
#include "sim/scenario/layered_table.h"

namespace servesim {

struct EngineSetup {
  explicit EngineSetup(Config scheduler_table) : scheduler(std::move(scheduler_table)) {}
  EngineConfig config;  // limits, block_size, max_model_len, jitter, front_end; num_kv_blocks from size_kv_cache
  KvCacheSizing kv;     // num_gpu_blocks_override; the rest from size_kv_cache
  double gpu_memory_utilization = 0.9;
  std::string kv_cache_dtype = "auto";  // [engine] kv_cache_dtype as given
  std::string scheduler_impl;           // [engine.scheduler] impl
  Config scheduler;                     // the [engine.scheduler] table read (for scheduler_registry().create)
  EngineOverhead overhead;              // [engine.overhead]
  CudaGraphConfig graphs;               // enforce_eager, cudagraph_mode, the capture sizes, [engine.overhead]'s host
                                        // launch times (read_cuda_graphs)
};

// Reads the engine keys of `eng` (max_num_seqs, max_num_batched_tokens, enable_chunked_prefill,
// long_prefill_token_threshold, block_size, enable_prefix_caching (default true), max_model_len (default: the model's max_position_embeddings),
// allow_long_max_model_len, num_gpu_blocks_override, gpu_memory_utilization in (0, 1], kv_cache_dtype (auto, fp8,
// fp8_e4m3, fp8_e5m2: sets arch.kv_bytes_per_element), [engine.scheduler] impl (validated against
// scheduler_registry()), [engine.overhead], [engine.jitter], [engine.front_end]) and `sim`'s jitter switch
// ("on" or "off"), and CUDA graphs: enforce_eager (default false), cudagraph_mode (vLLM's spelling, default
// FULL_AND_PIECEWISE), cudagraph_capture_sizes or max_cudagraph_capture_size (default min(2 x max_num_seqs, 512)),
// [engine.overhead] per_eager_op and per_graph_replay (models/cost/cuda_graphs.h). Token counts at most
// kMaxTokensPerRequest. Throws InputError naming the key.
[[nodiscard]] EngineSetup read_engine(const LayeredTable& eng, const Config& sim, ModelArch& arch);

// Sizes the KV cache as vLLM does: per GPU of each pipeline stage, gpu_memory_utilization x HBM less the weights
// and the activation reserve ([engine] activation_reserve, else vLLM's profiled peak: default_activation_reserve);
// the replica's block count is the smallest over the stages (x data_parallel_size), and every micro-batch
// engine's share must hold one max_model_len sequence. Sets e.kv and e.config.num_kv_blocks (and scales the limits
// by data_parallel_size). Errors name `gpu_key` of `gpu_table` (weights or activations that do not fit) or the
// engine key (max_model_len larger than the cache, num_gpu_blocks_override below 2).
void size_kv_cache(EngineSetup& e, const LayeredTable& eng, const Config& gpu_table, const std::string& gpu_key,
                   const ModelArch& arch, const GpuSpec& gpu, const ParallelConfig& parallel, const StepModel& model);

// The default activation reserve per GPU (bytes): the memory vLLM's start-up profiling subtracts besides the
// weights before sizing the KV cache (see engine_setup.cpp for its terms and sources).
[[nodiscard]] Bytes default_activation_reserve(const ModelArch& a, const ParallelConfig& p, const SchedulerLimits& l);

}  // namespace servesim
