// servesim-nccl-sweep — NCCL collective timings on the GPUs of one node, printed like nccl-tests.
//
// Usage:
//   servesim-nccl-sweep [-b 8] [-e 8G] [-f 2] [-n 20] [-w 5] [--reps 5] [-d float|bfloat16]
//       [--ops all_reduce,all_gather,reduce_scatter,sendrecv] [--ngpus N] [--csv FILE.csv]
//
// One process drives all local GPUs (ncclCommInitAll, one communicator per GPU, calls grouped with
// ncclGroupStart/End). Sizes go from -b to -e multiplying by -f. Per collective it prints one block in
// the nccl-tests stdout format (header, "# Using devices" / "#  Rank ..." lines, column headers, one
// row per size with out-of-place and in-place columns, "# Out of bounds values" / "# Avg bus bandwidth"
// trailer), so the same log parser reads both.
//
// Sizes follow nccl-tests: `size` is the total bytes of the larger buffer (all_gather: the gathered
// output, reduce_scatter: the input), `count` the per-rank element count passed to NCCL.
// algbw = size / time; busbw = algbw · factor with all_reduce 2(n−1)/n, all_gather and reduce_scatter
// (n−1)/n, sendrecv 1 (ring: every rank sends to rank+1 and receives from rank−1).
//
// Method: -w untimed warm-up calls, then --reps repetitions; in each, a CUDA event is recorded on every
// rank's stream, -n back-to-back collectives are issued, a second event is recorded; time per call =
// max over ranks of elapsed / n. The printed time is the median over repetitions.
// No correctness check is done: the #wrong columns read N/A.
//
// --csv FILE writes the out-of-place results as
//   collective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source        (GB = 1e9 bytes)
#include <nccl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.h"

#define NCCL_CHECK(expr)                                                                          \
  do {                                                                                            \
    ncclResult_t r_ = (expr);                                                                     \
    if (r_ != ncclSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: NCCL error %d (%s) in %s\n", __FILE__, __LINE__,               \
                   static_cast<int>(r_), ncclGetErrorString(r_), #expr);                          \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

namespace {

struct Options {
  uint64_t min_bytes = 8, max_bytes = 8ull << 30, factor = 2;
  int iters = 20, warmup = 5, reps = 5, ngpus = 0;
  std::string dtype = "float", csv;
  std::vector<std::string> ops = {"all_reduce", "all_gather", "reduce_scatter", "sendrecv"};
};

void usage() {
  std::fprintf(stderr,
               "usage: servesim-nccl-sweep [-b 8] [-e 8G] [-f 2] [-n 20] [-w 5] [--reps 5] [-d float|bfloat16]\n"
               "       [--ops all_reduce,all_gather,reduce_scatter,sendrecv] [--ngpus N] [--csv FILE.csv]\n");
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-b" || a == "--minbytes") o.min_bytes = calib::parse_size(calib::flag_value(argc, argv, i));
    else if (a == "-e" || a == "--maxbytes") o.max_bytes = calib::parse_size(calib::flag_value(argc, argv, i));
    else if (a == "-f" || a == "--stepfactor") o.factor = calib::parse_long(calib::flag_value(argc, argv, i), "-f");
    else if (a == "-n" || a == "--iters") o.iters = (int)calib::parse_long(calib::flag_value(argc, argv, i), "-n");
    else if (a == "-w" || a == "--warmup_iters")
      o.warmup = (int)calib::parse_long(calib::flag_value(argc, argv, i), "-w");
    else if (a == "--reps") o.reps = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--reps");
    else if (a == "-g" || a == "--ngpus") o.ngpus = (int)calib::parse_long(calib::flag_value(argc, argv, i), "--ngpus");
    else if (a == "-d" || a == "--datatype") o.dtype = calib::flag_value(argc, argv, i);
    else if (a == "--ops") o.ops = calib::split(calib::flag_value(argc, argv, i), ',');
    else if (a == "--csv") o.csv = calib::flag_value(argc, argv, i);
    else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
    else { usage(); ARG_FAIL("unknown argument '%s'", a.c_str()); }
  }
  if (o.factor < 2) ARG_FAIL("-f must be >= 2");
  if (o.min_bytes < 1 || o.max_bytes < o.min_bytes) ARG_FAIL("need 1 <= -b <= -e");
  if (o.iters < 1 || o.reps < 1 || o.warmup < 0) ARG_FAIL("-n and --reps must be >= 1");
  if (o.dtype != "float" && o.dtype != "bfloat16") ARG_FAIL("-d must be float or bfloat16");
  for (const auto& op : o.ops)
    if (op != "all_reduce" && op != "all_gather" && op != "reduce_scatter" && op != "sendrecv")
      ARG_FAIL("unknown collective '%s'", op.c_str());
  return o;
}

struct Rank {
  int dev = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  char* send = nullptr;
  char* recv = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
};

struct Sizes {
  uint64_t bytes;   // printed size: total bytes of the larger buffer
  size_t count;     // per-rank element count passed to NCCL
  double bw_factor;
  const char* redop;
};

Sizes sizes_for(const std::string& op, uint64_t req_bytes, size_t elt, int n) {
  const size_t count = req_bytes / elt;
  if (op == "all_reduce") return {count * elt, count, 2.0 * (n - 1) / n, "sum"};
  if (op == "sendrecv") return {count * elt, count, 1.0, "sum"};
  const size_t per_rank = count / n;
  const double f = static_cast<double>(n - 1) / n;
  if (op == "all_gather") return {per_rank * n * elt, per_rank, f, "none"};
  return {per_rank * n * elt, per_rank, f, "sum"};  // reduce_scatter
}

// Issues one collective on every rank (inside one NCCL group).
void issue(const std::string& op, std::vector<Rank>& ranks, size_t count, size_t elt, ncclDataType_t t,
           bool in_place) {
  const int n = static_cast<int>(ranks.size());
  NCCL_CHECK(ncclGroupStart());
  for (int r = 0; r < n; ++r) {
    Rank& k = ranks[r];
    if (op == "all_reduce") {
      NCCL_CHECK(ncclAllReduce(k.send, in_place ? k.send : k.recv, count, t, ncclSum, k.comm, k.stream));
    } else if (op == "all_gather") {
      const char* src = in_place ? k.recv + static_cast<size_t>(r) * count * elt : k.send;
      NCCL_CHECK(ncclAllGather(src, k.recv, count, t, k.comm, k.stream));
    } else if (op == "reduce_scatter") {
      char* dst = in_place ? k.send + static_cast<size_t>(r) * count * elt : k.recv;
      NCCL_CHECK(ncclReduceScatter(k.send, dst, count, t, ncclSum, k.comm, k.stream));
    } else {  // sendrecv ring
      char* dst = in_place ? k.send : k.recv;
      NCCL_CHECK(ncclSend(k.send, count, t, (r + 1) % n, k.comm, k.stream));
      NCCL_CHECK(ncclRecv(dst, count, t, (r + n - 1) % n, k.comm, k.stream));
    }
  }
  NCCL_CHECK(ncclGroupEnd());
}

double time_op(const std::string& op, std::vector<Rank>& ranks, size_t count, size_t elt, ncclDataType_t t,
               bool in_place, const Options& opt) {
  for (int i = 0; i < opt.warmup; ++i) issue(op, ranks, count, elt, t, in_place);
  for (Rank& k : ranks) {
    CUDA_CHECK(cudaSetDevice(k.dev));
    CUDA_CHECK(cudaStreamSynchronize(k.stream));
  }
  std::vector<double> reps;
  for (int rep = 0; rep < opt.reps; ++rep) {
    for (Rank& k : ranks) {
      CUDA_CHECK(cudaSetDevice(k.dev));
      CUDA_CHECK(cudaEventRecord(k.start, k.stream));
    }
    for (int i = 0; i < opt.iters; ++i) issue(op, ranks, count, elt, t, in_place);
    double worst = 0;
    for (Rank& k : ranks) {
      CUDA_CHECK(cudaSetDevice(k.dev));
      CUDA_CHECK(cudaEventRecord(k.stop, k.stream));
    }
    for (Rank& k : ranks) {
      CUDA_CHECK(cudaSetDevice(k.dev));
      CUDA_CHECK(cudaEventSynchronize(k.stop));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, k.start, k.stop));
      worst = std::max(worst, 1000.0 * ms / opt.iters);
    }
    reps.push_back(worst);
  }
  return calib::summarize(reps).median_us;
}

// nccl-tests number formats: time %7.2f / %7.1f / %7.0f by magnitude, bandwidths %6.2f.
void print_body(double us, double algbw, double busbw) {
  const char* fmt = us >= 10000.0 ? "  %7.0f" : (us >= 100.0 ? "  %7.1f" : "  %7.2f");
  std::printf(fmt, us);
  std::printf("  %6.2f  %6.2f  %5s", algbw, busbw, "N/A");
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  int avail = 0;
  CUDA_CHECK(cudaGetDeviceCount(&avail));
  const int n = opt.ngpus > 0 ? opt.ngpus : avail;
  if (n < 1 || n > avail) ARG_FAIL("--ngpus %d requested, %d GPUs visible", n, avail);

  const bool bf16 = opt.dtype == "bfloat16";
  const ncclDataType_t t = bf16 ? ncclBfloat16 : ncclFloat;
  const size_t elt = bf16 ? 2 : 4;

  // Clamp the largest size to what fits twice (send + receive buffers) in the smallest GPU.
  uint64_t max_bytes = opt.max_bytes;
  for (int d = 0; d < n; ++d) {
    CUDA_CHECK(cudaSetDevice(d));
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const uint64_t fit = (free_b > (2ull << 30) ? free_b - (2ull << 30) : 0) / 2;
    if (max_bytes > fit) {
      std::printf("# warning: device %d: maximum size lowered from %llu to %llu bytes to fit in memory\n", d,
                  static_cast<unsigned long long>(max_bytes), static_cast<unsigned long long>(fit));
      max_bytes = fit;
    }
  }
  const uint64_t buf_bytes = std::max<uint64_t>(max_bytes, elt * n);

  std::vector<Rank> ranks(n);
  std::vector<ncclComm_t> comms(n);
  std::vector<int> devs(n);
  for (int r = 0; r < n; ++r) devs[r] = r;
  NCCL_CHECK(ncclCommInitAll(comms.data(), n, devs.data()));
  for (int r = 0; r < n; ++r) {
    Rank& k = ranks[r];
    k.dev = r;
    k.comm = comms[r];
    CUDA_CHECK(cudaSetDevice(r));
    CUDA_CHECK(cudaStreamCreateWithFlags(&k.stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreate(&k.start));
    CUDA_CHECK(cudaEventCreate(&k.stop));
    CUDA_CHECK(cudaMalloc(&k.send, buf_bytes));
    CUDA_CHECK(cudaMalloc(&k.recv, buf_bytes));
    calib::fill_normal(reinterpret_cast<float*>(k.send), buf_bytes / 4, 100 + r, 1.0f, k.stream);
    calib::fill_normal(reinterpret_cast<float*>(k.recv), buf_bytes / 4, 200 + r, 1.0f, k.stream);
    CUDA_CHECK(cudaStreamSynchronize(k.stream));
  }

  int nccl_version = 0;
  NCCL_CHECK(ncclGetVersion(&nccl_version));
  const int vmaj = nccl_version / 10000, vmin = (nccl_version % 10000) / 100, vpat = nccl_version % 100;
  FILE* csv = nullptr;
  if (!opt.csv.empty()) {
    csv = calib::open_csv(opt.csv);
    std::fprintf(csv, "# servesim-nccl-sweep: %d ranks, one process, %s, out-of-place results\n", n, opt.dtype.c_str());
    calib::write_device_comments(csv, 0);
    std::fprintf(csv, "# nccl: %d.%d.%d\n", vmaj, vmin, vpat);
    std::fprintf(csv, "# method: time = median over %d repetitions of (CUDA events around %d back-to-back calls / %d, "
                 "max over ranks) after %d warm-up calls; algbw = bytes/time; busbw per nccl-tests; GB = 1e9 B\n",
                 opt.reps, opt.iters, opt.iters, opt.warmup);
    std::fprintf(csv, "collective,ranks,bytes,time_us,algbw_GBps,busbw_GBps,source\n");
  }

  for (const std::string& op : opt.ops) {
    std::printf("# servesim-nccl-sweep (nccl-tests output format) nccl-library=%d\n", nccl_version);
    std::printf("# Collective test starting: %s_perf\n", op.c_str());
    std::printf("# nThread 1 nGpus %d minBytes %llu maxBytes %llu step: %llu(factor) warmup iters: %d iters: %d "
                "agg iters: 1 validation: 0 graph: 0\n",
                n, static_cast<unsigned long long>(opt.min_bytes), static_cast<unsigned long long>(max_bytes),
                static_cast<unsigned long long>(opt.factor), opt.warmup, opt.iters);
    std::printf("# Timing: median over %d repetitions; no correctness check (#wrong = N/A)\n", opt.reps);
    std::printf("#\n# Using devices\n");
    for (int r = 0; r < n; ++r)
      std::printf("#  Rank %2d Group  0 Pid %6d on %10s device %2d [0x%02x] %s\n", r, static_cast<int>(getpid()),
                  "localhost", r, calib::device_attr(cudaDevAttrPciBusId, r), calib::device_name(r).c_str());
    std::printf("#\n");
    std::printf("# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place          \n", "",
                "", "", "", "");
    std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s %6s  %7s  %6s  %6s %6s\n", "size", "count", "type",
                "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong");
    std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s  %7s  %6s  %6s  %5s\n", "(B)", "(elements)", "", "",
                "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
    std::fflush(stdout);

    double bus_sum = 0;
    int bus_n = 0;
    for (uint64_t req = opt.min_bytes; req <= max_bytes; req *= opt.factor) {
      const Sizes s = sizes_for(op, req, elt, n);
      if (s.count == 0) continue;  // too small to give every rank one element: no row (a 0-byte row is unusable)
      std::printf("%12llu  %12zu  %8s  %6s  %6i", static_cast<unsigned long long>(s.bytes), s.count,
                  opt.dtype.c_str(), s.redop, -1);
      for (int in_place = 0; in_place < 2; ++in_place) {
        const double us = time_op(op, ranks, s.count, elt, t, in_place != 0, opt);
        const double algbw = us > 0 ? static_cast<double>(s.bytes) / (us * 1e3) : 0.0;
        const double busbw = algbw * s.bw_factor;
        print_body(us, algbw, busbw);
        bus_sum += busbw;
        ++bus_n;
        if (!in_place && csv) {
          std::fprintf(csv, "%s,%d,%llu,%.3f,%.4f,%.4f,servesim-nccl-sweep %s NCCL %d.%d.%d out-of-place\n",
                       op.c_str(), n, static_cast<unsigned long long>(s.bytes), us, algbw, busbw,
                       opt.dtype.c_str(), vmaj, vmin, vpat);
          std::fflush(csv);
        }
      }
      std::printf("\n");
      std::fflush(stdout);
      if (req > max_bytes / opt.factor) break;  // next step would overflow or pass the end
    }
    std::printf("# Out of bounds values : 0 OK\n");
    std::printf("# Avg bus bandwidth    : %g \n", bus_n ? bus_sum / bus_n : 0.0);
    std::printf("#\n# Collective test concluded: %s_perf\n\n", op.c_str());
    std::fflush(stdout);
  }

  if (csv) std::fclose(csv);
  for (Rank& k : ranks) {
    CUDA_CHECK(cudaSetDevice(k.dev));
    CUDA_CHECK(cudaStreamSynchronize(k.stream));
    NCCL_CHECK(ncclCommDestroy(k.comm));
    CUDA_CHECK(cudaFree(k.send));
    CUDA_CHECK(cudaFree(k.recv));
    CUDA_CHECK(cudaEventDestroy(k.start));
    CUDA_CHECK(cudaEventDestroy(k.stop));
    CUDA_CHECK(cudaStreamDestroy(k.stream));
  }
  return 0;
}
