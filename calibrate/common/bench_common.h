// bench_common.h — helpers shared by the servesim calibration programs (CUDA translation units only).
//
//   * CUDA_CHECK(expr): every CUDA runtime call goes through it; on failure it prints file:line, the
//     expression and the error string, and exits with status 1.
//   * Stats / summarize(): median, min and max of a set of repetition times.
//   * fill_normal(): device-side, hash-based pseudo-random N(0, scale^2) fill (Box–Muller on a
//     SplitMix64-style hash of the element index), so inputs are never zeros and no curand is needed.
//   * Small command-line helpers: sizes with K/M/G suffixes (powers of 1024), integer lists.
//   * Timing of back-to-back calls, replayed from a CUDA graph or issued eagerly (Timing, time_calls()).
//   * Device description lines written as "# key: value" comments at the top of every CSV, and CsvWriter,
//     which keeps an output CSV complete on disk after every row.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define CUDA_CHECK(expr)                                                                          \
  do {                                                                                            \
    cudaError_t err_ = (expr);                                                                    \
    if (err_ != cudaSuccess) {                                                                    \
      std::fprintf(stderr, "%s:%d: CUDA error %d (%s) in %s\n", __FILE__, __LINE__,               \
                   static_cast<int>(err_), cudaGetErrorString(err_), #expr);                      \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

// Prints a usage/argument error and exits with status 2.
#define ARG_FAIL(...)                                                                             \
  do {                                                                                            \
    std::fprintf(stderr, "error: " __VA_ARGS__);                                                  \
    std::fprintf(stderr, "\n");                                                                   \
    std::exit(2);                                                                                 \
  } while (0)

namespace calib {

struct Stats {
  double median_us = 0, min_us = 0, max_us = 0;
};

inline Stats summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median_us = (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min_us = v.front();
  s.max_us = v.back();
  return s;
}

// ---- random inputs -------------------------------------------------------------------------------

__host__ __device__ inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T>
__global__ void fill_normal_kernel(T* p, size_t n, uint64_t seed, float scale) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint64_t h = mix64(seed ^ mix64(i));
    // Two 24-bit uniforms in (0, 1]; Box–Muller gives one standard normal value.
    const float u1 = (static_cast<float>((h >> 40) & 0xFFFFFF) + 1.0f) * (1.0f / 16777216.0f);
    const float u2 = static_cast<float>((h >> 8) & 0xFFFFFF) * (1.0f / 16777216.0f);
    const float z = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    p[i] = T(z * scale);
  }
}

// Fills n elements of device memory with N(0, scale^2) values (asynchronously on `stream`).
template <typename T>
void fill_normal(T* p, size_t n, uint64_t seed, float scale = 1.0f, cudaStream_t stream = 0) {
  if (n == 0) return;
  const int threads = 256;
  const size_t want = (n + threads - 1) / threads;
  const int blocks = static_cast<int>(std::min<size_t>(want, 65535));
  fill_normal_kernel<T><<<blocks, threads, 0, stream>>>(p, n, seed, scale);
  CUDA_CHECK(cudaGetLastError());
}

// ---- command line --------------------------------------------------------------------------------

// "8", "1K", "64M", "8G" (binary multiples) -> bytes.
inline uint64_t parse_size(const std::string& s) {
  if (s.empty()) ARG_FAIL("empty size");
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  uint64_t mult = 1;
  if (end && *end) {
    switch (*end) {
      case 'k': case 'K': mult = 1ull << 10; break;
      case 'm': case 'M': mult = 1ull << 20; break;
      case 'g': case 'G': mult = 1ull << 30; break;
      case 't': case 'T': mult = 1ull << 40; break;
      default: ARG_FAIL("bad size '%s'", s.c_str());
    }
    if (end[1] != '\0' && !((end[1] == 'B' || end[1] == 'b') && end[2] == '\0'))
      ARG_FAIL("bad size '%s'", s.c_str());
  }
  if (!(v >= 0)) ARG_FAIL("bad size '%s'", s.c_str());
  return static_cast<uint64_t>(v * static_cast<double>(mult) + 0.5);
}

inline long parse_long(const std::string& s, const char* what) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || (end && *end)) ARG_FAIL("bad integer for %s: '%s'", what, s.c_str());
  return v;
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t pos = s.find(sep, start);
    const std::string item = s.substr(start, pos == std::string::npos ? std::string::npos : pos - start);
    if (!item.empty()) out.push_back(item);
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

inline std::vector<long> parse_long_list(const std::string& s, const char* what) {
  std::vector<long> out;
  for (const auto& item : split(s, ',')) out.push_back(parse_long(item, what));
  if (out.empty()) ARG_FAIL("empty list for %s", what);
  return out;
}

// Returns argv[i+1] and advances i, or fails when the flag has no value.
inline std::string flag_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) ARG_FAIL("%s needs a value", argv[i]);
  return argv[++i];
}

// ---- device description --------------------------------------------------------------------------

inline int device_attr(cudaDeviceAttr attr, int dev) {
  int v = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&v, attr, dev));
  return v;
}

inline std::string device_name(int dev) {
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  return prop.name;
}

// printf into a std::string.
__attribute__((format(printf, 1, 2))) inline std::string strprintf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string s(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(&s[0], s.size() + 1, fmt, ap2);
  va_end(ap2);
  return s;
}

// "# key: value" lines describing the device and CUDA versions (no host names, no paths).
inline std::string device_comments(int dev) {
  int runtime = 0, driver = 0;
  CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  CUDA_CHECK(cudaDriverGetVersion(&driver));
  size_t free_b = 0, total_b = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  std::string s;
  s += "# gpu: " + device_name(dev) + "\n";
  s += strprintf("# compute_capability: %d.%d\n", device_attr(cudaDevAttrComputeCapabilityMajor, dev),
                 device_attr(cudaDevAttrComputeCapabilityMinor, dev));
  s += strprintf("# sms: %d\n", device_attr(cudaDevAttrMultiProcessorCount, dev));
  s += strprintf("# l2_bytes: %d\n", device_attr(cudaDevAttrL2CacheSize, dev));
  s += strprintf("# mem_bytes: %zu\n", total_b);
  s += strprintf("# cuda_runtime: %d.%d\n", runtime / 1000, (runtime % 1000) / 10);
  s += strprintf("# cuda_driver_api: %d.%d\n", driver / 1000, (driver % 1000) / 10);
  return s;
}

// Writes device_comments() to f (servesim-nccl-sweep, which writes its CSV directly).
inline void write_device_comments(FILE* f, int dev) { std::fputs(device_comments(dev).c_str(), f); }

inline FILE* open_csv(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "error: cannot open %s for writing: %s\n", path.c_str(), std::strerror(errno));
    std::exit(1);
  }
  return f;
}

// ---- timing of back-to-back calls ----------------------------------------------------------------

// How back-to-back calls are timed.
//   kGraph: the calls are captured once into a CUDA graph; each repetition times one launch of the graph
//           between two CUDA events. The GPU runs the calls back to back without waiting for the host, so
//           the result is the GPU-side time per call, as in an engine that runs its decode steps as CUDA
//           graphs (vLLM, SGLang, TensorRT-LLM).
//   kEager: each repetition records an event, issues the calls one by one from the host, records another
//           event. Wherever a call needs less GPU time than the host needs to issue it, the GPU waits for
//           the host and the result is the host's launch rate (several µs per call, with its jitter).
enum class Timing { kGraph, kEager };

inline const char* timing_name(Timing t) { return t == Timing::kGraph ? "graph" : "eager"; }

inline Timing parse_timing(const std::string& s) {
  if (s == "graph") return Timing::kGraph;
  if (s == "eager") return Timing::kEager;
  ARG_FAIL("--timing must be graph or eager, not '%s'", s.c_str());
}

// Untimed launches of a freshly instantiated graph before its timed launches.
constexpr int kGraphWarmupReplays = 2;

// Captures issue(0) … issue(calls - 1) on `stream` into a CUDA graph (global capture mode) and instantiates
// it into *exec. issue(i) enqueues one call and returns false, after printing why, when the call failed.
// Returns false, with the reason in *why, when a call, the capture or the instantiation failed; the stream
// is then out of capture mode and the (non-sticky) capture error is cleared, so eager calls can follow.
template <typename Issue>
bool capture_graph(cudaStream_t stream, int calls, Issue&& issue, cudaGraphExec_t* exec, std::string* why) {
  cudaError_t err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal);
  if (err != cudaSuccess) {
    *why = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(err);
    (void)cudaGetLastError();  // reported through *why; clear it so that the eager fallback starts clean
    return false;
  }
  bool issued = true;
  for (int i = 0; i < calls && issued; ++i) issued = issue(i);
  cudaGraph_t graph = nullptr;
  err = cudaStreamEndCapture(stream, &graph);  // also after a failed call: it ends capture mode
  bool ok = false;
  if (!issued) *why = "a call failed during capture";
  else if (err != cudaSuccess) *why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(err);
  else if ((err = cudaGraphInstantiateWithFlags(exec, graph, 0)) != cudaSuccess)
    *why = std::string("cudaGraphInstantiateWithFlags: ") + cudaGetErrorString(err);
  else ok = true;
  if (graph) CUDA_CHECK(cudaGraphDestroy(graph));  // the executable graph keeps what it needs
  if (!ok) (void)cudaGetLastError();              // reported through *why; clear it (see above)
  return ok;
}

// Result of time_calls().
struct CallTimes {
  Stats stats;                   // µs per call over the repetitions
  Timing used = Timing::kEager;  // kEager also when a graph was asked for and could not be captured
  int calls = 0;                 // calls per timed repetition
  std::string fallback;          // why the graph could not be captured (empty otherwise)
};

// Times back-to-back calls issue(slot) on `stream`, where slot = call number % period selects the
// rotating buffer set the call uses (period = 1: no rotation); issue returns false, after printing why,
// when the call failed. First `warmup` calls are issued eagerly and untimed (in graph mode too, so that
// one-time work of a first call, such as loading kernels, happens before the capture). Then:
//   eager: each of `reps` repetitions times `iters` calls; the rotation runs on across repetitions.
//   graph: one graph holds `iters` calls rounded up to a multiple of `period` (so that the rotation runs on
//          across launches), is launched kGraphWarmupReplays times untimed, then once per repetition. If it
//          cannot be captured, the calls are timed eagerly and CallTimes::fallback says why.
// Time per call = elapsed / calls per repetition.
template <typename Issue>
CallTimes time_calls(cudaStream_t stream, Timing timing, int iters, int reps, int warmup, int period, Issue&& issue) {
  CallTimes out;
  long next = 0;  // eager call number
  auto issue_eager = [&]() {
    if (!issue(static_cast<int>(next++ % period))) {
      std::fprintf(stderr, "error: a timed call failed\n");
      std::exit(1);
    }
  };
  for (int i = 0; i < warmup; ++i) issue_eager();
  CUDA_CHECK(cudaStreamSynchronize(stream));

  cudaGraphExec_t exec = nullptr;
  if (timing == Timing::kGraph) {
    const int calls = (iters + period - 1) / period * period;
    if (capture_graph(stream, calls, [&](int i) { return issue(i % period); }, &exec, &out.fallback)) {
      out.used = Timing::kGraph;
      out.calls = calls;
      for (int i = 0; i < kGraphWarmupReplays; ++i) CUDA_CHECK(cudaGraphLaunch(exec, stream));
      CUDA_CHECK(cudaStreamSynchronize(stream));
    }
  }
  if (out.used == Timing::kEager) out.calls = iters;

  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> per_call_us;
  for (int r = 0; r < reps; ++r) {
    CUDA_CHECK(cudaEventRecord(start, stream));
    if (out.used == Timing::kGraph) {
      CUDA_CHECK(cudaGraphLaunch(exec, stream));
    } else {
      for (int i = 0; i < iters; ++i) issue_eager();
    }
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    per_call_us.push_back(1000.0 * ms / out.calls);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  if (exec) CUDA_CHECK(cudaGraphExecDestroy(exec));
  out.stats = summarize(per_call_us);
  return out;
}

// ---- output CSV ----------------------------------------------------------------------------------

// An output CSV held in memory and rewritten whole after every row: the file on disk is always complete
// (an interrupted run keeps its rows), and its comment header can state what is only known while
// measuring, namely the rows that were asked to be graph-timed but were timed eagerly because their graph
// could not be captured. The "# timing:" line is written just before the column header:
//   # timing: graph
//   # timing: graph; eager fallback (graph capture failed) for 2 row(s): qkv bf16 M=1, qkv bf16 M=2
class CsvWriter {
 public:
  CsvWriter(std::string path, Timing timing, std::string comments, std::string header)
      : path_(std::move(path)), timing_(timing), comments_(std::move(comments)), header_(std::move(header)) {}

  void add_row(const std::string& row) {
    rows_ += row + "\n";
    write();
  }

  // Records that `row_name` was timed eagerly although graph timing was asked for.
  void add_fallback(const std::string& row_name) { fallbacks_.push_back(row_name); }

  void write() const {
    FILE* f = std::fopen(path_.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "error: cannot open %s for writing: %s\n", path_.c_str(), std::strerror(errno));
      std::exit(1);
    }
    std::string timing = std::string("# timing: ") + timing_name(timing_);
    if (!fallbacks_.empty()) {
      timing += strprintf("; eager fallback (graph capture failed) for %zu row(s): ", fallbacks_.size());
      for (size_t i = 0; i < fallbacks_.size(); ++i) timing += (i ? ", " : "") + fallbacks_[i];
    }
    const std::string text = comments_ + timing + "\n" + header_ + "\n" + rows_;
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok) {
      std::fprintf(stderr, "error: cannot write %s: %s\n", path_.c_str(), std::strerror(errno));
      std::exit(1);
    }
  }

 private:
  std::string path_;
  Timing timing_;
  std::string comments_;  // "# key: value" lines, each ending in a newline
  std::string header_;
  std::string rows_;
  std::vector<std::string> fallbacks_;
};

}  // namespace calib
