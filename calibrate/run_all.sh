#!/usr/bin/env bash
# Runs the servesim calibration suite on this machine and writes one self-describing profile directory.
#
# usage: calibrate/run_all.sh --model CONFIG.json --tp N --out calibrate/data/<gpu>/
#                             [--build-dir DIR] [--timing graph|eager] [--fp8] [--tag TAG] [--ops LIST]
#                             [--m-list LIST] [--attn-args "ARGS"] [--append] [--reference-op-names] [--quick]
#                             [--grouped-gemm MOE_CONFIG.json[:ep=N|:tp=N][:tag=TAG] ...]
#
#   --model      Hugging Face config.json of a dense Llama-style model (shapes of the GEMMs and heads)
#   --tp         tensor-parallel degree the per-rank shapes are computed for (default 1)
#   --out        profile directory to create/overwrite (gemm.csv, memory.csv, attention.csv,
#                collectives.csv, nccl_sweep.log, grouped_gemm.csv, profile.json)
#   --build-dir  CMake build directory holding (or to receive) the CUDA programs; binaries from a
#                top-level build are found in DIR/calibrate/. Default: use build/calibrate/ of a
#                top-level build if it has them, else build calibrate/ alone in build/calibrate-standalone/.
#   --timing     graph (default): time CUDA-graph replays of the back-to-back calls (GPU-side time, as
#                under an engine's CUDA graphs); eager: time calls issued one by one from the host (small
#                calls then measure the host launch rate). Passed to all three programs, kept in profile.json.
#   --fp8        also time fp8 e4m3 GEMMs (sm_89 or newer)
#   --tag        prefix for the GEMM op names (e.g. l8b -> l8b_qkv)
#   --ops        GEMM layers to time, comma-separated among qkv,o,gate_up,down,lm_head (default: all)
#   --m-list     GEMM M values, comma-separated (default: powers of two 1 ... 16384)
#   --attn-args  extra arguments for attn_bench.py, split at spaces (e.g. "--prefill-ctx 0")
#   --append     add this model's GEMM and attention rows to the profile already in --out (a row with the
#                same shape replaces the old one); memory and collectives are measured only if --out has
#                none. The existing profile must have been measured with the same --timing.
#   --reference-op-names  spell GEMM ops like the shipped H200 profile: gate_up -> gateup, lm_head -> lmhead
#   --quick      fewer repetitions (smoke test; not for calibration)
#   --grouped-gemm  optional, repeatable: also time the grouped expert GEMMs of this mixture-of-experts
#                config.json (servesim-grouped-gemm-bench: experts per GPU with ep=N, expert FFN width split
#                with tp=N, default ep=1; op prefix tag=TAG) into grouped_gemm.csv. The simulator does not
#                read grouped_gemm.csv yet. Skipped (and recorded) when the program was not built (CUDA < 12.5);
#                a failure keeps the rows measured before it and makes run_all.sh exit with status 1.
#
# GPUs: those nvidia-smi lists, or, when CUDA_VISIBLE_DEVICES is set, its entries (empty entries ignored;
# counting stops at a negative index, which hides the GPUs after it from CUDA; set but empty = no GPU).
#
# Steps: build if needed -> GEMM (servesim-gemm-bench) -> grouped GEMM (servesim-grouped-gemm-bench, only
# with --grouped-gemm) -> memory/launch (servesim-mem-bench) ->
# collectives (servesim-nccl-sweep, only with >= 2 GPUs and NCCL built) -> attention (attn_bench.py,
# only if `import torch` works) -> profile.json (calibrate/fit/write_profile.py). Skipped steps are
# printed and recorded in profile.json. If attn_bench.py or servesim-grouped-gemm-bench fails, the rows it
# wrote are kept, the failure is recorded in profile.json like a skipped step, and run_all.sh exits with
# status 1 after writing it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

model="" tp=1 out="" build_dir="" fp8=0 tag="" quick=0 timing=graph ops="" m_list="" attn_extra="" append=0
reference_names=0
grouped_specs=()
usage() { awk 'NR < 4 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }
die() { echo "run_all.sh: error: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) [ $# -ge 2 ] || die "--model needs a value"; model="$2"; shift 2 ;;
    --tp) [ $# -ge 2 ] || die "--tp needs a value"; tp="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a value"; out="$2"; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || die "--build-dir needs a value"; build_dir="$2"; shift 2 ;;
    --timing) [ $# -ge 2 ] || die "--timing needs a value"; timing="$2"; shift 2 ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tag="$2"; shift 2 ;;
    --ops) [ $# -ge 2 ] || die "--ops needs a value"; ops="$2"; shift 2 ;;
    --m-list) [ $# -ge 2 ] || die "--m-list needs a value"; m_list="$2"; shift 2 ;;
    --attn-args) [ $# -ge 2 ] || die "--attn-args needs a value"; attn_extra="$2"; shift 2 ;;
    --grouped-gemm) [ $# -ge 2 ] || die "--grouped-gemm needs a value"; grouped_specs+=("$2"); shift 2 ;;
    --append) append=1; shift ;;
    --reference-op-names) reference_names=1; shift ;;
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
[ "$timing" = graph ] || [ "$timing" = eager ] || die "--timing must be graph or eager"
# parse_grouped SPEC: sets g_model, g_ep, g_tp, g_tag from MODEL.json[:ep=N|:tp=N][:tag=TAG], or dies.
parse_grouped() {
  local rest="$1" key val
  g_ep="" g_tp="" g_tag=""
  while [[ "$rest" =~ ^(.*):(ep|tp|tag)=([^:]*)$ ]]; do
    rest="${BASH_REMATCH[1]}" key="${BASH_REMATCH[2]}" val="${BASH_REMATCH[3]}"
    case "$key" in
      ep) [[ "$val" =~ ^[1-9][0-9]*$ ]] || die "--grouped-gemm $1: ep must be a positive integer"; g_ep="$val" ;;
      tp) [[ "$val" =~ ^[1-9][0-9]*$ ]] || die "--grouped-gemm $1: tp must be a positive integer"; g_tp="$val" ;;
      tag) [[ "$val" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--grouped-gemm $1: bad tag '$val'"; g_tag="$val" ;;
    esac
  done
  g_model="$rest"
  [ -z "$g_ep" ] || [ -z "$g_tp" ] || die "--grouped-gemm $1: give ep=N or tp=N, not both"
  [ -f "$g_model" ] || die "--grouped-gemm: model config not found: $g_model"
}
for spec in ${grouped_specs[@]+"${grouped_specs[@]}"}; do parse_grouped "$spec"; done
command -v python3 >/dev/null || die "python3 is required (profile.json is written with its standard library)"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA GPU to calibrate"

query=("--query-gpu=name,driver_version,memory.total" "--format=csv,noheader")
smi_all="$(nvidia-smi "${query[@]}")"
smi="${smi_all%%$'\n'*}"
if [ "${CUDA_VISIBLE_DEVICES+set}" = set ]; then
  # CUDA sees only these devices (indices or UUIDs), in this order.
  gpu_count=0 first_visible=""
  IFS=',' read -r -a visible <<< "$CUDA_VISIBLE_DEVICES"
  for v in ${visible[@]+"${visible[@]}"}; do
    v="${v//[[:space:]]/}"
    [ -n "$v" ] || continue
    [[ "$v" == -* ]] && break
    gpu_count=$((gpu_count + 1))
    [ -n "$first_visible" ] || first_visible="$v"
  done
  [ "$gpu_count" -ge 1 ] || die "CUDA_VISIBLE_DEVICES='$CUDA_VISIBLE_DEVICES' makes no GPU visible"
  # Name the first visible GPU when nvidia-smi knows its id (CUDA and nvidia-smi agree on the order on
  # nodes of identical GPUs); else keep the first GPU nvidia-smi lists.
  first_smi="$(nvidia-smi -i "$first_visible" "${query[@]}" 2>/dev/null | head -n 1)" || first_smi=""
  [ -z "$first_smi" ] || smi="$first_smi"
else
  gpu_count="$(printf '%s\n' "$smi_all" | grep -c . || true)"
fi
[ "$gpu_count" -ge 1 ] || die "nvidia-smi lists no GPU"
echo "== GPU: $smi (x$gpu_count visible)"
if [ "$append" -eq 1 ] && [ -f "$out/profile.json" ]; then
  had="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("timing", ""))' "$out/profile.json")"
  [ -z "$had" ] || [ "$had" = "$timing" ] ||
    die "--append: $out was measured with --timing $had, this run uses --timing $timing"
fi

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
if [ "${#grouped_specs[@]}" -gt 0 ] && [ ! -x "$bin/servesim-grouped-gemm-bench" ] && command -v cmake >/dev/null &&
   [ -f "$build_dir/CMakeCache.txt" ]; then
  # A build made before servesim-grouped-gemm-bench existed: add it (CMake skips it with CUDA < 12.5).
  echo "== building servesim-grouped-gemm-bench in $build_dir"
  cmake --build "$build_dir" -j "$(nproc 2>/dev/null || echo 2)" --target servesim-grouped-gemm-bench ||
    echo "== servesim-grouped-gemm-bench could not be built"
fi

mkdir -p "$out"
if [ "$append" -eq 0 ]; then
  rm -f "$out"/gemm.csv "$out"/memory.csv "$out"/attention.csv "$out"/collectives.csv "$out"/nccl_sweep.log \
        "$out"/grouped_gemm.csv "$out"/profile.json
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
skipped=()
failed=0
reps_args=()
[ "$quick" -eq 1 ] && reps_args=(--reps 3)

# merge_into NAME [merge_csv.py options]: moves this run's $work/NAME into $out/NAME (appended to the rows
# already there with --append).
merge_into() {
  local name="$1"; shift
  local inputs=()
  [ "$append" -eq 1 ] && [ -f "$out/$name" ] && inputs+=("$out/$name")
  inputs+=("$work/$name")
  python3 "$here/fit/merge_csv.py" "$out/$name" "${inputs[@]}" "$@"
}

# ---- GEMM ----
gemm_args=(--model "$model" --tp "$tp" --out "$work/gemm.csv" --timing "$timing" ${reps_args[@]+"${reps_args[@]}"})
[ "$fp8" -eq 1 ] && gemm_args+=(--fp8)
[ -n "$tag" ] && gemm_args+=(--tag "$tag")
[ -n "$ops" ] && gemm_args+=(--ops "$ops")
if [ -n "$m_list" ]; then gemm_args+=(--m-list "$m_list")
elif [ "$quick" -eq 1 ]; then gemm_args+=(--m-list "1,16,256,4096"); fi
echo "== GEMM: servesim-gemm-bench ${gemm_args[*]}"
"$bin/servesim-gemm-bench" "${gemm_args[@]}"
rename_args=()
[ "$reference_names" -eq 1 ] && rename_args=(--rename-op gate_up=gateup --rename-op lm_head=lmhead)
merge_into gemm.csv ${rename_args[@]+"${rename_args[@]}"}

# ---- grouped GEMM (MoE experts; optional) ----
notes=()
if [ "${#grouped_specs[@]}" -gt 0 ]; then
  if [ ! -x "$bin/servesim-grouped-gemm-bench" ]; then
    echo "== skipping grouped GEMM: servesim-grouped-gemm-bench was not built (needs CUDA 12.5 or newer)"
    skipped+=("grouped GEMM: servesim-grouped-gemm-bench not built (needs CUDA 12.5 or newer)")
  else
    parts=()
    i=0
    for spec in "${grouped_specs[@]}"; do
      parse_grouped "$spec"
      i=$((i + 1))
      grouped_args=(--model "$g_model" --out "$work/grouped_$i.csv" --timing "$timing"
                    ${reps_args[@]+"${reps_args[@]}"})
      [ -n "$g_ep" ] && grouped_args+=(--ep "$g_ep")
      [ -n "$g_tp" ] && grouped_args+=(--tp "$g_tp")
      [ -n "$g_tag" ] && grouped_args+=(--tag "$g_tag")
      [ "$quick" -eq 1 ] && grouped_args+=(--m-list "1,16,256")
      echo "== grouped GEMM: servesim-grouped-gemm-bench ${grouped_args[*]}"
      if "$bin/servesim-grouped-gemm-bench" "${grouped_args[@]}"; then
        par="ep=${g_ep:-1}"
        [ -n "$g_tp" ] && par="tp=$g_tp"
        notes+=("grouped_gemm.csv: MoE expert grouped GEMMs of $(basename "$g_model") ($par${g_tag:+, tag $g_tag})")
      else
        rc=$?
        echo "== grouped GEMM FAILED ($spec): servesim-grouped-gemm-bench exited with status $rc;" \
             "the rows it wrote before are kept"
        why="servesim-grouped-gemm-bench failed (exit status $rc); rows measured before the failure are kept"
        skipped+=("grouped GEMM $spec: $why")
        failed=1
      fi
      [ -f "$work/grouped_$i.csv" ] && parts+=("$work/grouped_$i.csv")
    done
    if [ "${#parts[@]}" -gt 0 ]; then
      [ "$append" -eq 1 ] && [ -f "$out/grouped_gemm.csv" ] && parts=("$out/grouped_gemm.csv" "${parts[@]}")
      python3 "$here/fit/merge_csv.py" "$out/grouped_gemm.csv" "${parts[@]}"
    fi
  fi
fi

# ---- memory and launch ----
if [ "$append" -eq 1 ] && [ -f "$out/memory.csv" ]; then
  echo "== memory: kept from the existing profile (--append)"
else
  mem_args=(--out "$out/memory.csv" --timing "$timing" ${reps_args[@]+"${reps_args[@]}"})
  [ "$quick" -eq 1 ] && mem_args+=(--max-bytes 64M)
  echo "== memory: servesim-mem-bench ${mem_args[*]}"
  "$bin/servesim-mem-bench" "${mem_args[@]}"
fi

# ---- collectives ----
if [ "$append" -eq 1 ] && [ -f "$out/collectives.csv" ]; then
  echo "== collectives: kept from the existing profile (--append)"
elif [ "$gpu_count" -lt 2 ]; then
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
  attn_args=(--model "$model" --tp "$tp" --out "$work/attention.csv" --timing "$timing"
             ${reps_args[@]+"${reps_args[@]}"})
  [ "$quick" -eq 1 ] && attn_args+=(--prefill-q "128,1024,8192" --prefill-ctx "0,4096" --decode-batch "1,16"
                                    --decode-ctx "256,4096")
  if [ -n "$attn_extra" ]; then
    read -r -a extra <<< "$attn_extra"
    attn_args+=("${extra[@]}")
  fi
  echo "== attention: attn_bench.py ${attn_args[*]}"
  if python3 "$here/torch/attn_bench.py" "${attn_args[@]}"; then
    merge_into attention.csv
  else
    rc=$?
    echo "== attention FAILED: attn_bench.py exited with status $rc; the rows it wrote before are kept"
    skipped+=("attention: attn_bench.py failed (exit status $rc); rows measured before the failure are kept")
    failed=1
    [ -f "$work/attention.csv" ] && merge_into attention.csv
  fi
else
  echo "== skipping attention: python3 cannot import torch, or torch sees no CUDA device"
  skipped+=("attention: PyTorch not importable or without CUDA")
fi

# ---- profile.json ----
profile_args=(--dir "$out" --model "$model" --tp "$tp" --nvidia-smi "$smi" --gpu-count "$gpu_count"
              --date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --timing "$timing")
[ -n "$tag" ] && profile_args+=(--tag "$tag")
[ "$append" -eq 1 ] && profile_args+=(--append)
[ "$quick" -eq 1 ] && profile_args+=(--note "quick run: reduced sweeps and repetitions, not for calibration")
[ "$reference_names" -eq 1 ] &&
  profile_args+=(--note "GEMM op names spelt like the shipped H200 profile: gate_up -> gateup, lm_head -> lmhead")
for s in ${skipped[@]+"${skipped[@]}"}; do profile_args+=(--skipped "$s"); done
for n in ${notes[@]+"${notes[@]}"}; do profile_args+=(--note "$n"); done
python3 "$here/fit/write_profile.py" "${profile_args[@]}"
if [ "$failed" -ne 0 ]; then
  echo "== done with a failed step (see above; recorded in profile.json): $out"
  exit 1
fi
echo "== done: $out"
