#!/usr/bin/env bash
# One-shot calibration check for a freshly provisioned GPU machine: run it once, from any directory.
#
# usage: OUT=DIR calibrate/device_check.sh        (DIR: an empty writable directory; default ./device-out)
#
# Needs an NVIDIA GPU with nvidia-smi, the CUDA toolkit (nvcc, cuBLASLt) and python3. Optional: cmake (else
# the programs are compiled with nvcc directly), PyTorch with CUDA (attention rows), NCCL and a second GPU
# (collectives), CUDA 12.5 or newer (grouped GEMMs of MoE experts). No network access. Takes about 5 minutes
# on one H100 or H200; every step has a time limit and prints its elapsed time.
#
# Steps:
#   1. print nvidia-smi and the tool versions;
#   2. build the calibration programs from scratch in a temporary directory: CMake for this GPU's
#      architecture, or, without cmake or if the CMake build fails, nvcc -O3 -std=c++17 -arch=native
#      (-lcublasLt -lcublas; the NCCL sweep only where nccl.h and libnccl are found; the grouped GEMM
#      bench only with CUDA 12.5 or newer);
#   3. measure the profile directory $OUT/<gpu> with CUDA graph timing (run_all.sh --timing graph), <gpu>
#      being nvidia-smi's name in lowercase without "NVIDIA ", spaces turned into '-' (h200,
#      h100-80gb-hbm3), for the shape sets of the shipped profile calibrate/data/h200:
#        Llama-3-8B at TP 1, tag l8b: GEMMs qkv, o, gateup, down, lmhead; attention hq 32 / hkv 8
#        one TP-8 shard of Llama-3-70B, tag l70b_tp8 (run_all.sh --append): GEMMs qkv, o, gateup, down, in
#        bf16 and (--fp8, on sm_89 or newer) fp8 e4m3; attention hq 8 / hkv 1
#      GEMM op names are spelt like the shipped profile (run_all.sh --reference-op-names: gate_up ->
#      gateup, lm_head -> lmhead). Memory and launch rows are measured once (by the first run);
#      collectives need two GPUs and NCCL and are skipped otherwise. Attention: prefill without prior
#      context (ctx_len 0, as in the shipped profile) and the default decode sweep. Then (optional) the
#      grouped expert GEMMs of two MoE layers, bf16, into $OUT/<gpu>/grouped_gemm.csv
#      (servesim-grouped-gemm-bench, m = 1, 4, 16, 64, 256 rows per expert, about 10 s of GPU time each on
#      an H200, estimated, 60 s limit each):
#        Mixtral-8x7B experts at TP 1, tag mixtral_tp1: 8 experts, width 14336, hidden 4096; groups 1,2,4,8
#        DeepSeek-V3 experts of one EP-8 rank, tag dsv3_ep8: 32 of 256 routed experts, width 2048, hidden
#        7168; groups 1,2,4,8,16,32
#      (the simulator does not read grouped_gemm.csv yet);
#   4. time the same GEMMs eagerly (host-issued calls, fewer M values) into $OUT/<gpu>-eager/gemm.csv
#      and, time permitting, decode attention into $OUT/<gpu>-eager/attention.csv, for comparison;
#   5. print graph against eager medians for the small calls, where the host launch rate bounds eager
#      timings.
#
# Output: $OUT/<gpu>/ (a profile directory, schema in calibrate/README.md), $OUT/<gpu>-eager/ (same CSV
# format, not a profile) and $OUT/device_check.log (everything printed). Exit status 0 when the profile
# directory holds GEMM rows of both models and a profile.json, else 1; skipped or failed optional steps
# (attention, collectives, the grouped GEMMs, the eager comparison) are reported but do not change it.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
OUT="${OUT:-./device-out}"
mkdir -p "$OUT" || { echo "device_check.sh: cannot create $OUT" >&2; exit 1; }
OUT="$(cd "$OUT" && pwd)"
log="$OUT/device_check.log"

started=$SECONDS
results=()  # one line per step: name, status, seconds

# step NAME LIMIT_S COMMAND...: runs COMMAND under `timeout`, prints and records its status and elapsed time.
step() {
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS rc=0
  echo
  echo "==== [t=$((SECONDS - started))s] $name (limit ${limit}s): $(printf '%q ' "$@")"
  timeout -k 10 "$limit" "$@" || rc=$?
  local status="ok"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status="TIMED OUT"
  elif [ "$rc" -ne 0 ]; then status="FAILED (exit status $rc)"; fi
  echo "==== $name: $status after $((SECONDS - t0))s"
  results+=("$(printf '%-34s %-26s %4ss' "$name" "$status" "$((SECONDS - t0))")")
  return "$rc"
}

# left N: seconds from now until N seconds after the start (0 when past it).
left() { local l=$(($1 - (SECONDS - started))); [ "$l" -gt 0 ] && echo "$l" || echo 0; }

main() {
# ---- 1. machine ----
echo "==== servesim device check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if ! command -v nvidia-smi >/dev/null; then
  echo "device_check.sh: nvidia-smi not found: no NVIDIA GPU here"
  return 1
fi
nvidia-smi
if ! command -v nvcc >/dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [ -x "$d/nvcc" ]; then PATH="$d:$PATH"; break; fi
  done
fi
export PATH
echo "nvcc:    $(command -v nvcc >/dev/null && nvcc --version | tail -n 1 || echo 'not found')"
echo "cmake:   $(command -v cmake >/dev/null && cmake --version | head -n 1 || echo 'not found')"
echo "python3: $(python3 --version 2>&1)"
torch_probe='import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
echo "torch:   $(cd / && python3 -c "$torch_probe" 2>&1 | tail -n 1)"
echo "CUDA_VISIBLE_DEVICES: ${CUDA_VISIBLE_DEVICES-<unset>}"

gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
slug="$(printf '%s' "$gpu_name" | sed 's/NVIDIA //g' | tr '[:upper:]' '[:lower:]' | tr ' ' '-' | tr -c 'a-z0-9.-' '-')"
[ -n "$slug" ] || slug="gpu"
cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '. ')"
[[ "$cc" =~ ^[0-9]+$ ]] || cc=""
prof="$OUT/$slug"
eager="$OUT/$slug-eager"
echo "GPU: $gpu_name -> profile directory $prof (compute capability ${cc:-unknown})"

# ---- 2. build ----
build="$(mktemp -d -t servesim-calib.XXXXXX)"
trap 'rm -rf "$build"' EXIT
bin=""
if ! command -v nvcc >/dev/null; then
  echo "device_check.sh: nvcc not found (looked in PATH and the usual CUDA install directories)"
  return 1
fi
if command -v cmake >/dev/null; then
  arch_args=()
  [ -n "$cc" ] && arch_args=("-DSERVESIM_CALIBRATE_CUDA_ARCHITECTURES=$cc")
  if step "cmake configure" 120 cmake -S "$here" -B "$build/cmake" -DCMAKE_BUILD_TYPE=Release \
       -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" ${arch_args[@]+"${arch_args[@]}"} &&
     step "cmake build" 240 cmake --build "$build/cmake" -j "$(nproc 2>/dev/null || echo 4)"; then
    bin="$build/cmake"
  fi
fi
if [ -z "$bin" ] || [ ! -x "$bin/servesim-gemm-bench" ] || [ ! -x "$bin/servesim-mem-bench" ]; then
  echo "== building with nvcc directly"
  bin="$build/nvcc"
  mkdir -p "$bin"
  # -arch=native needs a recent nvcc that sees the GPU (else it fails or warns and picks a default
  # architecture); then the compute capability from nvidia-smi is used.
  arch="-arch=native"
  printf '__global__ void k() {}\nint main() { return 0; }\n' > "$build/probe.cu"
  if ! probe="$(nvcc -arch=native "$build/probe.cu" -o "$build/probe" 2>&1)" ||
     [[ "$probe" == *"Cannot find valid GPU"* ]]; then
    [ -n "$cc" ] && arch="-arch=sm_$cc"
  fi
  nv=(nvcc -O3 -std=c++17 "$arch" -I"$here/common")
  step "nvcc servesim-gemm-bench" 180 "${nv[@]}" "$here/kernels/gemm_bench.cu" -o "$bin/servesim-gemm-bench" \
    -lcublasLt -lcublas
  step "nvcc servesim-mem-bench" 120 "${nv[@]}" "$here/kernels/mem_bench.cu" -o "$bin/servesim-mem-bench"
  step "nvcc servesim-grouped-gemm-bench" 180 "${nv[@]}" "$here/kernels/grouped_gemm_bench.cu" \
    -o "$bin/servesim-grouped-gemm-bench" -lcublas -lcublasLt ||
    echo "== grouped GEMM bench not built (optional; needs CUDA 12.5 or newer)"
  nccl_inc="" nccl_lib=""
  for d in ${NCCL_ROOT:+"$NCCL_ROOT"} "$(dirname "$(dirname "$(command -v nvcc)")")" /usr /usr/local; do
    [ -z "$nccl_inc" ] && [ -f "$d/include/nccl.h" ] && nccl_inc="$d/include"
    for l in lib lib64 lib/x86_64-linux-gnu; do
      [ -z "$nccl_lib" ] && [ -e "$d/$l/libnccl.so" ] && nccl_lib="$d/$l"
    done
  done
  if [ -n "$nccl_inc" ] && [ -n "$nccl_lib" ]; then
    step "nvcc servesim-nccl-sweep" 120 "${nv[@]}" -I"$nccl_inc" "$here/nccl/nccl_sweep.cu" \
      -o "$bin/servesim-nccl-sweep" -L"$nccl_lib" -lnccl || echo "== NCCL sweep not built (optional)"
  else
    echo "== skipping the NCCL sweep build: nccl.h or libnccl.so not found (optional)"
  fi
fi
if [ ! -x "$bin/servesim-gemm-bench" ] || [ ! -x "$bin/servesim-mem-bench" ]; then
  echo "device_check.sh: the calibration programs could not be built"
  return 1
fi

# ---- 3. graph-timed profile: both shape sets of the shipped H200 profile ----
l8b="$repo/scenarios/models/llama-3-8b.json"
l70b="$repo/scenarios/models/llama-3-70b.json"
common=(--out "$prof" --build-dir "$bin" --timing graph --reference-op-names --attn-args "--prefill-ctx 0")
step "profile: llama-3-8b tp1 (l8b)" 300 \
  "$here/run_all.sh" --model "$l8b" --tp 1 --tag l8b "${common[@]}"
step "profile: llama-3-70b tp8 (l70b_tp8)" 180 \
  "$here/run_all.sh" --model "$l70b" --tp 8 --tag l70b_tp8 --ops qkv,o,gate_up,down --fp8 --append "${common[@]}"

# MoE expert grouped GEMMs (optional: a failure or a missing program does not change the exit status).
mixtral="$repo/scenarios/models/mixtral-8x7b.json"
dsv3="$repo/scenarios/models/deepseek-v3.json"
if [ -x "$bin/servesim-grouped-gemm-bench" ]; then
  grouped_common=(--timing graph --m-list "1,4,16,64,256")
  step "grouped GEMM: mixtral-8x7b tp1" 60 \
    "$bin/servesim-grouped-gemm-bench" --model "$mixtral" --tp 1 --tag mixtral_tp1 "${grouped_common[@]}" \
    --out "$prof/grouped_gemm_mixtral_tp1.csv"
  step "grouped GEMM: deepseek-v3 ep8" 60 \
    "$bin/servesim-grouped-gemm-bench" --model "$dsv3" --ep 8 --tag dsv3_ep8 "${grouped_common[@]}" \
    --out "$prof/grouped_gemm_dsv3_ep8.csv"
  parts=()
  for f in "$prof/grouped_gemm_mixtral_tp1.csv" "$prof/grouped_gemm_dsv3_ep8.csv"; do
    [ -f "$f" ] && parts+=("$f")
  done
  inputs=()
  [ -f "$prof/grouped_gemm.csv" ] && inputs+=("$prof/grouped_gemm.csv")
  if [ "${#parts[@]}" -gt 0 ] &&
     python3 "$here/fit/merge_csv.py" "$prof/grouped_gemm.csv" ${inputs[@]+"${inputs[@]}"} "${parts[@]}"; then
    rm -f "${parts[@]}"
  fi
else
  echo "== skipping grouped GEMMs: servesim-grouped-gemm-bench was not built (needs CUDA 12.5 or newer)"
  results+=("$(printf '%-34s %-26s' "grouped GEMM" "skipped (not built)")")
fi

# ---- 4. eager comparison ----
mkdir -p "$eager"
eager_m="1,4,16,64,256,1024"
step "eager GEMM: l8b" 60 \
  "$bin/servesim-gemm-bench" --model "$l8b" --tp 1 --tag l8b --timing eager --m-list "$eager_m" \
  --out "$eager/gemm_l8b.csv"
step "eager GEMM: l70b_tp8" 40 \
  "$bin/servesim-gemm-bench" --model "$l70b" --tp 8 --tag l70b_tp8 --ops qkv,o,gate_up,down --timing eager \
  --m-list "$eager_m" --out "$eager/gemm_l70b_tp8.csv"
parts=()
for f in "$eager/gemm_l8b.csv" "$eager/gemm_l70b_tp8.csv"; do [ -f "$f" ] && parts+=("$f"); done
if [ "${#parts[@]}" -gt 0 ] &&
   python3 "$here/fit/merge_csv.py" "$eager/gemm.csv" "${parts[@]}" --rename-op gate_up=gateup \
     --rename-op lm_head=lmhead; then
  rm -f "${parts[@]}"
fi

if (cd / && python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)") >/dev/null 2>&1; then
  attn_eager=(--timing eager --prefill-q "" --decode-mixed "" --decode-batch "1,4,16,64,128"
              --decode-ctx "256,1024,4096,16384")
  for spec in "l8b 1 $l8b" "l70b_tp8 8 $l70b"; do
    read -r tag tp model <<< "$spec"
    remaining="$(left 345)"
    if [ "$remaining" -lt 30 ]; then
      echo "== skipping eager decode attention ($tag): the time budget is spent"
      results+=("$(printf '%-34s %-26s' "eager attention: $tag" "skipped (time)")")
      continue
    fi
    step "eager attention: $tag" "$((remaining < 60 ? remaining : 60))" \
      python3 "$here/torch/attn_bench.py" --model "$model" --tp "$tp" --out "$eager/attention_$tag.csv" \
      "${attn_eager[@]}"
  done
  parts=()
  for f in "$eager"/attention_*.csv; do [ -f "$f" ] && parts+=("$f"); done
  if [ "${#parts[@]}" -gt 0 ] && python3 "$here/fit/merge_csv.py" "$eager/attention.csv" "${parts[@]}"; then
    rm -f "${parts[@]}"
  fi
else
  echo "== skipping eager decode attention: python3 cannot import torch, or torch sees no CUDA device"
fi

# ---- 5. summary ----
echo
echo "==== graph against eager (median us; eager/graph ratio)"
python3 - "$prof" "$eager" <<'EOF'
import os
import sys

def rows(path, key_cols, value_col="median_us"):
    if not os.path.exists(path):
        return {}
    out, header = {}, None
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        fields = line.rstrip("\n").split(",")
        if header is None:
            header = fields
            continue
        rec = dict(zip(header, fields))
        out[tuple(rec[c] for c in key_cols)] = float(rec[value_col])
    return out

prof, eager = sys.argv[1], sys.argv[2]
for name, keys, title in [("gemm.csv", ["op", "M"], "GEMM op, M"),
                          ("attention.csv", ["op", "batch", "ctx_len", "hq", "hkv"],
                           "attention op, batch, ctx, hq, hkv")]:
    g, e = rows(os.path.join(prof, name), keys), rows(os.path.join(eager, name), keys)
    common = [k for k in g if k in e]
    if not common:
        print(f"{name}: nothing to compare")
        continue
    print(f"{title:40s} {'graph':>10s} {'eager':>10s} {'ratio':>6s}")
    for k in common:
        print(f"{' '.join(k):40s} {g[k]:10.2f} {e[k]:10.2f} {e[k] / g[k]:6.2f}")
EOF

echo
echo "==== files"
for d in "$prof" "$eager"; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    [ -f "$f" ] && printf '%-60s %6s lines\n' "${f#"$OUT"/}" "$(wc -l < "$f")"
  done
done
if [ -f "$prof/gemm.csv" ]; then
  echo "GEMM rows per op:"
  grep -v '^#' "$prof/gemm.csv" | tail -n +2 | cut -d, -f1 | sort | uniq -c
fi
if [ -f "$prof/grouped_gemm.csv" ]; then
  echo "grouped GEMM rows per op:"
  grep -v '^#' "$prof/grouped_gemm.csv" | tail -n +2 | cut -d, -f1 | sort | uniq -c
fi

echo
echo "==== steps"
printf '%s\n' "${results[@]}"
echo "total: $((SECONDS - started))s"

status=0
[ -f "$prof/profile.json" ] || { echo "missing: $prof/profile.json"; status=1; }
for op in l8b_qkv l70b_tp8_qkv; do
  grep -q "^$op," "$prof/gemm.csv" 2>/dev/null || { echo "missing GEMM rows: $op"; status=1; }
done
echo "device check $([ "$status" -eq 0 ] && echo complete || echo INCOMPLETE); log: $log"
return "$status"
}

main 2>&1 | tee -a "$log"
exit "${PIPESTATUS[0]}"
