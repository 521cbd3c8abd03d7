// bench_common.h — helpers shared by the servesim calibration programs (CUDA translation units only).
//
//   * CUDA_CHECK(expr): every CUDA runtime call goes through it; on failure it prints file:line, the
//     expression and the error string, and exits with status 1.
//   * Stats / summarize(): median, min and max of a set of repetition times.
//   * fill_normal(): device-side, hash-based pseudo-random N(0, scale^2) fill (Box–Muller on a
//     SplitMix64-style hash of the element index), so inputs are never zeros and no curand is needed.
//   * Small command-line helpers: sizes with K/M/G suffixes (powers of 1024), integer lists.
//   * Device description lines written as "# key: value" comments at the top of every CSV.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
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

// Writes "# key: value" lines describing the device and CUDA versions (no host names, no paths).
inline void write_device_comments(FILE* f, int dev) {
  int runtime = 0, driver = 0;
  CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  CUDA_CHECK(cudaDriverGetVersion(&driver));
  size_t free_b = 0, total_b = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  std::fprintf(f, "# gpu: %s\n", device_name(dev).c_str());
  std::fprintf(f, "# compute_capability: %d.%d\n",
               device_attr(cudaDevAttrComputeCapabilityMajor, dev),
               device_attr(cudaDevAttrComputeCapabilityMinor, dev));
  std::fprintf(f, "# sms: %d\n", device_attr(cudaDevAttrMultiProcessorCount, dev));
  std::fprintf(f, "# l2_bytes: %d\n", device_attr(cudaDevAttrL2CacheSize, dev));
  std::fprintf(f, "# mem_bytes: %zu\n", total_b);
  std::fprintf(f, "# cuda_runtime: %d.%d\n", runtime / 1000, (runtime % 1000) / 10);
  std::fprintf(f, "# cuda_driver_api: %d.%d\n", driver / 1000, (driver % 1000) / 10);
}

inline FILE* open_csv(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "error: cannot open %s for writing: %s\n", path.c_str(), std::strerror(errno));
    std::exit(1);
  }
  return f;
}

}  // namespace calib
