#include "sim/cli/scenario.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/cost/op_predictors.h"
#include "models/hw/profile.h"
#include "models/net/collective_calibration.h"
#include "models/net/topology_comm.h"
#include "sim/cluster/router.h"

namespace servesim {
namespace {

bool is_data_root(const std::filesystem::path& p) {
  return std::filesystem::exists(p / "scenarios" / "hardware" / "gpus.toml");
}

std::string join_names(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string fmt_gib(Bytes b) {
  std::ostringstream os;
  os.precision(1);
  os << std::fixed << b.v / kGiB << " GiB";
  return os.str();
}

// Replicas in one scenario: each has its own engines, queues and step model.
constexpr std::int64_t kMaxReplicas = 4096;
// Each parallel degree (tensor, pipeline, expert): far above any topology's GPU count (the catalog's largest,
// cluster-4x-dgx-h100, has 32), and small enough that replicas x tensor x pipeline stays below 2^40.
constexpr std::int64_t kMaxParallelSize = 65536;
constexpr const char* kParallelLimit = "the limit of GPUs per parallel degree";

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
  const double forward = tokens * (3.0 * double(a.intermediate_size) / double(p.tensor) + 3.0 * h) * e;
  const double sampler = tokens * h * e + double(l.max_num_seqs) * double(a.vocab_size) * (e + kFp32 + kFp32);
  const double rope = double(a.max_position_embeddings) * double(a.head_dim) * e;
  return Bytes{std::max(forward, sampler) + kNonTorchBytes + rope};
}

// [engine.overhead]: the engine's CPU time per step (models/cost/step_model.h, EngineOverhead). The defaults are
// servesim's long-standing 400 us per step + 10 us per sequence (decoding or prefilling), a vLLM-like engine
// running its steps as CUDA graphs; calibrate a real engine with `servesim calibrate trace`.
EngineOverhead read_overhead(const Config& ovh) {
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
  for (const char* k : {"per_step", "per_decode_seq", "per_prefill_seq", "per_prefill_token", "per_sampled_token"}) {
    if (ovh.has(k) && ovh.duration(k).v < 0) ovh.fail(k, "must be >= 0");
  }
  return o;
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
  if (s.stall_probability > 0 && !(s.stall_median.v > 0)) j.fail("stall_median", "must be > 0 when stall_probability > 0");
  s.stall_sigma = j.non_negative_or("stall_sigma", 0.0);
  if (s.stall_sigma > 3.0) j.fail("stall_sigma", "must be at most 3");
  return s;
}

}  // namespace

std::filesystem::path find_data_root(const std::filesystem::path& scenario_dir) {
  if (const char* env = std::getenv("SERVESIM_HOME"); env != nullptr && is_data_root(env)) return env;
  // A scenario given as a bare file name has an empty directory: the current one.
  const std::filesystem::path start = scenario_dir.empty() ? std::filesystem::current_path() : scenario_dir;
  for (auto p = std::filesystem::absolute(start); !p.empty(); p = p.parent_path()) {
    if (is_data_root(p)) return p;
    if (p == p.parent_path()) break;
  }
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto p = exe.parent_path(); !p.empty(); p = p.parent_path()) {
      if (is_data_root(p)) return p;
      if (p == p.parent_path()) break;
    }
  }
  throw InputError("cannot find the catalogs (scenarios/hardware/gpus.toml); set SERVESIM_HOME to the servesim "
                   "source directory");
}

double Scenario::output_throughput_bound() const {
  return double(num_replicas) * double(parallel.gpus()) * gpu.bf16_peak.v / (2.0 * arch.active_params());
}

ScenarioLoader::ScenarioLoader(const std::string& path, const ScenarioOptions& opts)
    : cfg_([&] {
        check_input_file(path, "scenario", kMaxDocumentBytes);
        return Config::from_file(path);
      }()) {
  Scenario& s = scenario_;
  opts_ = opts;
  s.file = path;
  s.paths.base = std::filesystem::path(path).parent_path();
  // Calibration files: the scenario's own (a path or a list of paths, relative to the scenario), then the
  // command line's; then --set.
  std::vector<std::string> calibrations;
  if (cfg_.has("calibration")) {
    const std::vector<std::string> listed =
        cfg_.is_array("calibration") ? cfg_.str_list("calibration") : std::vector<std::string>{cfg_.str("calibration")};
    for (const auto& f : listed) {
      // Relative to the scenario's folder; a --set calibration is refused below (use --calibration).
      const std::string resolved = s.paths.resolve(f);
      try {
        check_input_file(resolved, "calibration file", kMaxDocumentBytes);
      } catch (const InputError& e) {
        cfg_.fail("calibration", e.what());
      }
      calibrations.push_back(resolved);
    }
  }
  for (const auto& f : opts.calibrations) {
    try {
      check_input_file(f, "calibration file", kMaxDocumentBytes);
    } catch (const InputError& e) {
      throw InputError(std::string("--calibration: ") + e.what());
    }
    calibrations.push_back(f);
  }
  for (const auto& f : calibrations) {
    if (Config::from_file(f).has("calibration")) {
      throw InputError(f + ": a calibration file cannot name further calibration files ('calibration' key)");
    }
    cfg_.merge_file(f);
  }
  for (const auto& [k, v] : opts.sets) {
    if (k == "calibration") throw InputError("--set calibration: use --calibration FILE (repeatable)");
    cfg_.set(k, v);
  }
  s.data_root = find_data_root(s.paths.base);

  const Config sim = cfg_.table_or_empty("sim");
  const auto file_seed = static_cast<std::uint64_t>(sim.non_negative_int_or("seed", 0));
  s.seed = opts.seed ? *opts.seed : file_seed;
  if (sim.has("horizon")) {
    const Seconds h = sim.duration("horizon");
    if (!(h.v > 0)) sim.fail("horizon", "must be > 0 (a horizon of 0 s runs nothing; leave it out to run every request)");
    s.horizon = to_ns(h);
  }

  // [model]
  const Config model = cfg_.table("model");
  // A path (relative to the file that names it, or to the working directory for --set), else a catalog name with
  // or without ".json".
  std::string model_path = model.str("config");
  if (const std::string resolved = s.paths.resolve(model, "config"); !std::filesystem::exists(resolved)) {
    const std::string stem = model_path.size() > 5 && model_path.ends_with(".json")
                                 ? model_path.substr(0, model_path.size() - 5) : model_path;
    const auto catalog = s.data_root / "scenarios" / "models" / (stem + ".json");
    if (stem.find('/') != std::string::npos || !std::filesystem::exists(catalog)) {
      model.fail("config", "model config '" + model_path + "' not found (as " + resolved + " or in the catalog " +
                               (s.data_root / "scenarios" / "models").string() + ")");
    }
    model_path = catalog.string();
  } else {
    model_path = resolved;
  }
  // config.json keys the user accepts knowingly (neither modelled nor known to be harmless: models/arch).
  s.arch = ModelArch::from_hf_config(
      model_path, model.has("ignore_config_keys") ? model.str_list("ignore_config_keys") : std::vector<std::string>{});
  if (model.has("quantization")) {
    s.arch.quantization = parse_quantization(model.str("quantization"), model.where("quantization") + ": model.quantization");
  } else if (!s.arch.quant_method_modelled) {
    model.fail("config", model_path + ": quantization_config.quant_method '" + s.arch.quant_method +
                             "' is not modelled (fp8 schemes are: fp8, fbgemm_fp8, modelopt FP8, compressed-tensors "
                             "with 8-bit float weights); set [model] quantization = \"fp8\" or \"none\" to cost it as one");
  }

  // Mixture-of-experts routing (models/cost/moe_routing.h): uniform, Zipf-skewed popularity, or measured loads.
  const std::string routing = model.str_or("expert_routing", "uniform");
  if (!s.arch.moe.enabled() && (model.has("expert_routing") || model.has("expert_zipf_exponent") ||
                                model.has("expert_loads"))) {
    model.fail(model.has("expert_routing") ? "expert_routing" : model.has("expert_loads") ? "expert_loads"
                                                                                           : "expert_zipf_exponent",
               s.arch.name + " has no mixture-of-experts layers");
  }
  if (routing != "zipf" && model.has("expert_zipf_exponent")) {
    model.fail("expert_zipf_exponent", "applies to expert_routing = \"zipf\" only");
  }
  if (routing != "measured" && model.has("expert_loads")) {
    model.fail("expert_loads", "applies to expert_routing = \"measured\" only");
  }
  try {
    if (routing == "zipf") {
      s.routing = ExpertRouting::zipf(s.arch.moe.num_experts, s.arch.moe.experts_per_token,
                                      model.non_negative_or("expert_zipf_exponent", 1.0));
    } else if (routing == "measured") {
      s.routing = ExpertRouting::from_loads(model.num_list("expert_loads"), s.arch.moe.experts_per_token,
                                            "expert_loads");
      if (s.routing.experts() != s.arch.moe.num_experts) {
        model.fail("expert_loads", std::to_string(s.routing.experts()) + " loads for " +
                                       std::to_string(s.arch.moe.num_experts) + " experts");
      }
    } else if (routing != "uniform") {
      model.fail("expert_routing", "unknown routing '" + routing + "' (valid: measured, uniform, zipf)");
    }
  } catch (const InputError& e) {
    const std::string m = e.what();
    if (m.rfind("expert", 0) != 0) throw;  // already names file:line
    model.fail(routing == "zipf" ? "expert_zipf_exponent" : "expert_loads", m);
  }

  // [hardware]
  const Config hw = cfg_.table("hardware");
  const std::string gpu_name = hw.str("gpu");
  const std::string catalog_path =
      hw.has("catalog") ? s.paths.resolve(hw, "catalog") : (s.data_root / "scenarios/hardware/gpus.toml").string();
  const Config catalog = Config::from_file(catalog_path);
  s.gpu = load_gpu(catalog, gpu_name, hw.where("gpu") + ": hardware.gpu");
  std::shared_ptr<const CalibrationProfile> profile;
  if (hw.has("profile")) {
    std::string dir = s.paths.resolve(hw, "profile");
    if (!std::filesystem::is_directory(dir)) dir = (s.data_root / hw.str("profile")).string();
    if (!std::filesystem::is_directory(dir)) hw.fail("profile", "calibration profile directory not found");
    profile = std::make_shared<const CalibrationProfile>(CalibrationProfile::load(dir));
  }
  // A profile measured on another GPU than hardware.gpu: an error unless profile_gpu_mismatch = "allow".
  const std::string gpu_mismatch = hw.str_or("profile_gpu_mismatch", "error");
  if (gpu_mismatch != "error" && gpu_mismatch != "allow") {
    hw.fail("profile_gpu_mismatch", "'" + gpu_mismatch + "' is not valid (valid: allow, error)");
  }
  const std::string why = profile ? profile_gpu_mismatch(*profile, s.gpu, hw.str("profile")) : "";
  if (!why.empty() && gpu_mismatch == "error") {
    hw.fail("profile", why + " (set hardware.profile_gpu_mismatch = \"allow\" to use it anyway)");
  }
  s.predictor_impl = hw.str_or("predictor", profile ? "calibrated" : "roofline");
  const PredictorContext pctx{s.gpu, profile, hw.where("predictor") + ": hardware.predictor"};
  std::shared_ptr<const OpPredictor> predictor =
      predictor_registry().create(s.predictor_impl, hw.where("predictor") + ": hardware.predictor", pctx);

  // [cluster]: read first, as the replicas' GPU placement depends on their number.
  const Config cl = cfg_.table_or_empty("cluster");
  s.num_replicas = cl.positive_int_or("replicas", 1);
  if (s.num_replicas > kMaxReplicas) cl.fail("replicas", "at most " + std::to_string(kMaxReplicas) + " replicas are modelled");

  // [parallel]
  const Config par = cfg_.table_or_empty("parallel");
  s.parallel.tensor = par.positive_int_at_most_or("tensor_parallel_size", 1, kMaxParallelSize, kParallelLimit);
  s.parallel.pipeline = par.positive_int_at_most_or("pipeline_parallel_size", 1, kMaxParallelSize, kParallelLimit);
  s.parallel.overlap = par.non_negative_or("comm_overlap", 0.0);
  if (s.parallel.overlap > 1.0) par.fail("comm_overlap", "must be in [0, 1]");
  // Expert parallelism (MoE models): 1, or every GPU of a stage (models/cost/step_model.h, ParallelConfig).
  s.parallel.expert = par.positive_int_at_most_or("expert_parallel_size", 1, kMaxParallelSize, kParallelLimit);
  s.parallel.data = par.positive_int_or("data_parallel_size", 1);
  std::vector<std::shared_ptr<const GroupComm>> comms;  // per replica; empty without a topology
  if (par.has("topology") || s.parallel.gpus() > 1) {
    if (!par.has("topology")) {
      par.fail("tensor_parallel_size", "a multi-GPU replica needs [parallel] topology (one of: " +
                                           join_names(topology_catalog_names((s.data_root / "scenarios/topologies").string())) + ")");
    }
    // A path (relative to the file that names it, or to the working directory for --set), else a catalog name
    // with or without ".toml".
    std::string topo_name = par.str("topology");
    s.topology = topo_name;
    if (const std::string resolved = s.paths.resolve(par, "topology"); std::filesystem::exists(resolved)) {
      topo_name = resolved;
    } else if (topo_name.size() > 5 && topo_name.ends_with(".toml") && topo_name.find('/') == std::string::npos) {
      topo_name = topo_name.substr(0, topo_name.size() - 5);
    }
    std::shared_ptr<const Topology> topo;
    try {
      topo = std::make_shared<const Topology>(load_topology(topo_name, (s.data_root / "scenarios/topologies").string()));
    } catch (const InputError& e) {
      const std::string m = e.what();
      if (m.find(':') == std::string::npos || m.rfind("unknown", 0) == 0) par.fail("topology", m);
      throw;
    }
    // Every replica on GPUs of its own: replica r on entries [r x n, (r + 1) x n) of the placement list, n = TP x PP.
    const std::int64_t n = s.parallel.gpus();
    const std::int64_t all = n * s.num_replicas;
    if (n > static_cast<std::int64_t>(topo->gpu_count())) {
      par.fail("tensor_parallel_size", "the replica needs " + std::to_string(n) + " GPUs but topology " +
                                           par.str("topology") + " has " + std::to_string(topo->gpu_count()));
    }
    if (all > static_cast<std::int64_t>(topo->gpu_count())) {
      cl.fail("replicas", std::to_string(s.num_replicas) + " replicas of " + std::to_string(n) + " GPUs need " +
                              std::to_string(all) + " GPUs but topology " + par.str("topology") + " has " +
                              std::to_string(topo->gpu_count()));
    }
    std::vector<std::int64_t> placement;
    for (std::int64_t i = 0; i < all; ++i) placement.push_back(i);
    placement = par.integer_list_or("gpus", placement);
    if (static_cast<std::int64_t>(placement.size()) != all) {
      par.fail("gpus", "lists " + std::to_string(placement.size()) + " GPUs for " +
                           (s.num_replicas > 1 ? "replicas x " : "") + "tensor x pipeline = " + std::to_string(all) +
                           (s.num_replicas > 1 ? " (one replica's GPUs after another's)" : ""));
    }
    std::vector<int> gpus;
    std::vector<bool> listed(static_cast<std::size_t>(topo->gpu_count()), false);
    for (const std::int64_t g : placement) {
      if (g < 0 || g >= static_cast<std::int64_t>(topo->gpu_count())) {
        par.fail("gpus", "GPU " + std::to_string(g) + " is not on topology " + par.str("topology") + " (it has " +
                             std::to_string(topo->gpu_count()) + " GPUs)");
      }
      if (listed[static_cast<std::size_t>(g)]) par.fail("gpus", "GPU " + std::to_string(g) + " is listed twice");
      listed[static_cast<std::size_t>(g)] = true;
      gpus.push_back(static_cast<int>(g));
    }
    const std::string algo = par.str_or("collective_algo", "auto");
    const std::string coll_model = par.str_or("collective_model", std::string(kDefaultCollectiveModel));
    const std::string coll_proto = par.str_or("collective_proto", "auto");
    if (!collective_model_registry().contains(coll_model)) {
      par.fail("collective_model", "unknown collective cost model '" + coll_model + "' (valid: " +
                                       collective_model_names() + ")");
    }
    std::shared_ptr<const CollectiveCalibration> cal;
    std::string coll_csv;
    if (par.has("collective_profile")) {
      coll_csv = s.paths.resolve(par, "collective_profile");
      if (!std::filesystem::exists(coll_csv)) par.fail("collective_profile", "file not found: " + coll_csv);
    } else if (profile && std::filesystem::exists(std::filesystem::path(profile->dir) / "collectives.csv")) {
      coll_csv = (std::filesystem::path(profile->dir) / "collectives.csv").string();
    }
    if (!coll_csv.empty()) {
      const CalibratedCollectives cc(topo, read_collectives_csv(coll_csv), algo, coll_model, coll_proto);
      cal = cc.calibration();
    }
    for (std::int64_t r = 0; r < s.num_replicas; ++r) {
      const std::vector<int> mine(gpus.begin() + r * n, gpus.begin() + (r + 1) * n);
      try {
        comms.push_back(std::make_shared<const TopologyComm>(topo, mine, s.parallel, algo, cal, coll_model, coll_proto));
      } catch (const InputError& e) {
        par.fail("gpus", e.what());
      }
    }
  }

  // [engine]
  const Config eng = cfg_.table_or_empty("engine");
  SchedulerLimits& lim = s.replica.limits;
  lim.max_num_seqs = eng.positive_int_at_most_or("max_num_seqs", 256, kMaxTokensPerRequest,
                                                "the limit of tokens per step: every sequence takes one");
  lim.max_num_batched_tokens = eng.positive_int_at_most_or("max_num_batched_tokens", 8192, kMaxTokensPerRequest,
                                                          "the limit of tokens per request, and so per step");
  lim.chunked_prefill = eng.boolean_or("enable_chunked_prefill", true);
  lim.long_prefill_token_threshold = eng.non_negative_int_or("long_prefill_token_threshold", 0);
  s.replica.block_size = eng.positive_int_or("block_size", 16);
  if (!eng.has("max_model_len") && s.arch.max_position_embeddings > kMaxTokensPerRequest) {
    eng.fail("max_model_len", "is needed: the model's max_position_embeddings " +
                                  std::to_string(s.arch.max_position_embeddings) + " is past the limit of " +
                                  std::to_string(kMaxTokensPerRequest) + " tokens per request");
  }
  s.replica.max_model_len = eng.positive_int_at_most_or("max_model_len", s.arch.max_position_embeddings,
                                                        kMaxTokensPerRequest, "the limit of tokens per request");
  // vLLM refuses a max_model_len beyond the config's max_position_embeddings unless VLLM_ALLOW_LONG_MAX_MODEL_LEN
  // is set (vllm/config _get_and_verify_max_len); servesim's switch is this key.
  const bool allow_long = eng.boolean_or("allow_long_max_model_len", false);
  if (s.arch.max_position_embeddings > 0 && s.replica.max_model_len > s.arch.max_position_embeddings && !allow_long) {
    eng.fail("max_model_len", std::to_string(s.replica.max_model_len) + " is greater than max_position_embeddings " +
                                  std::to_string(s.arch.max_position_embeddings) + " of " + s.arch.name +
                                  " (set engine.allow_long_max_model_len = true to allow it, as vLLM's "
                                  "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 does)");
  }
  s.kv.num_gpu_blocks_override = eng.non_negative_int_or("num_gpu_blocks_override", 0);
  s.gpu_memory_utilization = eng.positive_or("gpu_memory_utilization", 0.9);
  if (s.gpu_memory_utilization > 1.0) eng.fail("gpu_memory_utilization", "must be in (0, 1]");
  if (lim.max_num_batched_tokens < lim.max_num_seqs) {
    eng.fail("max_num_batched_tokens", "must be >= max_num_seqs (" + std::to_string(lim.max_num_seqs) + ")");
  }
  if (!lim.chunked_prefill && lim.max_num_batched_tokens < s.replica.max_model_len) {
    eng.fail("max_num_batched_tokens", "must be >= max_model_len (" + std::to_string(s.replica.max_model_len) +
                                           ") when chunked prefill is disabled");
  }
  // vLLM's --kv-cache-dtype: "auto" keeps the model dtype; the fp8 formats store K and V in one byte.
  const std::string kv_dtype = eng.str_or("kv_cache_dtype", "auto");
  s.kv_cache_dtype = kv_dtype;
  if (kv_dtype == "fp8" || kv_dtype == "fp8_e4m3" || kv_dtype == "fp8_e5m2") {
    s.arch.kv_bytes_per_element = 1.0;
  } else if (kv_dtype != "auto") {
    eng.fail("kv_cache_dtype", "unknown KV-cache dtype '" + kv_dtype + "' (valid: auto, fp8, fp8_e4m3, fp8_e5m2)");
  }
  const Config sched = eng.table_or_empty("scheduler");
  s.scheduler_impl = sched.str_or("impl", "vllm");
  (void)make_scheduler();  // validates the name now

  const EngineOverhead overhead = read_overhead(eng.table_or_empty("overhead"));
  s.replica.jitter = read_jitter(eng.table_or_empty("jitter"));
  const std::string jitter_switch = sim.str_or("jitter", "on");
  if (jitter_switch == "off") {
    s.replica.jitter = StepJitterSpec{};
  } else if (jitter_switch != "on") {
    sim.fail("jitter", "must be \"on\" (use [engine.jitter] if the scenario has one) or \"off\" (the mean model)");
  }
  const Config fe = eng.table_or_empty("front_end");
  s.replica.front_end.fixed = fe.duration_or("fixed", Seconds{0.0});
  s.replica.front_end.per_prompt_token = fe.duration_or("per_prompt_token", Seconds{0.0});

  try {
    for (std::int64_t r = 0; r < s.num_replicas; ++r) {
      // Without a topology every replica is one GPU of its own and needs no communication model.
      const auto comm = comms.empty() ? nullptr : comms[static_cast<std::size_t>(r)];
      s.step_models.push_back(std::make_shared<const StepModel>(s.arch, s.gpu, s.parallel, predictor, overhead, comm,
                                                                s.routing));
    }
    s.step_model = s.step_models.front();
  } catch (const InputError& e) {
    // "parallel.tensor_parallel_size: 64 attention heads ..." -> with the scenario's file:line
    const std::string m = e.what();
    const auto colon = m.find(": ");
    const std::string key = m.rfind("parallel.", 0) == 0 ? m.substr(9, colon - 9) : "tensor_parallel_size";
    par.fail(key, colon == std::string::npos ? m : m.substr(colon + 2));
  }

  // KV cache sizing, per GPU of each pipeline stage; the replica's block count is the smallest over the stages.
  s.kv.block_size = s.replica.block_size;
  s.kv.usable = s.gpu.memory * s.gpu_memory_utilization;
  s.kv.activations = eng.has("activation_reserve")
                         ? eng.bytes("activation_reserve")
                         : default_activation_reserve(s.arch, s.parallel, lim);
  s.kv.stages.clear();
  for (std::int64_t st = 0; st < s.parallel.pipeline; ++st) {
    s.kv.stages.push_back({s.step_model->weight_bytes_per_gpu(st), s.step_model->kv_bytes_per_token_per_gpu(st)});
  }
  const Bytes weights = s.kv.max_weights();
  if (weights > s.kv.usable) {
    hw.fail("gpu", s.arch.name + " needs " + fmt_gib(weights) + " of weights per GPU but only " +
                       fmt_gib(s.kv.usable) + " of the " + s.gpu.name + " is usable at gpu_memory_utilization " +
                       std::to_string(s.gpu_memory_utilization) +
                       ": the model does not fit (raise tensor_parallel_size or pick a larger GPU)");
  }
  // vLLM's num_gpu_blocks, the null block included (the scheduler's KvCacheManager keeps it back).
  s.replica.num_kv_blocks = s.kv.num_blocks();
  if (s.replica.num_kv_blocks <= KvCacheSizing::kNullBlocks && s.kv.num_gpu_blocks_override > 0) {
    eng.fail("num_gpu_blocks_override", "must be at least 2 (one block is vLLM's null block, which holds no tokens)");
  }
  if (s.replica.num_kv_blocks <= KvCacheSizing::kNullBlocks) {
    hw.fail("gpu", "no memory left for the KV cache after " + fmt_gib(weights) + " of weights and " +
                       fmt_gib(s.kv.activations) + " of activations: the model does not fit");
  }
  if (s.parallel.data > 1) {
    // Data-parallel attention: each of the `data` groups has its own KV cache and its own vLLM engine limits
    // (max_num_seqs, max_num_batched_tokens are per data-parallel rank, as vLLM's engine arguments). servesim
    // schedules a stage as one engine over all of them, ideally balanced, so the replica holds data x each.
    s.replica.num_kv_blocks *= s.parallel.data;
    lim.max_num_seqs *= s.parallel.data;
    lim.max_num_batched_tokens *= s.parallel.data;
  }

  // Every micro-batch engine's pool (run.cpp gives each 1/p of the blocks) less its null block must hold one
  // max_model_len sequence. vLLM v1 checks this at start-up in bytes (vllm/v1/core/kv_cache_utils.py
  // check_enough_kv_cache_memory: "To serve at least one request with the model's max seq len ...", with "the
  // estimated maximum model length"), counting the null block's memory as available; servesim refuses one block
  // earlier, since BlockPool never hands the null block out and such a request could never be scheduled. With a
  // sliding window on every layer the sequence holds at most its window's blocks (SlidingWindowSpec's
  // max_memory_usage_bytes).
  const std::int64_t per_engine_blocks = s.replica.num_kv_blocks / s.parallel.pipeline;
  const std::int64_t usable_blocks = per_engine_blocks - KvCacheSizing::kNullBlocks;
  const std::int64_t per_engine_tokens = usable_blocks * s.replica.block_size;
  const std::int64_t window = s.arch.kv_window();
  const bool fits = usable_blocks > 0 && KvCacheManager(per_engine_blocks, s.replica.block_size, window,
                                                        lim.max_num_batched_tokens)
                                             .can_ever_fit(s.replica.max_model_len);
  if (!fits) {
    eng.fail("max_model_len", std::to_string(s.replica.max_model_len) +
                                  " is larger than the maximum number of tokens that can be stored in the KV cache (" +
                                  std::to_string(per_engine_tokens) + " = (" + std::to_string(per_engine_blocks) +
                                  " blocks - 1 null block) x block_size " + std::to_string(s.replica.block_size) +
                                  (s.parallel.pipeline > 1 ? " per pipeline micro-batch engine" : "") +
                                  (window > 0 ? ", of which a sequence holds its sliding window's blocks" : "") +
                                  "); lower engine.max_model_len, raise gpu_memory_utilization or use more GPUs");
  }

  // [router]
  const Config router = cfg_.table_or_empty("router");
  s.router_impl = router.str_or("impl", "round_robin");
  (void)router_registry().create(s.router_impl, router.key_path("impl"), router);

  // The workload is built now too, so that every error surfaces before anything runs; the first run uses it.
  built_workload_ = std::make_unique<WorkloadSource>(cfg_.table("workload"), scenario_.paths, scenario_.seed);
  check();
  // A request is admitted only when prompt + output tokens <= max_model_len (sim/engine/replica.cpp, as vLLM). When
  // even the shortest request the length distributions can give is longer, every request would be rejected: an
  // input error now, naming the prompt lengths. (A distribution that only sometimes gives too long a request is
  // valid: those requests are rejected at run time and counted.) Lengths from a trace have no stated minimum.
  const auto min_prompt = built_workload_->min_prompt_tokens();
  if (min_prompt && s.replica.max_model_len > 0) {
    const std::int64_t min_output = built_workload_->min_output_tokens().value_or(1);
    if (*min_prompt + min_output > s.replica.max_model_len) {
      throw InputError(built_workload_->prompt_where() + ": every request is longer than engine.max_model_len " +
                       std::to_string(s.replica.max_model_len) + " (at least " + std::to_string(*min_prompt) +
                       " prompt + " + std::to_string(min_output) +
                       " output tokens), so every one would be rejected: shorten the prompts or raise max_model_len");
    }
  }
}

std::unique_ptr<Scheduler> ScenarioLoader::make_scheduler() const {
  const Config sched = cfg_.table_or_empty("engine").table_or_empty("scheduler");
  return scheduler_registry().create(scenario_.scheduler_impl, sched.key_path("impl"), sched,
                                     scenario_.replica.limits);
}

std::unique_ptr<WorkloadSource> ScenarioLoader::make_workload() const {
  if (built_workload_) return std::move(built_workload_);
  return std::make_unique<WorkloadSource>(cfg_.table("workload"), scenario_.paths, scenario_.seed);
}

}  // namespace servesim
