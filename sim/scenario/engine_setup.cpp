#include "sim/scenario/engine_setup.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "models/common/error.h"
#include "models/common/units.h"
#include "models/cost/moe_mla_cost.h"
#include "sim/engine/scheduler.h"

namespace servesim {
namespace {

// A number as the user would write it (0.9, not 0.900000).
std::string shortest(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string fmt_gib(Bytes b) {
  std::ostringstream os;
  os.precision(1);
  os << std::fixed << b.v / kGiB << " GiB";
  return os.str();
}

// [engine.overhead]: the engine's CPU time per step (models/cost/step_model.h, EngineOverhead). The defaults are
// servesim's long-standing 400 us per step + 10 us per sequence (decoding or prefilling), a vLLM-like engine
// running its steps as CUDA graphs; calibrate a real engine with `servesim calibrate trace`.
EngineOverhead read_overhead(const Config& ovh, CudaGraphConfig& graphs) {
  const auto present = ovh.keys();  // (has() would mark the removed keys as known, and list them as valid)
  for (const char* old : {"per_request", "per_token"}) {
    if (std::find(present.begin(), present.end(), old) != present.end()) {
      ovh.fail(old, "was split into per_decode_seq, per_prefill_seq (both the old per_request), per_prefill_token "
                    "and per_sampled_token (the old per_token was per token computed: add it to per_decode_seq "
                    "and per_prefill_token)");
    }
  }
  EngineOverhead o;
  o.per_step = ovh.duration_or("per_step", ms(0.4));
  o.per_decode_seq = ovh.duration_or("per_decode_seq", us(10.0));
  o.per_prefill_seq = ovh.duration_or("per_prefill_seq", us(10.0));
  o.per_prefill_token = ovh.duration_or("per_prefill_token", Seconds{0.0});
  o.per_sampled_token = ovh.duration_or("per_sampled_token", Seconds{0.0});
  // Host time to issue one operator eagerly (PyTorch's dispatch and launch): the smallest eager call of the H200
  // check, a decode attention of 6.0 us GPU time measured at 18.9 us when issued call after call from Python
  // (calibrate/data/h200/eager/attention.csv, batch 1 x 256 tokens, 8 / 1 heads). One graph replay: the same
  // machine's host time per kernel launch call, 4.56 us (calibrate/data/h200/memory.csv, launch_host).
  graphs.eager_op_host = ovh.duration_or("per_eager_op", us(18.9));
  graphs.graph_replay_host = ovh.duration_or("per_graph_replay", us(4.56));
  for (const char* k : {"per_step", "per_decode_seq", "per_prefill_seq", "per_prefill_token", "per_sampled_token",
                        "per_eager_op", "per_graph_replay"}) {
    if (ovh.has(k) && ovh.duration(k).v < 0) ovh.fail(k, "must be >= 0");
  }
  return o;
}

// enforce_eager, cudagraph_mode and the capture sizes, as vLLM sets them (vllm/config/vllm.py _set_cudagraph_sizes):
// explicit cudagraph_capture_sizes are deduplicated, sorted and cut to max_num_batched_tokens; otherwise the default
// list up to max_cudagraph_capture_size (default min(2 x max_num_seqs, 512), at most max_num_batched_tokens, which
// is then captured too). Full decode graphs stop at max_num_seqs sequences.
void read_cuda_graphs(const LayeredTable& eng, const SchedulerLimits& lim, CudaGraphConfig& g) {
  g.modelled = true;
  const bool eager = eng.at("enforce_eager").boolean_or("enforce_eager", false);
  const std::string mode = eng.at("cudagraph_mode").str_or("cudagraph_mode", "FULL_AND_PIECEWISE");
  try {
    g.mode = parse_cuda_graph_mode(mode);
  } catch (const std::invalid_argument& e) {
    eng.fail("cudagraph_mode", e.what());
  }
  if (eager && eng.has("cudagraph_mode") && g.mode != CudaGraphMode::none) {
    eng.fail("enforce_eager", "true turns CUDA graphs off, but cudagraph_mode is " + mode +
                                  " (leave it out or set it to NONE)");
  }
  if (eager) g.mode = CudaGraphMode::none;
  if (g.mode == CudaGraphMode::none) g.off_reason = eager ? "enforce_eager" : "cudagraph_mode NONE";
  const bool has_max = eng.has("max_cudagraph_capture_size");
  const std::int64_t max_size =
      eng.at("max_cudagraph_capture_size")
          .positive_int_or("max_cudagraph_capture_size", std::min<std::int64_t>(2 * lim.max_num_seqs, 512));
  if (eng.has("cudagraph_capture_sizes")) {
    std::vector<std::int64_t> sizes = eng.at("cudagraph_capture_sizes").integer_list_or("cudagraph_capture_sizes", {});
    if (sizes.empty()) eng.fail("cudagraph_capture_sizes", "must list at least one size");
    for (const std::int64_t s : sizes) {
      if (s < 1) eng.fail("cudagraph_capture_sizes", "sizes must be >= 1 (got " + std::to_string(s) + ")");
    }
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    std::erase_if(sizes, [&](std::int64_t s) { return s > lim.max_num_batched_tokens; });
    if (has_max && (sizes.empty() || sizes.back() != max_size)) {
      eng.fail("max_cudagraph_capture_size",
               std::to_string(max_size) + " is not the largest of the cudagraph_capture_sizes vLLM keeps (those at "
               "most max_num_batched_tokens " + std::to_string(lim.max_num_batched_tokens) +
                   "): give one of the two keys (vLLM refuses the pair)");
    }
    g.capture_sizes = std::move(sizes);
  } else {
    g.capture_sizes =
        default_cuda_graph_capture_sizes(std::min(max_size, lim.max_num_batched_tokens), lim.max_num_batched_tokens);
  }
  g.max_num_seqs = lim.max_num_seqs;
  if (g.mode == CudaGraphMode::none) g.capture_sizes.clear();
}

// [engine.jitter]: step-time variability (sim/engine/step_jitter.h).
StepJitterSpec read_jitter(const Config& j) {
  StepJitterSpec s;
  if (j.keys().empty()) return s;
  const std::string impl = j.str_or("impl", "lognormal");
  if (impl == "lognormal") {
    s.kind = StepJitterSpec::Kind::lognormal;
    s.sigma = j.non_negative_or("sigma", 0.0);
    if (s.sigma > 3.0) j.fail("sigma", "must be at most 3 (a factor spread of e^3 per step)");
  } else if (impl == "empirical") {
    s.kind = StepJitterSpec::Kind::empirical;
    s.factors = j.num_list("factors");
    if (s.factors.size() < 2) j.fail("factors", "needs at least 2 quantiles (minimum ... maximum)");
    for (std::size_t i = 0; i < s.factors.size(); ++i) {
      if (!(s.factors[i] > 0) || !std::isfinite(s.factors[i]) || s.factors[i] > 1e3) {
        j.fail("factors", "every factor must be in (0, 1000]");
      }
      if (i > 0 && s.factors[i] < s.factors[i - 1]) j.fail("factors", "must be non-decreasing (quantiles)");
    }
  } else if (impl == "off") {
    s.kind = StepJitterSpec::Kind::none;
  } else {
    j.fail("impl", "unknown jitter '" + impl + "' (valid: lognormal, empirical, off)");
  }
  s.correlation = j.non_negative_or("correlation", 0.0);
  if (s.correlation >= 1.0) j.fail("correlation", "must be in [0, 1)");
  s.stall_probability = j.non_negative_or("stall_probability", 0.0);
  if (s.stall_probability >= 1.0) j.fail("stall_probability", "must be in [0, 1)");
  s.stall_median = j.duration_or("stall_median", Seconds{0.0});
  if (s.stall_median.v < 0 || s.stall_median.v > 3600) j.fail("stall_median", "must be in [0, 1h]");
  if (s.stall_probability > 0 && !(s.stall_median.v > 0)) {
    j.fail("stall_median", "must be > 0 when stall_probability > 0");
  }
  s.stall_sigma = j.non_negative_or("stall_sigma", 0.0);
  if (s.stall_sigma > 3.0) j.fail("stall_sigma", "must be at most 3");
  return s;
}

}  // namespace

// The default activation reserve per GPU (bytes): the memory vLLM's start-up profiling subtracts besides the
// weights before sizing the KV cache (vllm/v1/worker/gpu_worker.py determine_available_memory with
// vllm/utils memory_profiling, v0.7-v0.11: non_kv_cache_memory = weights + torch_peak_increase + non_torch_increase).
// Its terms, each per GPU:
//  1. Forward peak (torch_peak_increase of gpu_model_runner.py profile_run's _dummy_run of max_num_batched_tokens
//     tokens; with chunked prefill off, vLLM requires max_num_batched_tokens >= max_model_len). The peak is inside
//     a decoder layer's MLP (vllm/model_executor/models/llama.py LlamaDecoderLayer / LlamaMLP.forward), where at
//     the down projection these tensors are live per token: the residual (h), the MLP input (h), gate_up_proj's
//     output (2 I / TP), SiluAndMul's output (I / TP) and down_proj's output (h):
//       forward = max_num_batched_tokens x (3 I / TP + 3 h) x activation bytes.
//     (Llama-3.1-8B: 110,592 bytes per token; vLLM's own reports imply 110,450 +- 250, from the KV blocks of the
//     same engine at max_num_batched_tokens 20000 and 29000: 1,952 and 1,478 blocks of 2 MiB.)
//     A mixture-of-experts model's MoE layers peak in FusedMoE instead (moe_activation_peak, models/cost/
//     moe_mla_cost.h: fused_experts' workspaces of k rows per token, and with data-parallel attention every rank's
//     tokens after the dispatch); the forward term is the larger of the dense layers' (if the model has any) and
//     the MoE layers'.
//  2. The dummy sampler run that follows (profile_run's _dummy_sampler_run: max_num_seqs rows of logits): the
//     forward's hidden states (max_num_batched_tokens x h) are still held while the logits are computed in the
//     model dtype, cast to fp32, and turned into fp32 probabilities: max_num_seqs x vocab_size x (bytes + 4 + 4)
//     (LogitsProcessor drops the padding of the vocab-parallel LM head). Counted on every pipeline stage, though
//     vLLM samples on the last one only (conservative when this term is the larger).
//     The peak is the larger of 1 and 2 (the forward's intermediates are freed by then), not their sum.
//  3. Non-torch memory (non_torch_increase: measured from the snapshot taken after CUDA context and NCCL set-up,
//     so neither counts): cuBLAS/cuBLASLt workspaces and lazily loaded kernel images: 0.32 GiB, as vLLM 0.11
//     reports for Llama-3.1-8B on one H100 ("non_torch_memory takes 0.32GiB"; published one-GPU logs range
//     0.09-0.34 GiB).
//  4. RoPE's cos/sin cache, max_position_embeddings x head_dim in the model dtype (vllm rotary_embedding.py
//     RotaryEmbedding._compute_cos_sin_cache, one per GPU): vLLM counts it in the model's memory ("Model loading
//     took 14.9889 GiB" for Llama-3.1-8B = its parameters + this 32 MiB cache); servesim's weights are the
//     parameters alone, so it is reserved here.
//  CUDA graphs: none. vLLM captures them after the KV cache is allocated (compile_or_warm_up_model) and does not
//  subtract them ("memory_profiling does not consider CUDAGraph memory size"); they come out of the
//  (1 - gpu_memory_utilization) headroom. engine.activation_reserve replaces the whole sum.
Bytes default_activation_reserve(const ModelArch& a, const ParallelConfig& p, const SchedulerLimits& l) {
  constexpr double kNonTorchBytes = 0.32 * kGiB;
  constexpr double kFp32 = 4.0;
  const double e = a.weight_bytes_per_param;  // activations in the model dtype
  const double h = double(a.hidden_size);
  const double tokens = double(l.max_num_batched_tokens);
  // Dense MLP layers (all layers of a dense model, DeepSeek's first_k_dense_replace ones), then the MoE layers'
  // peak (moe_activation_peak): the larger.
  const auto& moe_layers = a.moe.layer_moe;
  const bool dense_layers =
      !a.moe.enabled() || std::find(moe_layers.begin(), moe_layers.end(), false) != moe_layers.end();
  double forward = dense_layers ? tokens * (3.0 * double(a.intermediate_size) / double(p.tensor) + 3.0 * h) * e : 0.0;
  if (a.moe.enabled()) forward = std::max(forward, moe_activation_peak(a, p, l.max_num_batched_tokens).value());
  const double sampler = tokens * h * e + double(l.max_num_seqs) * double(a.vocab_size) * (e + kFp32 + kFp32);
  const double rope = double(a.max_position_embeddings) * double(a.head_dim) * e;
  return Bytes{std::max(forward, sampler) + kNonTorchBytes + rope};
}

EngineSetup read_engine(const LayeredTable& eng, const Config& sim, ModelArch& arch) {
  EngineSetup e(eng.sub("scheduler"));
  SchedulerLimits& lim = e.config.limits;
  lim.max_num_seqs = eng.at("max_num_seqs")
                         .positive_int_at_most_or("max_num_seqs", 256, kMaxTokensPerRequest,
                                                  "the limit of tokens per step: every sequence takes one");
  lim.max_num_batched_tokens = eng.at("max_num_batched_tokens")
                                   .positive_int_at_most_or("max_num_batched_tokens", 8192, kMaxTokensPerRequest,
                                                            "the limit of tokens per request, and so per step");
  lim.chunked_prefill = eng.at("enable_chunked_prefill").boolean_or("enable_chunked_prefill", true);
  lim.long_prefill_token_threshold =
      eng.at("long_prefill_token_threshold").non_negative_int_or("long_prefill_token_threshold", 0);
  e.config.block_size = eng.at("block_size").positive_int_or("block_size", 16);
  // vLLM's --enable-prefix-caching, on by default in vLLM v1 (vllm/engine/arg_utils.py, V1 engine defaults).
  e.config.enable_prefix_caching = eng.at("enable_prefix_caching").boolean_or("enable_prefix_caching", true);
  // vLLM's --disable-hybrid-kv-cache-manager (off by default: models mixing full and sliding-window layers get
  // per-group blocks; sim/engine/kv_cache.h KvGroups).
  e.config.hybrid_kv_cache =
      !eng.at("disable_hybrid_kv_cache_manager").boolean_or("disable_hybrid_kv_cache_manager", false);
  if (!eng.has("max_model_len") && arch.max_position_embeddings > kMaxTokensPerRequest) {
    eng.fail("max_model_len", "is needed: the model's max_position_embeddings " +
                                  std::to_string(arch.max_position_embeddings) + " is past the limit of " +
                                  std::to_string(kMaxTokensPerRequest) + " tokens per request");
  }
  e.config.max_model_len = eng.at("max_model_len")
                               .positive_int_at_most_or("max_model_len", arch.max_position_embeddings,
                                                        kMaxTokensPerRequest, "the limit of tokens per request");
  // vLLM refuses a max_model_len beyond the config's max_position_embeddings unless VLLM_ALLOW_LONG_MAX_MODEL_LEN
  // is set (vllm/config _get_and_verify_max_len); servesim's switch is this key.
  const bool allow_long = eng.at("allow_long_max_model_len").boolean_or("allow_long_max_model_len", false);
  if (arch.max_position_embeddings > 0 && e.config.max_model_len > arch.max_position_embeddings && !allow_long) {
    eng.fail("max_model_len", std::to_string(e.config.max_model_len) + " is greater than max_position_embeddings " +
                                  std::to_string(arch.max_position_embeddings) + " of " + arch.name +
                                  " (set engine.allow_long_max_model_len = true to allow it, as vLLM's "
                                  "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 does)");
  }
  e.kv.num_gpu_blocks_override = eng.at("num_gpu_blocks_override").non_negative_int_or("num_gpu_blocks_override", 0);
  e.gpu_memory_utilization = eng.at("gpu_memory_utilization").positive_or("gpu_memory_utilization", 0.9);
  if (e.gpu_memory_utilization > 1.0) eng.fail("gpu_memory_utilization", "must be in (0, 1]");
  if (lim.max_num_batched_tokens < lim.max_num_seqs) {
    eng.fail("max_num_batched_tokens", "must be >= max_num_seqs (" + std::to_string(lim.max_num_seqs) + ")");
  }
  if (!lim.chunked_prefill && lim.max_num_batched_tokens < e.config.max_model_len) {
    eng.fail("max_num_batched_tokens", "must be >= max_model_len (" + std::to_string(e.config.max_model_len) +
                                           ") when chunked prefill is disabled");
  }
  // vLLM's --kv-cache-dtype: "auto" keeps the model dtype; the fp8 formats store K and V in one byte.
  const std::string kv_dtype = eng.at("kv_cache_dtype").str_or("kv_cache_dtype", "auto");
  e.kv_cache_dtype = kv_dtype;
  if (kv_dtype == "fp8" || kv_dtype == "fp8_e4m3" || kv_dtype == "fp8_e5m2") {
    arch.kv_bytes_per_element = 1.0;
  } else if (kv_dtype != "auto") {
    eng.fail("kv_cache_dtype", "unknown KV-cache dtype '" + kv_dtype + "' (valid: auto, fp8, fp8_e4m3, fp8_e5m2)");
  }
  e.scheduler_impl = e.scheduler.str_or("impl", "vllm");
  // Validates the name now.
  (void)scheduler_registry().create(e.scheduler_impl, e.scheduler.key_path("impl"), e.scheduler, lim);

  e.overhead = read_overhead(eng.sub("overhead"), e.graphs);
  read_cuda_graphs(eng, lim, e.graphs);
  e.config.jitter = read_jitter(eng.sub("jitter"));
  const std::string jitter_switch = sim.str_or("jitter", "on");
  if (jitter_switch == "off") {
    e.config.jitter = StepJitterSpec{};
  } else if (jitter_switch != "on") {
    sim.fail("jitter", "must be \"on\" (use [engine.jitter] if the scenario has one) or \"off\" (the mean model)");
  }
  e.config.decode_stretch = sim.boolean_or("decode_stretch", true);
  const Config fe = eng.sub("front_end");
  e.config.front_end.fixed = fe.duration_or("fixed", Seconds{0.0});
  e.config.front_end.per_prompt_token = fe.duration_or("per_prompt_token", Seconds{0.0});
  return e;
}

void size_kv_cache(EngineSetup& e, const LayeredTable& eng, const Config& gpu_table, const std::string& gpu_key,
                   const ModelArch& arch, const GpuSpec& gpu, const ParallelConfig& parallel, const StepModel& model) {
  SchedulerLimits& lim = e.config.limits;
  // Per GPU of each pipeline stage; the replica's block count is the smallest over the stages.
  e.kv.block_size = e.config.block_size;
  e.kv.usable = gpu.memory * e.gpu_memory_utilization;
  e.kv.activations = eng.has("activation_reserve") ? eng.at("activation_reserve").bytes("activation_reserve")
                                                   : default_activation_reserve(arch, parallel, lim);
  e.kv.stages.clear();
  const KvGroups layout = KvGroups::of(arch, parallel.pipeline, e.config.hybrid_kv_cache);
  const std::vector<std::int64_t> stage_layers = StepModel::pp_stage_layers(arch.num_layers, parallel.pipeline);
  for (std::int64_t st = 0; st < parallel.pipeline; ++st) {
    KvCacheSizing::Stage stage{model.weight_bytes_per_gpu(st), model.kv_bytes_per_token_per_gpu(st)};
    if (layout.hybrid()) {
      stage.page_layers = layout.page_layers(arch, parallel.pipeline, st);
      stage.layers = stage_layers[static_cast<std::size_t>(st)];
    }
    e.kv.stages.push_back(stage);
  }
  e.kv.groups = layout.groups();
  const Bytes weights = e.kv.max_weights();
  if (weights > e.kv.usable) {
    gpu_table.fail(gpu_key, arch.name + " needs " + fmt_gib(weights) + " of weights per GPU but only " +
                                fmt_gib(e.kv.usable) + " of the " + gpu.name + " is usable at gpu_memory_utilization " +
                                shortest(e.gpu_memory_utilization) +
                                ": the model does not fit (raise tensor_parallel_size or pick a larger GPU)");
  }
  // vLLM's num_gpu_blocks, the null block included (the scheduler's KvCacheManager keeps it back).
  e.config.num_kv_blocks = e.kv.num_blocks();
  if (e.config.num_kv_blocks <= KvCacheSizing::kNullBlocks && e.kv.num_gpu_blocks_override > 0) {
    eng.fail("num_gpu_blocks_override", "must be at least 2 (one block is vLLM's null block, which holds no tokens)");
  }
  if (e.config.num_kv_blocks <= KvCacheSizing::kNullBlocks) {
    gpu_table.fail(gpu_key, "no memory left for the KV cache after " + fmt_gib(weights) + " of weights and " +
                                fmt_gib(e.kv.activations) + " of activations: the model does not fit");
  }
  // One data-parallel rank's pool (below): the most one sequence can hold.
  const std::int64_t rank_blocks = e.config.num_kv_blocks;
  if (parallel.data > 1) {
    // Data-parallel attention: each of the `data` ranks is an engine with its own KV cache and its own limits
    // (max_num_seqs, max_num_batched_tokens stay per rank, as vLLM's engine arguments; sim/engine/dp_group.h). The
    // pool's blocks here are the replica's, data x one rank's (the run gives each rank its share); one rank's pool
    // bounds a sequence (EngineConfig::kv_blocks_per_rank, for a replica scheduled as one engine).
    e.config.num_kv_blocks *= parallel.data;
    e.config.kv_blocks_per_rank = rank_blocks;
  }

  // Every micro-batch engine's pool (each gets 1/p of the blocks) less its null block must hold one max_model_len
  // sequence. vLLM v1 checks this at start-up in bytes (vllm/v1/core/kv_cache_utils.py
  // check_enough_kv_cache_memory: "To serve at least one request with the model's max seq len ...", with "the
  // estimated maximum model length"), counting the null block's memory as available; servesim refuses one block
  // earlier, since BlockPool never hands the null block out and such a request could never be scheduled. With a
  // sliding window on every layer the sequence holds at most its window's blocks (SlidingWindowSpec's
  // max_memory_usage_bytes).
  // With data-parallel attention, one rank's pool (its share of a micro-batch engine's).
  const std::int64_t per_engine_blocks = rank_blocks / parallel.pipeline;
  const std::int64_t usable_blocks = per_engine_blocks - KvCacheSizing::kNullBlocks;
  const std::int64_t per_engine_tokens = usable_blocks / layout.groups() * e.config.block_size;
  const std::int64_t window = layout.window;
  const bool fits = usable_blocks > 0 && KvCacheManager(per_engine_blocks, e.config.block_size, layout,
                                                        lim.max_num_batched_tokens)
                                             .can_ever_fit(e.config.max_model_len);
  if (!fits) {
    eng.fail("max_model_len",
             std::to_string(e.config.max_model_len) +
                 (eng.has("max_model_len") ? "" : " (the default: the model's max_position_embeddings)") +
                 " is larger than the maximum number of tokens that can be stored in the KV cache (" +
                 std::to_string(per_engine_tokens) + " = (" + std::to_string(per_engine_blocks) + " blocks - 1 null block)" +
                 (layout.hybrid() ? " / " + std::to_string(layout.groups()) + " KV cache groups" : "") +
                 " x block_size " + std::to_string(e.config.block_size) +
                 (parallel.pipeline > 1 ? " per pipeline micro-batch engine" : "") +
                 (parallel.data > 1 ? " per data-parallel rank" : "") +
                 (window > 0 ? std::string(", of which a sequence holds its sliding window's blocks") +
                                   (layout.hybrid() ? " in the sliding-window groups" : "")
                             : "") +
                 "); lower engine.max_model_len, raise gpu_memory_utilization or use more GPUs");
  }
}

}  // namespace servesim
