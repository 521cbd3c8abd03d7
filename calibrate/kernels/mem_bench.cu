// servesim-mem-bench — copy bandwidth and kernel launch overhead of one GPU.
//
// Usage:
//   servesim-mem-bench --out FILE.csv [--min-bytes 1K] [--max-bytes 1G] [--iters 20] [--reps 15]
//       [--launch-iters 1000] [--timing graph|eager] [--device D]
//
// What is timed:
//   d2d         cudaMemcpyAsync device -> device of `bytes` (one buffer to another; bytes moved = bytes read
//               = bytes written, so read+write traffic is 2·bytes). The copies rotate over buffer pairs so
//               that one round of the rotation touches more than 2× the L2 size (reads plus writes), at most
//               1024 pairs: only copies smaller than L2/1023 (16 KiB and less on GPUs with less than 64 MiB
//               of L2, such as H100 and H200) touch less; their time is the fixed cost of a copy.
//   h2d_pinned  cudaMemcpyAsync host -> device from page-locked memory (cudaMallocHost)
//   d2h_pinned  cudaMemcpyAsync device -> host into page-locked memory
//   launch      GPU-side cost per kernel of an empty kernel <<<1,1>>> (bytes = 0): with --timing graph,
//               --launch-iters launches are captured into a CUDA graph and one launch of the graph is timed
//               with CUDA events, divided by the count: what one more kernel costs a CUDA-graph step.
//               With --timing eager the launches are issued from the host between the events, so the row
//               shows the host launch rate instead.
//   launch_host host wall time spent per launch call (std::chrono::steady_clock around --launch-iters
//               launch calls issued from the host, divided by the count; excludes the final
//               synchronisation)
// Sizes: powers of 4 from --min-bytes to --max-bytes (K/M/G = 1024-based), default 1 KiB … 1 GiB.
//
// Method: warm-up calls first (2 per copy size, 100 launches), then (see calib::time_calls in
// common/bench_common.h):
//   --timing graph (default): --iters back-to-back copies (d2d: rounded up to a multiple of the buffer
//       pairs, so the rotation runs on across launches) or --launch-iters launches are captured into one
//       CUDA graph; after 2 untimed launches, each repetition times one launch of the graph between two
//       CUDA events. If a graph cannot be captured, the warning names the reason, the row is timed eagerly
//       and the "# timing:" comment line lists it.
//   --timing eager: each repetition records a CUDA event, issues the calls from the host, records a
//       second event.
// Time per call = elapsed / calls; rows hold the median, min and max over --reps repetitions. Device
// buffers are filled with random normal values (contents do not matter for copies).
//
// Output CSV (with "# key: value" comment lines first, "# timing: ..." last):
//   op,bytes,median_us,min_us,max_us          (times in µs; bytes per copy)
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.h"

namespace {

__global__ void empty_kernel() {}

constexpr uint64_t kMaxD2dPairs = 1024;
constexpr int kCopyWarmup = 2, kLaunchWarmup = 100;

struct Options {
  std::string out;
  uint64_t min_bytes = 1ull << 10, max_bytes = 1ull << 30;
  int iters = 20, reps = 15, launch_iters = 1000, device = 0;
  calib::Timing timing = calib::Timing::kGraph;
};

void usage() {
  std::fprintf(stderr,
               "usage: servesim-mem-bench --out FILE.csv [--min-bytes 1K] [--max-bytes 1G] [--iters 20]\n"
               "       [--reps 15] [--launch-iters 1000] [--timing graph|eager] [--device D]\n");
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out") o.out = calib::flag_value(argc, argv, i);
    else if (a == "--min-bytes") o.min_bytes = calib::parse_size(calib::flag_value(argc, argv, i));
    else if (a == "--max-bytes") o.max_bytes = calib::parse_size(calib::flag_value(argc, argv, i));
    else if (a == "--iters") o.iters = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--iters");
    else if (a == "--reps") o.reps = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--reps");
    else if (a == "--launch-iters")
      o.launch_iters = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--launch-iters");
    else if (a == "--timing") o.timing = calib::parse_timing(calib::flag_value(argc, argv, i));
    else if (a == "--device") o.device = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--device");
    else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
    else { usage(); ARG_FAIL("unknown argument '%s'", a.c_str()); }
  }
  if (o.out.empty()) { usage(); ARG_FAIL("--out is required"); }
  if (o.iters < 1 || o.reps < 1 || o.launch_iters < 1) ARG_FAIL("--iters, --reps, --launch-iters must be >= 1");
  if (o.min_bytes < 1 || o.max_bytes < o.min_bytes) ARG_FAIL("need 1 <= --min-bytes <= --max-bytes");
  return o;
}

// Distance between the buffers of the d2d rotation (256-byte aligned, as cudaMalloc's).
uint64_t d2d_stride(uint64_t bytes) { return (bytes + 255) / 256 * 256; }

// Buffer pairs the d2d copies of `bytes` rotate over: pairs · bytes > L2, so one round reads and writes more
// than 2× L2; at most kMaxD2dPairs.
uint64_t d2d_pairs(uint64_t bytes, uint64_t l2) { return std::min<uint64_t>(kMaxD2dPairs, l2 / bytes + 1); }

// Writes one row and prints it; records an eager fallback when graph timing was asked for.
void add_row(calib::CsvWriter& csv, const Options& opt, const char* op, uint64_t bytes, const calib::CallTimes& t) {
  const std::string name = bytes > 0 ? calib::strprintf("%s %llu", op, static_cast<unsigned long long>(bytes)) : op;
  if (opt.timing == calib::Timing::kGraph && t.used == calib::Timing::kEager) {
    std::printf("warning: %s: no CUDA graph (%s); timed eagerly\n", name.c_str(), t.fallback.c_str());
    csv.add_fallback(name);
  }
  const calib::Stats& s = t.stats;
  csv.add_row(calib::strprintf("%s,%llu,%.4f,%.4f,%.4f", op, static_cast<unsigned long long>(bytes), s.median_us,
                               s.min_us, s.max_us));
  if (bytes > 0)
    std::printf("%-11s %11llu B  median %11.2f us  %8.2f GB/s  [%s, %d calls]\n", op,
                static_cast<unsigned long long>(bytes), s.median_us, bytes / (s.median_us * 1e3),
                calib::timing_name(t.used), t.calls);
  else
    std::printf("%-11s  median %8.3f us per launch (min %.3f, max %.3f)  [%s]\n", op, s.median_us, s.min_us,
                s.max_us, calib::timing_name(t.used));
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  CUDA_CHECK(cudaSetDevice(opt.device));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const uint64_t l2 = static_cast<uint64_t>(calib::device_attr(cudaDevAttrL2CacheSize, opt.device));

  std::vector<uint64_t> sizes;
  for (uint64_t b = opt.min_bytes; b <= opt.max_bytes; b *= 4) sizes.push_back(b);
  const uint64_t top = sizes.back();
  uint64_t arena = top;  // bytes of each device buffer: the largest copy, or the largest d2d rotation
  for (uint64_t b : sizes) arena = std::max(arena, d2d_pairs(b, l2) * d2d_stride(b));

  std::string comments = "# servesim-mem-bench: cudaMemcpyAsync d2d / pinned h2d / pinned d2h, empty-kernel launch\n";
  comments += calib::device_comments(opt.device);
  if (opt.timing == calib::Timing::kGraph)
    comments += calib::strprintf(
        "# method: CUDA graph of %d back-to-back copies (d2d: rounded up to a multiple of the buffer pairs) per "
        "size, launched %d times untimed, then once between two CUDA events per repetition; time/copy = "
        "elapsed/copies; median/min/max of %d repetitions; launch: graph of %d empty-kernel launches, time per "
        "kernel = elapsed/%d (GPU-side cost per kernel); launch_host: host wall time per launch call, "
        "%d eager launch calls per repetition\n",
        opt.iters, calib::kGraphWarmupReplays, opt.reps, opt.launch_iters, opt.launch_iters, opt.launch_iters);
  else
    comments += calib::strprintf(
        "# method: CUDA events around %d back-to-back copies issued from the host (time/copy = elapsed/%d), "
        "median/min/max of %d repetitions; launch: events around %d back-to-back empty-kernel launches issued "
        "from the host (shows the host launch rate); launch_host: host wall time per launch call\n",
        opt.iters, opt.iters, opt.reps, opt.launch_iters);
  comments += calib::strprintf(
      "# d2d: copies rotate over buffer pairs so that one round reads and writes more than 2x L2 (at most %llu "
      "pairs: copies smaller than L2/%llu touch less)\n",
      static_cast<unsigned long long>(kMaxD2dPairs), static_cast<unsigned long long>(kMaxD2dPairs - 1));
  comments += "# bytes: bytes per copy (d2d reads and writes this many bytes each)\n";
  calib::CsvWriter csv(opt.out, opt.timing, comments, "op,bytes,median_us,min_us,max_us");
  csv.write();  // fails early when the file cannot be written

  unsigned char *dsrc = nullptr, *ddst = nullptr, *host = nullptr;
  CUDA_CHECK(cudaMalloc(&dsrc, arena));
  CUDA_CHECK(cudaMalloc(&ddst, arena));
  CUDA_CHECK(cudaMallocHost(&host, top));
  calib::fill_normal(reinterpret_cast<float*>(dsrc), arena / sizeof(float), 7, 1.0f, stream);
  calib::fill_normal(reinterpret_cast<float*>(ddst), arena / sizeof(float), 8, 1.0f, stream);
  for (uint64_t i = 0; i < top; i += 4096) host[i] = static_cast<unsigned char>(i >> 12);  // touch pages
  CUDA_CHECK(cudaStreamSynchronize(stream));

  struct CopyKind {
    const char* op;
    unsigned char* dst;
    const unsigned char* src;
    cudaMemcpyKind kind;
    bool rotate;  // step through buffer pairs (d2d only: the host side is not cached by the GPU's L2)
  };
  const CopyKind kinds[] = {{"d2d", ddst, dsrc, cudaMemcpyDeviceToDevice, true},
                            {"h2d_pinned", dsrc, host, cudaMemcpyHostToDevice, false},
                            {"d2h_pinned", host, dsrc, cudaMemcpyDeviceToHost, false}};
  for (const CopyKind& k : kinds) {
    for (uint64_t bytes : sizes) {
      const uint64_t pairs = k.rotate ? d2d_pairs(bytes, l2) : 1;
      const uint64_t stride = d2d_stride(bytes);
      auto issue = [&](int slot) {
        const uint64_t off = static_cast<uint64_t>(slot) * stride;
        const cudaError_t err = cudaMemcpyAsync(k.dst + off, k.src + off, bytes, k.kind, stream);
        if (err != cudaSuccess) std::fprintf(stderr, "cudaMemcpyAsync: CUDA error %s\n", cudaGetErrorString(err));
        return err == cudaSuccess;
      };
      add_row(csv, opt, k.op, bytes,
              calib::time_calls(stream, opt.timing, opt.iters, opt.reps, kCopyWarmup, static_cast<int>(pairs), issue));
    }
  }

  // launch: GPU-side cost per kernel (graph) or host-issued launch rate (eager).
  auto launch = [&](int) {
    empty_kernel<<<1, 1, 0, stream>>>();
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) std::fprintf(stderr, "empty_kernel launch: CUDA error %s\n", cudaGetErrorString(err));
    return err == cudaSuccess;
  };
  add_row(csv, opt, "launch", 0,
          calib::time_calls(stream, opt.timing, opt.launch_iters, opt.reps, kLaunchWarmup, 1, launch));

  // launch_host: host wall time of --launch-iters launch calls, without the synchronisation that follows.
  std::vector<double> host_us;
  for (int r = 0; r < opt.reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < opt.launch_iters; ++i) empty_kernel<<<1, 1, 0, stream>>>();
    const auto t1 = std::chrono::steady_clock::now();
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaStreamSynchronize(stream));
    host_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / opt.launch_iters);
  }
  const calib::Stats hs = calib::summarize(host_us);
  csv.add_row(calib::strprintf("launch_host,0,%.4f,%.4f,%.4f", hs.median_us, hs.min_us, hs.max_us));
  std::printf("%-11s  median %8.3f us per launch call (min %.3f, max %.3f)\n", "launch_host", hs.median_us,
              hs.min_us, hs.max_us);

  CUDA_CHECK(cudaFree(dsrc));
  CUDA_CHECK(cudaFree(ddst));
  CUDA_CHECK(cudaFreeHost(host));
  CUDA_CHECK(cudaStreamDestroy(stream));
  std::printf("wrote %s\n", opt.out.c_str());
  return 0;
}
