#!/usr/bin/env bash
# Runs the servesim calibration suite on this machine and writes one self-describing profile directory.
#
# usage: calibrate/run_all.sh --model CONFIG.json --tp N --out calibrate/data/<gpu>/
#                             [--build-dir DIR] [--fp8] [--tag TAG] [--quick]
#
#   --model      Hugging Face config.json of a dense Llama-style model (shapes of the GEMMs and heads)
#   --tp         tensor-parallel degree the per-rank shapes are computed for (default 1)
#   --out        profile directory to create/overwrite (gemm.csv, memory.csv, attention.csv,
#                collectives.csv, nccl_sweep.log, profile.json)
#   --build-dir  CMake build directory holding (or to receive) the CUDA programs; binaries from a
#                top-level build are found in DIR/calibrate/. Default: use build/calibrate/ of a
#                top-level build if it has them, else build calibrate/ alone in build/calibrate-standalone/.
#   --fp8        also time fp8 e4m3 GEMMs (sm_89 or newer)
#   --tag        prefix for the GEMM op names (e.g. l8b -> l8b_qkv)
#   --quick      fewer repetitions (smoke test; not for calibration)
#
# Steps: build if needed -> GEMM (servesim-gemm-bench) -> memory/launch (servesim-mem-bench) ->
# collectives (servesim-nccl-sweep, only with >= 2 GPUs and NCCL built) -> attention (attn_bench.py,
# only if `import torch` works) -> profile.json (calibrate/fit/write_profile.py). Skipped steps are
# printed and recorded in profile.json.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

model="" tp=1 out="" build_dir="" fp8=0 tag="" quick=0
usage() { sed -n '4,16p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "run_all.sh: error: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) [ $# -ge 2 ] || die "--model needs a value"; model="$2"; shift 2 ;;
    --tp) [ $# -ge 2 ] || die "--tp needs a value"; tp="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a value"; out="$2"; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || die "--build-dir needs a value"; build_dir="$2"; shift 2 ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tag="$2"; shift 2 ;;
    --fp8) fp8=1; shift ;;
    --quick) quick=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ -n "$model" ] || die "--model is required"
[ -n "$out" ] || die "--out is required"
[ -f "$model" ] || die "model config not found: $model"
[[ "$tp" =~ ^[1-9][0-9]*$ ]] || die "--tp must be a positive integer"
command -v python3 >/dev/null || die "python3 is required (profile.json is written with its standard library)"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA GPU to calibrate"

smi_all="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
smi="${smi_all%%$'\n'*}"
gpu_count="$(printf '%s\n' "$smi_all" | grep -c . || true)"
[ "$gpu_count" -ge 1 ] || die "nvidia-smi lists no GPU"
echo "== GPU: $smi (x$gpu_count)"

# ---- build ----
find_bin() {  # prints the directory holding servesim-gemm-bench, if any
  local d
  for d in "$build_dir" "$build_dir/calibrate"; do
    if [ -x "$d/servesim-gemm-bench" ] && [ -x "$d/servesim-mem-bench" ]; then echo "$d"; return 0; fi
  done
  return 1
}
if [ -z "$build_dir" ]; then
  build_dir="$repo/build"
  find_bin >/dev/null || build_dir="$repo/build/calibrate-standalone"
fi
if ! bin="$(find_bin)"; then
  command -v cmake >/dev/null || die "cmake is required to build the calibration programs"
  echo "== building calibration programs in $build_dir"
  cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
  cmake --build "$build_dir" -j "$(nproc 2>/dev/null || echo 2)"
  bin="$(find_bin)" || die "build finished but the programs are missing in $build_dir"
fi
echo "== programs: $bin"

mkdir -p "$out"
rm -f "$out"/gemm.csv "$out"/memory.csv "$out"/attention.csv "$out"/collectives.csv "$out"/nccl_sweep.log \
      "$out"/profile.json
skipped=()
reps=15
[ "$quick" -eq 1 ] && reps=3

# ---- GEMM ----
gemm_args=(--model "$model" --tp "$tp" --out "$out/gemm.csv" --reps "$reps")
[ "$fp8" -eq 1 ] && gemm_args+=(--fp8)
[ -n "$tag" ] && gemm_args+=(--tag "$tag")
[ "$quick" -eq 1 ] && gemm_args+=(--m-list "1,16,256,4096")
echo "== GEMM: servesim-gemm-bench ${gemm_args[*]}"
"$bin/servesim-gemm-bench" "${gemm_args[@]}"

# ---- memory and launch ----
mem_args=(--out "$out/memory.csv" --reps "$reps")
[ "$quick" -eq 1 ] && mem_args+=(--max-bytes 64M)
echo "== memory: servesim-mem-bench ${mem_args[*]}"
"$bin/servesim-mem-bench" "${mem_args[@]}"

# ---- collectives ----
if [ "$gpu_count" -lt 2 ]; then
  echo "== skipping collectives: $gpu_count GPU (need at least 2)"
  skipped+=("collectives: fewer than 2 GPUs")
elif [ ! -x "$bin/servesim-nccl-sweep" ]; then
  echo "== skipping collectives: servesim-nccl-sweep was not built (NCCL not found at build time)"
  skipped+=("collectives: NCCL not found at build time")
else
  nccl_args=(-b 8 -e 8G -f 2 -d bfloat16 --csv "$out/collectives.csv")
  [ "$quick" -eq 1 ] && nccl_args=(-b 1K -e 64M -f 4 --reps 2 -d bfloat16 --csv "$out/collectives.csv")
  echo "== collectives: servesim-nccl-sweep ${nccl_args[*]}"
  "$bin/servesim-nccl-sweep" "${nccl_args[@]}" | tee "$out/nccl_sweep.log"
fi

# ---- attention ----
# Checked from / so that this directory's own torch/ folder cannot pass for the PyTorch package.
if (cd / && python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)") >/dev/null 2>&1; then
  attn_args=(--model "$model" --tp "$tp" --out "$out/attention.csv" --reps "$reps")
  [ "$quick" -eq 1 ] && attn_args+=(--prefill-q "128,1024,8192" --prefill-ctx "0,4096" --decode-batch "1,16"
                                    --decode-ctx "256,4096")
  echo "== attention: attn_bench.py ${attn_args[*]}"
  python3 "$here/torch/attn_bench.py" "${attn_args[@]}"
else
  echo "== skipping attention: python3 cannot import torch, or torch sees no CUDA device"
  skipped+=("attention: PyTorch not importable or without CUDA")
fi

# ---- profile.json ----
profile_args=(--dir "$out" --model "$model" --tp "$tp" --nvidia-smi "$smi" --gpu-count "$gpu_count"
              --date "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
[ "$quick" -eq 1 ] && profile_args+=(--note "quick run: reduced sweeps and repetitions, not for calibration")
for s in ${skipped[@]+"${skipped[@]}"}; do profile_args+=(--skipped "$s"); done
python3 "$here/fit/write_profile.py" "${profile_args[@]}"
echo "== done: $out"
