// servesim-gemm-bench — times the dense linear layers of a Llama-style model with cuBLASLt.
//
// Usage:
//   servesim-gemm-bench --model CONFIG.json --tp N --out FILE.csv
//       [--m-list 1,2,4,...,16384] [--iters 50] [--reps 25] [--warmup 10] [--timing graph|eager]
//       [--ops qkv,o,gate_up,down,lm_head] [--tag TAG] [--fp8] [--device D]
//
// What is timed: Y[M,N] = X[M,K] · W[N,K]ᵀ (torch.nn.functional.linear semantics, row-major), for
// the per-rank shapes of tensor-parallel degree N (see common/model_config.h), M over the --m-list
// (default powers of two 1 … 16384). bf16 inputs and output, fp32 accumulation. With --fp8 the same
// shapes are also timed with fp8 e4m3 inputs (per-tensor scale 1.0), bf16 output, on sm_89 or newer;
// on older GPUs the fp8 rows are skipped with a message.
//
// Method: one cuBLASLt matmul per call, algorithm = first result of cublasLtMatmulAlgoGetHeuristic
// with a 32 MiB workspace (allocated up front, so the calls can be captured into a CUDA graph). Inputs
// are random normal (device-side hash generator), never zeros. Several copies of W are rotated so that
// the weight bytes touched between two uses of the same copy exceed 2× the L2 size (as in a real model,
// where every layer has its own weights); X and Y are not rotated (activations are hot). Per (shape, M),
// --warmup untimed calls first, then (see calib::time_calls in common/bench_common.h):
//   --timing graph (default): --iters back-to-back calls, rounded up to a multiple of the number of weight
//       copies (each call uses the next copy, and the rotation runs on across launches), are captured
//       into one CUDA graph; after 2 untimed launches, each repetition times one launch of the graph
//       between two CUDA events. This is the GPU-side time per call, as in an engine that runs decode
//       under CUDA graphs. If the graph cannot be captured, the warning names the reason, that (shape, M)
//       is timed eagerly and the "# timing:" comment line lists it.
//   --timing eager: each repetition records a CUDA event, issues --iters calls from the host, records a
//       second event. Small GEMMs then measure the host's launch rate (a floor of several µs per call).
// Time per call = elapsed / calls; the CSV row holds the median, min and max over --reps repetitions.
//
// Run time: each (shape, M) runs about warmup + 2·iters + reps·iters = 1360 calls with the defaults. One
// call of each default M summed over the five layers of Llama-3-8B at TP 1 takes about 75 ms on an H200
// (lm_head at M = 8192 and 16384 half of it), about 11 ms over the four layers of a TP-8 shard of
// Llama-3-70B: about 100 s and 15 s of GPU time (--iters 20 --reps 15 takes about a quarter of that).
//
// Output CSV (with "# key: value" comment lines first, "# timing: ..." last):
//   op,M,N,K,dtype,median_us,min_us,max_us
// op = qkv|o|gate_up|down|lm_head (prefixed by "TAG_" with --tag), dtype = bf16|fp8_e4m3, times in µs.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.h"
#include "model_config.h"

#define CUBLAS_CHECK(expr)                                                                        \
  do {                                                                                            \
    cublasStatus_t st_ = (expr);                                                                  \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                                           \
      std::fprintf(stderr, "%s:%d: cuBLASLt error %d (%s) in %s\n", __FILE__, __LINE__,           \
                   static_cast<int>(st_), cublasLtGetStatusString(st_), #expr);                   \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

namespace {

constexpr size_t kWorkspaceBytes = 32ull << 20;

struct Options {
  std::string model, out, tag;
  long tp = 1;
  std::vector<long> m_list;
  std::vector<std::string> ops;
  int iters = 50, reps = 25, warmup = 10, device = 0;
  calib::Timing timing = calib::Timing::kGraph;
  bool fp8 = false;
};

void usage() {
  std::fprintf(stderr,
               "usage: servesim-gemm-bench --model CONFIG.json --tp N --out FILE.csv [--m-list 1,2,...]\n"
               "       [--iters 50] [--reps 25] [--warmup 10] [--timing graph|eager]\n"
               "       [--ops qkv,o,gate_up,down,lm_head] [--tag TAG] [--fp8] [--device D]\n");
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (long m = 1; m <= 16384; m *= 2) o.m_list.push_back(m);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model") o.model = calib::flag_value(argc, argv, i);
    else if (a == "--tp") o.tp = calib::parse_long(calib::flag_value(argc, argv, i), "--tp");
    else if (a == "--out") o.out = calib::flag_value(argc, argv, i);
    else if (a == "--m-list") o.m_list = calib::parse_long_list(calib::flag_value(argc, argv, i), "--m-list");
    else if (a == "--iters") o.iters = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--iters");
    else if (a == "--reps") o.reps = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--reps");
    else if (a == "--warmup") o.warmup = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--warmup");
    else if (a == "--timing") o.timing = calib::parse_timing(calib::flag_value(argc, argv, i));
    else if (a == "--device") o.device = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--device");
    else if (a == "--ops") o.ops = calib::split(calib::flag_value(argc, argv, i), ',');
    else if (a == "--tag") o.tag = calib::flag_value(argc, argv, i);
    else if (a == "--fp8") o.fp8 = true;
    else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
    else { usage(); ARG_FAIL("unknown argument '%s'", a.c_str()); }
  }
  if (o.model.empty() || o.out.empty()) { usage(); ARG_FAIL("--model and --out are required"); }
  if (o.iters < 1 || o.reps < 1 || o.warmup < 0) ARG_FAIL("--iters and --reps must be >= 1, --warmup >= 0");
  for (long m : o.m_list)
    if (m < 1) ARG_FAIL("--m-list entries must be >= 1");
  return o;
}

struct DType {
  const char* name;
  cudaDataType_t ab;  // input type of X and W
  size_t elt;         // bytes per input element
};

// Everything one (shape, dtype) needs on the device; weights rotate over `copies` buffers.
struct GemmBuffers {
  std::vector<void*> w;
  void* x = nullptr;
  void* y = nullptr;
  void* workspace = nullptr;
  float* scale_one = nullptr;  // device 1.0f, used as the fp8 per-tensor scale of A and B
};

void* alloc_fill(size_t elems, const DType& dt, uint64_t seed) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, elems * dt.elt));
  if (dt.ab == CUDA_R_16BF) calib::fill_normal(static_cast<__nv_bfloat16*>(p), elems, seed);
  else calib::fill_normal(static_cast<__nv_fp8_e4m3*>(p), elems, seed);
  return p;
}

// Times Y = X·Wᵀ for one M. Returns false if cuBLASLt has no algorithm for it.
// Column-major view used by cuBLASLt: Yᵀ[N,M] = W[N,K] · Xᵀ[K,M], with W stored as a K×N column-major
// matrix (op T) and X as K×M (op N) — the "TN" layout that fp8 requires.
bool time_one(cublasLtHandle_t lt, cudaStream_t stream, const DType& dt, long M, long N, long K,
              GemmBuffers& buf, const Options& opt, calib::CallTimes* out) {
  cublasLtMatmulDesc_t desc;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof(opT)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof(opN)));
  if (dt.ab == CUDA_R_8F_E4M3) {
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &buf.scale_one,
                                                sizeof(buf.scale_one)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &buf.scale_one,
                                                sizeof(buf.scale_one)));
  }
  cublasLtMatrixLayout_t a, b, c;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a, dt.ab, K, N, K));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b, dt.ab, K, M, K));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c, CUDA_R_16BF, N, M, N));

  cublasLtMatmulPreference_t pref;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = kWorkspaceBytes;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  cublasLtMatmulHeuristicResult_t heur = {};
  int found = 0;
  const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt, desc, a, b, c, c, pref, 1, &heur, &found);
  bool ok = true;
  if (hs == CUBLAS_STATUS_NOT_SUPPORTED || (hs == CUBLAS_STATUS_SUCCESS && found == 0)) {
    ok = false;
  } else {
    CUBLAS_CHECK(hs);
    const float alpha = 1.0f, beta = 0.0f;
    // One matmul with weight copy `slot`; the host-side alpha/beta are read when the call is issued
    // (and when it is captured), not when the graph runs.
    auto issue = [&](int slot) {
      const cublasStatus_t st = cublasLtMatmul(lt, desc, &alpha, buf.w[slot], a, buf.x, b, &beta, buf.y, c, buf.y,
                                               c, &heur.algo, buf.workspace, kWorkspaceBytes, stream);
      if (st != CUBLAS_STATUS_SUCCESS)
        std::fprintf(stderr, "cublasLtMatmul: cuBLASLt error %d (%s)\n", static_cast<int>(st),
                     cublasLtGetStatusString(st));
      return st == CUBLAS_STATUS_SUCCESS;
    };
    *out = calib::time_calls(stream, opt.timing, opt.iters, opt.reps, opt.warmup, static_cast<int>(buf.w.size()),
                             issue);
  }
  CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
  CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(a));
  CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(b));
  CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(c));
  CUBLAS_CHECK(cublasLtMatmulDescDestroy(desc));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  const calib::ModelConfig cfg = calib::load_model_config(opt.model);
  std::vector<calib::GemmShape> shapes = calib::tp_gemm_shapes(cfg, opt.tp);
  if (!opt.ops.empty()) {
    std::vector<calib::GemmShape> keep;
    for (const auto& want : opt.ops) {
      bool hit = false;
      for (const auto& s : shapes)
        if (s.op == want) { keep.push_back(s); hit = true; }
      if (!hit) ARG_FAIL("unknown op '%s' (qkv, o, gate_up, down, lm_head)", want.c_str());
    }
    shapes = keep;
  }

  CUDA_CHECK(cudaSetDevice(opt.device));
  const int cc = 10 * calib::device_attr(cudaDevAttrComputeCapabilityMajor, opt.device) +
                 calib::device_attr(cudaDevAttrComputeCapabilityMinor, opt.device);
  const size_t l2 = static_cast<size_t>(calib::device_attr(cudaDevAttrL2CacheSize, opt.device));

  std::vector<DType> dtypes = {{"bf16", CUDA_R_16BF, 2}};
  if (opt.fp8) {
    if (cc >= 89) dtypes.push_back({"fp8_e4m3", CUDA_R_8F_E4M3, 1});
    else std::printf("skipping fp8: the GPU is sm_%d, fp8 cuBLASLt matmuls need sm_89 or newer\n", cc);
  }

  cublasLtHandle_t lt;
  CUBLAS_CHECK(cublasLtCreate(&lt));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  std::string comments =
      "# servesim-gemm-bench: Y[M,N] = X[M,K]·W[N,K]^T with cuBLASLt, fp32 accumulation, bf16 output\n";
  comments += calib::device_comments(opt.device);
  const size_t ltv = cublasLtGetVersion();
  comments += calib::strprintf("# cublasLt: %zu.%zu.%zu\n", ltv / 10000, (ltv / 100) % 100, ltv % 100);
  const std::string tag_field = opt.tag.empty() ? "" : "tag=" + opt.tag + " ";
  comments += calib::strprintf(
      "# model: %shidden=%ld intermediate=%ld heads=%ld kv_heads=%ld head_dim=%ld vocab=%ld tp=%ld\n",
      tag_field.c_str(), cfg.hidden, cfg.intermediate, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.vocab, opt.tp);
  if (opt.timing == calib::Timing::kGraph)
    comments += calib::strprintf(
        "# method: CUDA graph per (shape, M) of %d back-to-back calls (rounded up to a multiple of the weight "
        "copies), launched %d times untimed, then once between two CUDA events per repetition (GPU-side time, "
        "no host launch gaps); time/call = elapsed/calls; median/min/max of %d repetitions after %d eager "
        "warm-up calls; heuristic algorithm, 32 MiB workspace; random normal inputs; weight copies rotated so "
        "weight bytes exceed 2x L2\n",
        opt.iters, calib::kGraphWarmupReplays, opt.reps, opt.warmup);
  else
    comments += calib::strprintf(
        "# method: CUDA events around %d back-to-back calls issued from the host (time/call = elapsed/%d; "
        "small calls show the host launch rate), median/min/max of %d repetitions after %d warm-up calls; "
        "heuristic algorithm, 32 MiB workspace; random normal inputs; weight copies rotated so weight bytes "
        "exceed 2x L2\n",
        opt.iters, opt.iters, opt.reps, opt.warmup);
  calib::CsvWriter csv(opt.out, opt.timing, comments, "op,M,N,K,dtype,median_us,min_us,max_us");
  csv.write();  // fails early when the file cannot be written

  const long max_m = *std::max_element(opt.m_list.begin(), opt.m_list.end());
  uint64_t seed = 1;
  for (const DType& dt : dtypes) {
    for (const auto& s : shapes) {
      const std::string op = opt.tag.empty() ? s.op : opt.tag + "_" + s.op;
      GemmBuffers buf;
      const size_t w_bytes = static_cast<size_t>(s.N) * s.K * dt.elt;
      const size_t x_bytes = static_cast<size_t>(max_m) * s.K * dt.elt;
      const size_t y_bytes = static_cast<size_t>(max_m) * s.N * 2;
      size_t copies = (2 * l2) / w_bytes + 1;  // copies * w_bytes > 2 * L2
      size_t free_b = 0, total_b = 0;
      CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
      const size_t fixed = x_bytes + y_bytes + kWorkspaceBytes + (64ull << 20);
      if (fixed + w_bytes > free_b) {
        std::fprintf(stderr, "error: %s (N=%ld K=%ld, M up to %ld) needs %zu MiB, only %zu MiB free\n", op.c_str(),
                     s.N, s.K, max_m, (fixed + w_bytes) >> 20, free_b >> 20);
        return 1;
      }
      const size_t fit = (free_b - fixed) / w_bytes;
      if (copies > fit) {
        std::printf("warning: %s: only %zu weight copies fit in memory (wanted %zu)\n", op.c_str(), fit, copies);
        copies = fit;
      }
      for (size_t i = 0; i < copies; ++i) buf.w.push_back(alloc_fill(static_cast<size_t>(s.N) * s.K, dt, seed++));
      buf.x = alloc_fill(static_cast<size_t>(max_m) * s.K, dt, seed++);
      CUDA_CHECK(cudaMalloc(&buf.y, y_bytes));
      CUDA_CHECK(cudaMalloc(&buf.workspace, kWorkspaceBytes));
      CUDA_CHECK(cudaMalloc(&buf.scale_one, sizeof(float)));
      const float one = 1.0f;
      CUDA_CHECK(cudaMemcpy(buf.scale_one, &one, sizeof(one), cudaMemcpyHostToDevice));
      CUDA_CHECK(cudaDeviceSynchronize());
      std::printf("%s %s N=%ld K=%ld: %zu weight copies (%.1f MiB each)\n", op.c_str(), dt.name, s.N, s.K, copies,
                  w_bytes / 1048576.0);

      for (long m : opt.m_list) {
        calib::CallTimes t;
        if (!time_one(lt, stream, dt, m, s.N, s.K, buf, opt, &t)) {
          std::printf("  M=%-6ld skipped: cuBLASLt offers no algorithm for this shape and type\n", m);
          continue;
        }
        if (opt.timing == calib::Timing::kGraph && t.used == calib::Timing::kEager) {
          std::printf("  warning: M=%ld: no CUDA graph (%s); timed eagerly\n", m, t.fallback.c_str());
          csv.add_fallback(calib::strprintf("%s %s M=%ld", op.c_str(), dt.name, m));
        }
        const calib::Stats& st = t.stats;
        csv.add_row(calib::strprintf("%s,%ld,%ld,%ld,%s,%.4f,%.4f,%.4f", op.c_str(), m, s.N, s.K, dt.name,
                                     st.median_us, st.min_us, st.max_us));
        const double tflops = 2.0 * m * s.N * s.K / (st.median_us * 1e-6) / 1e12;
        std::printf("  M=%-6ld median %10.2f us  (min %.2f, max %.2f)  %7.1f TFLOP/s  [%s, %d calls]\n", m,
                    st.median_us, st.min_us, st.max_us, tflops, calib::timing_name(t.used), t.calls);
      }
      for (void* w : buf.w) CUDA_CHECK(cudaFree(w));
      CUDA_CHECK(cudaFree(buf.x));
      CUDA_CHECK(cudaFree(buf.y));
      CUDA_CHECK(cudaFree(buf.workspace));
      CUDA_CHECK(cudaFree(buf.scale_one));
    }
  }
  CUDA_CHECK(cudaStreamDestroy(stream));
  CUBLAS_CHECK(cublasLtDestroy(lt));
  std::printf("wrote %s\n", opt.out.c_str());
  return 0;
}
