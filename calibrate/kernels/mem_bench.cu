// servesim-mem-bench — copy bandwidth and kernel launch overhead of one GPU.
//
// Usage:
//   servesim-mem-bench --out FILE.csv [--min-bytes 1K] [--max-bytes 1G] [--iters 20] [--reps 15]
//       [--launch-iters 1000] [--device D]
//
// What is timed:
//   d2d         cudaMemcpyAsync device -> device of `bytes` (one buffer to another; bytes moved = bytes read
//               = bytes written, so read+write traffic is 2·bytes)
//   h2d_pinned  cudaMemcpyAsync host -> device from page-locked memory (cudaMallocHost)
//   d2h_pinned  cudaMemcpyAsync device -> host into page-locked memory
//   launch      GPU-side time per launch of an empty kernel <<<1,1>>>: CUDA events around
//               --launch-iters back-to-back launches, divided by the count (bytes = 0)
//   launch_host host wall time spent per launch call (std::chrono::steady_clock around the same
//               --launch-iters launch calls, divided by the count; excludes the final synchronisation)
// Sizes: powers of 4 from --min-bytes to --max-bytes (K/M/G = 1024-based), default 1 KiB … 1 GiB.
//
// Method (copies): after two warm-up copies, each repetition records a CUDA event, issues --iters
// back-to-back copies, records a second event; time per copy = elapsed / iters. Rows hold the
// median, min and max over --reps repetitions. Launch rows use --launch-iters in place of --iters.
// Device buffers are filled with random normal values (contents do not matter for copies).
//
// Output CSV (with "# key: value" comment lines first):
//   op,bytes,median_us,min_us,max_us          (times in µs; bytes per copy)
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.h"

namespace {

__global__ void empty_kernel() {}

struct Options {
  std::string out;
  uint64_t min_bytes = 1ull << 10, max_bytes = 1ull << 30;
  int iters = 20, reps = 15, launch_iters = 1000, device = 0;
};

void usage() {
  std::fprintf(stderr,
               "usage: servesim-mem-bench --out FILE.csv [--min-bytes 1K] [--max-bytes 1G] [--iters 20]\n"
               "       [--reps 15] [--launch-iters 1000] [--device D]\n");
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
    else if (a == "--device") o.device = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--device");
    else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
    else { usage(); ARG_FAIL("unknown argument '%s'", a.c_str()); }
  }
  if (o.out.empty()) { usage(); ARG_FAIL("--out is required"); }
  if (o.iters < 1 || o.reps < 1 || o.launch_iters < 1) ARG_FAIL("--iters, --reps, --launch-iters must be >= 1");
  if (o.min_bytes < 1 || o.max_bytes < o.min_bytes) ARG_FAIL("need 1 <= --min-bytes <= --max-bytes");
  return o;
}

// Times `iters` back-to-back calls of issue() per repetition; returns per-call µs stats.
template <typename F>
calib::Stats time_events(cudaStream_t stream, int iters, int reps, F issue) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) {
    CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < iters; ++i) issue();
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    us.push_back(1000.0 * ms / iters);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  return calib::summarize(us);
}

void write_row(FILE* f, const char* op, uint64_t bytes, const calib::Stats& s) {
  std::fprintf(f, "%s,%llu,%.4f,%.4f,%.4f\n", op, static_cast<unsigned long long>(bytes), s.median_us, s.min_us,
               s.max_us);
  std::fflush(f);
  if (bytes > 0)
    std::printf("%-11s %11llu B  median %11.2f us  %8.2f GB/s\n", op, static_cast<unsigned long long>(bytes),
                s.median_us, bytes / (s.median_us * 1e3));
  else
    std::printf("%-11s  median %8.3f us per launch (min %.3f, max %.3f)\n", op, s.median_us, s.min_us, s.max_us);
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  CUDA_CHECK(cudaSetDevice(opt.device));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  std::vector<uint64_t> sizes;
  for (uint64_t b = opt.min_bytes; b <= opt.max_bytes; b *= 4) sizes.push_back(b);
  const uint64_t top = sizes.back();

  FILE* f = calib::open_csv(opt.out);
  std::fprintf(f, "# servesim-mem-bench: cudaMemcpyAsync d2d / pinned h2d / pinned d2h, empty-kernel launch\n");
  calib::write_device_comments(f, opt.device);
  std::fprintf(f,
               "# method: CUDA events around %d back-to-back copies (time/copy = elapsed/%d), median/min/max of %d "
               "repetitions; launch: %d back-to-back empty-kernel launches per repetition (launch = GPU-side "
               "events, launch_host = host wall time per launch call)\n",
               opt.iters, opt.iters, opt.reps, opt.launch_iters);
  std::fprintf(f, "# bytes: bytes per copy (d2d reads and writes this many bytes each)\n");
  std::fprintf(f, "op,bytes,median_us,min_us,max_us\n");
  std::fflush(f);

  unsigned char *dsrc = nullptr, *ddst = nullptr, *host = nullptr;
  CUDA_CHECK(cudaMalloc(&dsrc, top));
  CUDA_CHECK(cudaMalloc(&ddst, top));
  CUDA_CHECK(cudaMallocHost(&host, top));
  calib::fill_normal(reinterpret_cast<float*>(dsrc), top / sizeof(float), 7, 1.0f, stream);
  calib::fill_normal(reinterpret_cast<float*>(ddst), top / sizeof(float), 8, 1.0f, stream);
  for (uint64_t i = 0; i < top; i += 4096) host[i] = static_cast<unsigned char>(i >> 12);  // touch pages
  CUDA_CHECK(cudaStreamSynchronize(stream));

  struct CopyKind {
    const char* op;
    void* dst;
    const void* src;
    cudaMemcpyKind kind;
  };
  const CopyKind kinds[] = {{"d2d", ddst, dsrc, cudaMemcpyDeviceToDevice},
                            {"h2d_pinned", dsrc, host, cudaMemcpyHostToDevice},
                            {"d2h_pinned", host, dsrc, cudaMemcpyDeviceToHost}};
  for (const CopyKind& k : kinds) {
    for (uint64_t bytes : sizes) {
      auto issue = [&]() { CUDA_CHECK(cudaMemcpyAsync(k.dst, k.src, bytes, k.kind, stream)); };
      issue();
      issue();
      CUDA_CHECK(cudaStreamSynchronize(stream));
      write_row(f, k.op, bytes, time_events(stream, opt.iters, opt.reps, issue));
    }
  }

  // Launch overhead: GPU-side (events) and host-side (wall clock of the launch calls) per launch.
  for (int i = 0; i < 100; ++i) empty_kernel<<<1, 1, 0, stream>>>();
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> host_us;
  auto launch = [&]() { empty_kernel<<<1, 1, 0, stream>>>(); };
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> gpu_us;
  for (int r = 0; r < opt.reps; ++r) {
    CUDA_CHECK(cudaEventRecord(start, stream));
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < opt.launch_iters; ++i) launch();
    const auto t1 = std::chrono::steady_clock::now();
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    gpu_us.push_back(1000.0 * ms / opt.launch_iters);
    host_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / opt.launch_iters);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  write_row(f, "launch", 0, calib::summarize(gpu_us));
  write_row(f, "launch_host", 0, calib::summarize(host_us));

  std::fclose(f);
  CUDA_CHECK(cudaFree(dsrc));
  CUDA_CHECK(cudaFree(ddst));
  CUDA_CHECK(cudaFreeHost(host));
  CUDA_CHECK(cudaStreamDestroy(stream));
  std::printf("wrote %s\n", opt.out.c_str());
  return 0;
}
