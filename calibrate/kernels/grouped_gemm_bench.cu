// servesim-grouped-gemm-bench — times the grouped expert GEMMs of a mixture-of-experts layer with cuBLAS.
//
// Usage:
//   servesim-grouped-gemm-bench --model CONFIG.json [--ep N | --tp N] --out FILE.csv
//       [--ops gate_up,down] [--groups-list 1,2,4,...,E] [--m-list 1,2,4,...,512] [--iters 50] [--reps 25]
//       [--warmup 10] [--timing graph|eager] [--tag TAG] [--device D]
//
// What is timed: `groups` experts, each with its own weight W_g[N,K], each applied to its own m token rows,
// Y_g[m,N] = X_g[m,K] · W_g[N,K]ᵀ (torch.nn.functional.linear semantics, row-major), all groups in ONE
// cublasGemmGroupedBatchedEx call (cuBLAS 12.5 or newer), as an MoE layer runs its experts. bf16 inputs and
// output, fp32 compute (CUBLAS_COMPUTE_32F). Every group of a call has the same m; the call passes one cuBLAS
// group per expert (group_count = groups, group_size 1 each), the form an MoE layer with per-expert token
// counts uses. From config.json: expert count = num_local_experts | num_experts | n_routed_experts, expert
// FFN width = moe_intermediate_size, else intermediate_size, hidden = hidden_size (common/model_config.h).
//   --ep N: expert parallelism, experts per GPU E = experts / N, each expert's FFN whole (width w = width)
//   --tp N: tensor parallelism inside the experts, E = experts, each expert's FFN width split (w = width / N)
//   gate_up: N = 2·w, K = hidden;  down: N = hidden, K = w.
// Defaults: --groups-list = powers of two below E, then E (E = 8: 1,2,4,8; E = 32: 1,2,...,32; E = 20:
// 1,2,4,8,16,20); --m-list = 1,2,4,...,512 (rows per group).
//
// Method: one cublasGemmGroupedBatchedEx per call, with the handle's workspace set to a 32 MiB buffer
// allocated up front (so the calls can be captured into a CUDA graph). The A/B/C pointer arrays live in
// device memory (written before timing); dimensions, transposes, leading dimensions, alpha and beta are host
// arrays, as the API requires. Inputs are random normal (device-side hash generator), never zeros. The
// weights rotate over several sets of `groups` expert matrices, so that the weight bytes touched between two
// uses of the same set exceed 2× the L2 size (as in a real model, where every layer has its own experts);
// X and Y are not rotated (activations are hot); the groups' X (and Y) blocks lie back to back, as in a
// permuted token buffer. Per (op, groups, m), --warmup untimed calls first, then (see calib::time_calls in
// common/bench_common.h):
//   --timing graph (default): --iters back-to-back calls, rounded up to a multiple of the number of weight
//       sets (each call uses the next set, and the rotation runs on across launches), are captured into one
//       CUDA graph; after 2 untimed launches, each repetition times one launch of the graph between two CUDA
//       events (GPU-side time per call). If the graph cannot be captured, the warning names the reason, that
//       (op, groups, m) is timed eagerly and the "# timing:" comment line lists it.
//   --timing eager: each repetition records a CUDA event, issues --iters calls from the host, records a
//       second event (small calls then measure the host's launch rate).
// Time per call = elapsed / calls; the CSV row holds the median, min and max over --reps repetitions.
//
// Run time (an ESTIMATE from bytes and FLOPs at H200 rates, about 4 TB/s and 660 TFLOP/s bf16, not a
// measurement): each (op, groups, m) runs about warmup + 2·iters + reps·iters = 1360 calls with the defaults.
// One call of every default (op, groups, m) summed takes about 17 ms for the Mixtral-8x7B experts at TP 1
// (E = 8, groups 1,2,4,8) and about 18 ms for one EP-8 rank of DeepSeek-V3 (E = 32, groups 1,...,32): about
// 25 s of GPU time each with the defaults (--iters 20 --reps 15 takes about a quarter of that), plus the
// setup (filling up to a few GiB of weights). A TP-8 shard of Mixtral's experts takes about 3 s.
//
// Output CSV (with "# key: value" comment lines first, "# timing: ..." last):
//   op,groups,m,N,K,dtype,median_us,min_us,max_us
// op = gate_up|down (prefixed by "TAG_" with --tag), groups = experts in the call, m = rows per group, N and
// K per expert, dtype = bf16, times in µs per grouped call (all groups).
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.h"
#include "model_config.h"

#if !defined(CUBLAS_VERSION) || CUBLAS_VERSION < 120500
#error "servesim-grouped-gemm-bench needs cuBLAS 12.5 or newer (cublasGemmGroupedBatchedEx)"
#endif

#define CUBLAS_CHECK(expr)                                                                        \
  do {                                                                                            \
    cublasStatus_t st_ = (expr);                                                                  \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                                           \
      std::fprintf(stderr, "%s:%d: cuBLAS error %d (%s) in %s\n", __FILE__, __LINE__,             \
                   static_cast<int>(st_), cublasGetStatusString(st_), #expr);                     \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

namespace {

constexpr size_t kWorkspaceBytes = 32ull << 20;
constexpr size_t kAlignElems = 64;  // matrix starts rounded to 128 bytes (cuBLAS wants at least 16)

struct Options {
  std::string model, out, tag;
  long ep = 1, tp = 1;
  std::vector<long> groups_list, m_list;
  std::vector<std::string> ops = {"gate_up", "down"};
  int iters = 50, reps = 25, warmup = 10, device = 0;
  calib::Timing timing = calib::Timing::kGraph;
};

void usage() {
  std::fprintf(stderr,
               "usage: servesim-grouped-gemm-bench --model CONFIG.json [--ep N | --tp N] --out FILE.csv\n"
               "       [--ops gate_up,down] [--groups-list 1,2,4,...] [--m-list 1,2,4,...,512]\n"
               "       [--iters 50] [--reps 25] [--warmup 10] [--timing graph|eager] [--tag TAG] [--device D]\n");
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (long m = 1; m <= 512; m *= 2) o.m_list.push_back(m);
  bool ep_set = false, tp_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model") o.model = calib::flag_value(argc, argv, i);
    else if (a == "--ep") { o.ep = calib::parse_long(calib::flag_value(argc, argv, i), "--ep"); ep_set = true; }
    else if (a == "--tp") { o.tp = calib::parse_long(calib::flag_value(argc, argv, i), "--tp"); tp_set = true; }
    else if (a == "--out") o.out = calib::flag_value(argc, argv, i);
    else if (a == "--groups-list")
      o.groups_list = calib::parse_long_list(calib::flag_value(argc, argv, i), "--groups-list");
    else if (a == "--m-list") o.m_list = calib::parse_long_list(calib::flag_value(argc, argv, i), "--m-list");
    else if (a == "--iters") o.iters = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--iters");
    else if (a == "--reps") o.reps = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--reps");
    else if (a == "--warmup") o.warmup = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--warmup");
    else if (a == "--timing") o.timing = calib::parse_timing(calib::flag_value(argc, argv, i));
    else if (a == "--device") o.device = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--device");
    else if (a == "--ops") o.ops = calib::split(calib::flag_value(argc, argv, i), ',');
    else if (a == "--tag") o.tag = calib::flag_value(argc, argv, i);
    else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
    else { usage(); ARG_FAIL("unknown argument '%s'", a.c_str()); }
  }
  if (o.model.empty() || o.out.empty()) { usage(); ARG_FAIL("--model and --out are required"); }
  if (ep_set && tp_set && o.ep > 1 && o.tp > 1) ARG_FAIL("--ep and --tp exclude each other (give one)");
  if (o.ep < 1 || o.tp < 1) ARG_FAIL("--ep and --tp must be >= 1");
  if (o.iters < 1 || o.reps < 1 || o.warmup < 0) ARG_FAIL("--iters and --reps must be >= 1, --warmup >= 0");
  if (o.ops.empty()) ARG_FAIL("--ops is empty (gate_up, down)");
  for (const auto& op : o.ops)
    if (op != "gate_up" && op != "down") ARG_FAIL("unknown op '%s' (gate_up, down)", op.c_str());
  for (long m : o.m_list)
    if (m < 1 || m > (1L << 24)) ARG_FAIL("--m-list entries must be between 1 and 16777216");
  for (long g : o.groups_list)
    if (g < 1 || g > 65536) ARG_FAIL("--groups-list entries must be between 1 and 65536");
  return o;
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Device arrays of device pointers for one (groups, m): A (weights) for every weight set, B (X) and C (Y).
struct PointerArrays {
  const void** a = nullptr;  // sets · groups entries; set s uses a + s·groups
  const void** b = nullptr;  // groups entries
  void** c = nullptr;        // groups entries
};

// Times the grouped call of `groups` experts for one (shape, m). Returns false if cuBLAS does not support it
// (CUBLAS_STATUS_NOT_SUPPORTED on the first call).
// Column-major view used by cuBLAS: Y_gᵀ[N,m] = W_g[N,K] · X_gᵀ[K,m], with W_g stored as a K×N column-major
// matrix (op T, lda = K), X_g as K×m (op N, ldb = K), Y_g as N×m (ldc = N).
bool time_one(cublasHandle_t handle, cudaStream_t stream, int groups, long m, long N, long K, int sets,
              const PointerArrays& ptr, const Options& opt, calib::CallTimes* out) {
  const std::vector<cublasOperation_t> transa(groups, CUBLAS_OP_T), transb(groups, CUBLAS_OP_N);
  const std::vector<int> m_arr(groups, static_cast<int>(N)), n_arr(groups, static_cast<int>(m)),
      k_arr(groups, static_cast<int>(K)), lda(groups, static_cast<int>(K)), ldb(groups, static_cast<int>(K)),
      ldc(groups, static_cast<int>(N)), group_size(groups, 1);
  const std::vector<float> alpha(groups, 1.0f), beta(groups, 0.0f);
  auto call = [&](int slot) {
    return cublasGemmGroupedBatchedEx(handle, transa.data(), transb.data(), m_arr.data(), n_arr.data(),
                                      k_arr.data(), alpha.data(), ptr.a + static_cast<size_t>(slot) * groups,
                                      CUDA_R_16BF, lda.data(), ptr.b, CUDA_R_16BF, ldb.data(), beta.data(), ptr.c,
                                      CUDA_R_16BF, ldc.data(), groups, group_size.data(), CUBLAS_COMPUTE_32F);
  };
  // One probe call first, so that an unsupported shape is reported as such and not as a failed timed call.
  const cublasStatus_t probe = call(0);
  if (probe == CUBLAS_STATUS_NOT_SUPPORTED) return false;
  CUBLAS_CHECK(probe);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  // The host arrays are read when a call is issued (and when it is captured), not when the graph runs.
  auto issue = [&](int slot) {
    const cublasStatus_t st = call(slot);
    if (st != CUBLAS_STATUS_SUCCESS)
      std::fprintf(stderr, "cublasGemmGroupedBatchedEx: cuBLAS error %d (%s)\n", static_cast<int>(st),
                   cublasGetStatusString(st));
    return st == CUBLAS_STATUS_SUCCESS;
  };
  *out = calib::time_calls(stream, opt.timing, opt.iters, opt.reps, opt.warmup, sets, issue);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse_args(argc, argv);
  const calib::MoeConfig cfg = calib::load_moe_config(opt.model);
  if (cfg.experts % opt.ep)
    ARG_FAIL("--ep %ld does not divide the %ld experts (%s)", opt.ep, cfg.experts, cfg.experts_key.c_str());
  if (cfg.width % opt.tp)
    ARG_FAIL("--tp %ld does not divide the expert width %ld (%s)", opt.tp, cfg.width, cfg.width_key.c_str());
  const long experts_per_gpu = cfg.experts / opt.ep;
  const long width = cfg.width / opt.tp;
  if (opt.groups_list.empty()) {
    for (long g = 1; g < experts_per_gpu; g *= 2) opt.groups_list.push_back(g);
    opt.groups_list.push_back(experts_per_gpu);
  }
  struct Shape {
    std::string op;
    long N, K;
  };
  std::vector<Shape> shapes;
  for (const auto& op : opt.ops) shapes.push_back(op == "gate_up" ? Shape{op, 2 * width, cfg.hidden}
                                                                   : Shape{op, cfg.hidden, width});
  for (const auto& s : shapes)
    if (s.N > 2147483647L || s.K > 2147483647L) ARG_FAIL("%s: N=%ld K=%ld exceed int", s.op.c_str(), s.N, s.K);

  CUDA_CHECK(cudaSetDevice(opt.device));
  const size_t l2 = static_cast<size_t>(calib::device_attr(cudaDevAttrL2CacheSize, opt.device));

  cublasHandle_t handle;
  CUBLAS_CHECK(cublasCreate(&handle));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  void* workspace = nullptr;
  CUDA_CHECK(cudaMalloc(&workspace, kWorkspaceBytes));
  CUBLAS_CHECK(cublasSetStream(handle, stream));  // resets the workspace: set it afterwards
  CUBLAS_CHECK(cublasSetWorkspace(handle, workspace, kWorkspaceBytes));

  std::string comments =
      "# servesim-grouped-gemm-bench: Y_g[m,N] = X_g[m,K]·W_g[N,K]^T for g = 1..groups in one "
      "cublasGemmGroupedBatchedEx call (one cuBLAS group per expert, same m), bf16 in/out, fp32 compute\n";
  comments += calib::device_comments(opt.device);
  int blas_v = 0;
  CUBLAS_CHECK(cublasGetVersion(handle, &blas_v));
  comments += calib::strprintf("# cublas: %d.%d.%d\n", blas_v / 10000, (blas_v / 100) % 100, blas_v % 100);
  const std::string tag_field = opt.tag.empty() ? "" : "tag=" + opt.tag + " ";
  comments += calib::strprintf("# model: %shidden=%ld experts=%ld (%s) expert_width=%ld (%s) ep=%ld tp=%ld "
                               "experts_per_gpu=%ld width_per_gpu=%ld\n",
                               tag_field.c_str(), cfg.hidden, cfg.experts, cfg.experts_key.c_str(), cfg.width,
                               cfg.width_key.c_str(), opt.ep, opt.tp, experts_per_gpu, width);
  if (opt.timing == calib::Timing::kGraph)
    comments += calib::strprintf(
        "# method: CUDA graph per (op, groups, m) of %d back-to-back grouped calls (rounded up to a multiple of "
        "the weight sets), launched %d times untimed, then once between two CUDA events per repetition "
        "(GPU-side time, no host launch gaps); time/call = elapsed/calls; median/min/max of %d repetitions after "
        "%d eager warm-up calls; 32 MiB cuBLAS workspace; random normal inputs; weight sets rotated so weight "
        "bytes exceed 2x L2\n",
        opt.iters, calib::kGraphWarmupReplays, opt.reps, opt.warmup);
  else
    comments += calib::strprintf(
        "# method: CUDA events around %d back-to-back grouped calls issued from the host (time/call = "
        "elapsed/%d; small calls show the host launch rate), median/min/max of %d repetitions after %d warm-up "
        "calls; 32 MiB cuBLAS workspace; random normal inputs; weight sets rotated so weight bytes exceed 2x "
        "L2\n",
        opt.iters, opt.iters, opt.reps, opt.warmup);
  calib::CsvWriter csv(opt.out, opt.timing, comments, "op,groups,m,N,K,dtype,median_us,min_us,max_us");
  csv.write();  // fails early when the file cannot be written

  const long max_m = *std::max_element(opt.m_list.begin(), opt.m_list.end());
  const long max_g = *std::max_element(opt.groups_list.begin(), opt.groups_list.end());
  uint64_t seed = 1;
  for (const auto& s : shapes) {
    const std::string op = opt.tag.empty() ? s.op : opt.tag + "_" + s.op;
    // One pool of expert weight matrices per op; weight set j of a call with g groups is matrices j·g … j·g+g-1.
    const size_t w_stride = round_up(static_cast<size_t>(s.N) * s.K, kAlignElems);  // elements
    const size_t w_bytes = w_stride * sizeof(__nv_bfloat16);
    auto sets_wanted = [&](long g) { return (2 * l2) / (static_cast<size_t>(g) * w_bytes) + 1; };
    size_t pool = 0;  // matrices
    for (long g : opt.groups_list) pool = std::max(pool, sets_wanted(g) * static_cast<size_t>(g));
    const size_t x_stride_max = round_up(static_cast<size_t>(max_m) * s.K, kAlignElems);
    const size_t y_stride_max = round_up(static_cast<size_t>(max_m) * s.N, kAlignElems);
    const size_t x_bytes = static_cast<size_t>(max_g) * x_stride_max * sizeof(__nv_bfloat16);
    const size_t y_bytes = static_cast<size_t>(max_g) * y_stride_max * sizeof(__nv_bfloat16);
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const size_t fixed = x_bytes + y_bytes + (64ull << 20);
    if (fixed + static_cast<size_t>(max_g) * w_bytes > free_b) {
      std::fprintf(stderr, "error: %s (N=%ld K=%ld, up to %ld groups of m=%ld) needs %zu MiB, only %zu MiB free\n",
                   op.c_str(), s.N, s.K, max_g, max_m, (fixed + static_cast<size_t>(max_g) * w_bytes) >> 20,
                   free_b >> 20);
      return 1;
    }
    const size_t fit = (free_b - fixed) / w_bytes;
    if (pool > fit) {
      std::printf("warning: %s: only %zu expert weight matrices fit in memory (wanted %zu)\n", op.c_str(), fit,
                  pool);
      pool = fit;
    }
    __nv_bfloat16* w = nullptr;
    __nv_bfloat16* x = nullptr;
    __nv_bfloat16* y = nullptr;
    CUDA_CHECK(cudaMalloc(&w, pool * w_bytes));
    for (size_t i = 0; i < pool; ++i) calib::fill_normal(w + i * w_stride, static_cast<size_t>(s.N) * s.K, seed++);
    CUDA_CHECK(cudaMalloc(&x, x_bytes));
    calib::fill_normal(x, x_bytes / sizeof(__nv_bfloat16), seed++);
    CUDA_CHECK(cudaMalloc(&y, y_bytes));
    CUDA_CHECK(cudaDeviceSynchronize());
    std::printf("%s bf16 N=%ld K=%ld: %zu expert weight matrices (%.1f MiB each)\n", op.c_str(), s.N, s.K, pool,
                w_bytes / 1048576.0);

    for (long g : opt.groups_list) {
      const int sets = static_cast<int>(std::min(sets_wanted(g), pool / static_cast<size_t>(g)));
      if (sets < static_cast<int>(sets_wanted(g)))
        std::printf("  groups=%ld: warning: only %d weight set(s) fit (wanted %zu)\n", g, sets, sets_wanted(g));
      std::printf("  groups=%ld: %d weight set(s) of %.1f MiB\n", g, sets, g * w_bytes / 1048576.0);
      PointerArrays ptr;
      CUDA_CHECK(cudaMalloc(&ptr.a, static_cast<size_t>(sets) * g * sizeof(void*)));
      CUDA_CHECK(cudaMalloc(&ptr.b, static_cast<size_t>(g) * sizeof(void*)));
      CUDA_CHECK(cudaMalloc(&ptr.c, static_cast<size_t>(g) * sizeof(void*)));
      std::vector<const void*> host_a(static_cast<size_t>(sets) * g);
      for (size_t i = 0; i < host_a.size(); ++i) host_a[i] = w + i * w_stride;
      CUDA_CHECK(cudaMemcpy(ptr.a, host_a.data(), host_a.size() * sizeof(void*), cudaMemcpyHostToDevice));
      for (long m : opt.m_list) {
        // The groups' rows lie back to back (a permuted token buffer), each block start 128-byte aligned.
        const size_t x_stride = round_up(static_cast<size_t>(m) * s.K, kAlignElems);
        const size_t y_stride = round_up(static_cast<size_t>(m) * s.N, kAlignElems);
        std::vector<const void*> host_b(g);
        std::vector<void*> host_c(g);
        for (long i = 0; i < g; ++i) {
          host_b[i] = x + i * x_stride;
          host_c[i] = y + i * y_stride;
        }
        CUDA_CHECK(cudaMemcpy(ptr.b, host_b.data(), g * sizeof(void*), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(ptr.c, host_c.data(), g * sizeof(void*), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaDeviceSynchronize());  // the pointer arrays are in place before `stream` reads them
        calib::CallTimes t;
        if (!time_one(handle, stream, static_cast<int>(g), m, s.N, s.K, sets, ptr, opt, &t)) {
          std::printf("    m=%-5ld skipped: cuBLAS does not support this grouped GEMM\n", m);
          continue;
        }
        if (opt.timing == calib::Timing::kGraph && t.used == calib::Timing::kEager) {
          std::printf("    warning: groups=%ld m=%ld: no CUDA graph (%s); timed eagerly\n", g, m, t.fallback.c_str());
          csv.add_fallback(calib::strprintf("%s bf16 groups=%ld m=%ld", op.c_str(), g, m));
        }
        const calib::Stats& st = t.stats;
        csv.add_row(calib::strprintf("%s,%ld,%ld,%ld,%ld,bf16,%.4f,%.4f,%.4f", op.c_str(), g, m, s.N, s.K,
                                     st.median_us, st.min_us, st.max_us));
        const double flops = 2.0 * g * m * s.N * s.K;
        const double bytes = 2.0 * g * (static_cast<double>(s.N) * s.K + static_cast<double>(m) * (s.N + s.K));
        std::printf("    m=%-5ld median %10.2f us  (min %.2f, max %.2f)  %7.1f TFLOP/s  %7.0f GB/s  [%s, %d calls]\n",
                    m, st.median_us, st.min_us, st.max_us, flops / (st.median_us * 1e-6) / 1e12,
                    bytes / (st.median_us * 1e-6) / 1e9, calib::timing_name(t.used), t.calls);
      }
      CUDA_CHECK(cudaFree(ptr.a));
      CUDA_CHECK(cudaFree(ptr.b));
      CUDA_CHECK(cudaFree(ptr.c));
    }
    CUDA_CHECK(cudaFree(w));
    CUDA_CHECK(cudaFree(x));
    CUDA_CHECK(cudaFree(y));
  }
  CUDA_CHECK(cudaStreamDestroy(stream));
  CUBLAS_CHECK(cublasDestroy(handle));
  CUDA_CHECK(cudaFree(workspace));
  std::printf("wrote %s\n", opt.out.c_str());
  return 0;
}
