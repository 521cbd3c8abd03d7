#!/usr/bin/env python3
"""Writes profile.json for a calibration profile directory produced by calibrate/run_all.sh.

Standard library only. Versions are collected from the "# key: value" comment lines that the
calibration programs write at the top of their CSV files (cuBLASLt from gemm.csv, NCCL from
collectives.csv, PyTorch/cuDNN from attention.csv, CUDA runtime from memory.csv), the GPU name,
driver and memory from the nvidia-smi line passed on the command line. No host names, no paths.

usage: write_profile.py --dir DIR --model CONFIG.json --tp N --nvidia-smi "NAME, DRIVER, MEM"
                        --gpu-count N --date ISO8601 [--timing graph|eager] [--tag TAG] [--append]
                        [--skipped TEXT ...] [--note TEXT ...]

--timing records how the programs timed back-to-back calls ("timing"; the "# timing:" comment lines
of the CSV files, which also name rows that fell back to eager timing, go to "timing_by_file").
--append: DIR already held a profile and this run added another model's rows to it (run_all.sh
--append); the existing profile.json is merged: "model" and "tp" stay those of the first model,
"shape_sets" lists every (tag, tp, model) measured, "skipped" and "notes" are united.
"""
import argparse
import json
import os
import sys

CSV_FILES = ["gemm.csv", "attention.csv", "memory.csv", "collectives.csv"]
OTHER_FILES = ["nccl_sweep.log"]

COMMON_METHOD = (
    "median/min/max over repetitions after warm-up calls; call and repetition counts are in each CSV's "
    "'# method:' line; random normal inputs, never zeros. "
    "GEMM: cuBLASLt, heuristic algorithm, 32 MiB workspace, weight copies rotated so weight bytes exceed 2x L2. "
    "Attention: torch scaled_dot_product_attention bf16, inputs rotated over copies exceeding 2x L2. "
    "Memory: cudaMemcpyAsync d2d (rotated over buffer pairs exceeding 2x L2) and pinned h2d/d2h; "
    "launch_host = host wall time per launch call of an empty kernel. Collectives: NCCL, one process over all "
    "local GPUs, calls issued from the host, time = median over repetitions of the max over ranks, "
    "out-of-place, busbw per nccl-tests."
)
METHOD = {
    "graph": (
        "CUDA graph timing: the back-to-back calls of a row (GEMM, attention, copies, launch) are captured "
        "once into a CUDA graph and each repetition times one graph launch between CUDA events; time per call "
        "= elapsed / calls (GPU-side time, without host launch gaps, as under an engine's CUDA graphs; launch = "
        "GPU-side cost per empty kernel in a graph); rows whose graph could not be captured were timed eagerly "
        "and are listed in timing_by_file; "
    ),
    "eager": (
        "Eager timing: CUDA events around N back-to-back calls issued from the host, time per call = elapsed / "
        "N (calls shorter than the host's launch time measure the host launch rate; launch = events around "
        "host-issued empty-kernel launches); "
    ),
}


def csv_comments(path):
    """Returns {key: value} from leading '# key: value' lines of a CSV file."""
    info = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("#"):
                break
            body = line[1:].strip()
            if ": " in body:
                key, value = body.split(": ", 1)
                if " " not in key:
                    info.setdefault(key, value)
    return info


def timing_lines(path):
    """Returns the distinct values of the '# timing:' comment lines of a CSV file (merged files have several)."""
    values = []
    with open(path) as f:
        for line in f:
            if line.startswith("# timing: "):
                value = line[len("# timing: "):].strip()
                if value not in values:
                    values.append(value)
    return values


def count_rows(path):
    with open(path) as f:
        lines = [ln for ln in f if ln.strip() and not ln.startswith("#")]
    return max(0, len(lines) - 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tp", type=int, required=True)
    ap.add_argument("--nvidia-smi", required=True, help="name, driver_version, memory.total line")
    ap.add_argument("--gpu-count", type=int, required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--timing", choices=["graph", "eager"])
    ap.add_argument("--tag", default="")
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--skipped", action="append", default=[])
    ap.add_argument("--note", action="append", default=[])
    args = ap.parse_args()

    profile_path = os.path.join(args.dir, "profile.json")
    previous = {}
    if args.append and os.path.exists(profile_path):
        with open(profile_path) as f:
            previous = json.load(f)

    parts = [p.strip() for p in args.nvidia_smi.split(",")]
    gpu = parts[0] if parts else "unknown"
    driver = parts[1] if len(parts) > 1 else None
    memory_total = parts[2] if len(parts) > 2 else None

    comments = {}
    files = []
    rows = {}
    for name in CSV_FILES:
        path = os.path.join(args.dir, name)
        if os.path.exists(path):
            comments[name] = csv_comments(path)
            files.append(name)
            rows[name] = count_rows(path)
    files += [n for n in OTHER_FILES if os.path.exists(os.path.join(args.dir, n))]
    if not files:
        sys.exit("write_profile.py: no calibration files in " + args.dir)

    def first(key):
        for name in CSV_FILES:
            value = comments.get(name, {}).get(key)
            if value:
                return value
        return None

    libraries = {}
    if first("cublasLt"):
        libraries["cublasLt"] = first("cublasLt")
    if first("nccl"):
        libraries["nccl"] = first("nccl")
    if first("torch"):
        libraries["torch"] = first("torch")
    if first("cudnn"):
        libraries["cudnn"] = first("cudnn")

    with open(args.model) as f:
        cfg = json.load(f)
    model_keys = ["model_type", "architectures", "hidden_size", "intermediate_size", "num_attention_heads",
                  "num_key_value_heads", "head_dim", "vocab_size", "num_hidden_layers"]
    model = {k: cfg[k] for k in model_keys if k in cfg}
    model["config_name"] = os.path.splitext(os.path.basename(args.model))[0]
    if model["config_name"] == "config":  # Hugging Face layout: .../<model name>/config.json
        model["config_name"] = os.path.basename(os.path.dirname(os.path.abspath(args.model))) or "config"

    shape_set = {"tag": args.tag, "tp": args.tp, "model": model}
    shape_sets = [s for s in previous.get("shape_sets", [])
                  if (s.get("tag"), s.get("tp"), s.get("model", {}).get("config_name"))
                  != (args.tag, args.tp, model["config_name"])]
    shape_sets.append(shape_set)

    def united(old, new):
        return old + [x for x in new if x not in old]

    timing = args.timing or previous.get("timing")
    profile = {
        "gpu": gpu,
        "source": "measured with servesim calibrate/run_all.sh (servesim-gemm-bench, servesim-mem-bench, "
                  "servesim-nccl-sweep, calibrate/torch/attn_bench.py)",
        "driver": driver,
        "cuda": first("cuda_runtime"),
        "cuda_driver_api": first("cuda_driver_api"),
        "libraries": libraries,
        "date": args.date,
        "method": METHOD.get(timing, "") + COMMON_METHOD,
        "files": files,
        "rows": rows,
        "hardware": {
            "gpu_count": args.gpu_count,
            "memory_total": memory_total,
            "compute_capability": first("compute_capability"),
            "sms": int(first("sms")) if first("sms") else None,
            "l2_bytes": int(first("l2_bytes")) if first("l2_bytes") else None,
        },
        "model": previous.get("model", model),
        "tp": previous.get("tp", args.tp),
        "shape_sets": shape_sets,
        "skipped": united(previous.get("skipped", []), args.skipped),
    }
    if timing:
        profile["timing"] = timing
    timing_by_file = {name: " | ".join(timing_lines(os.path.join(args.dir, name))) for name in files
                      if name in CSV_FILES and timing_lines(os.path.join(args.dir, name))}
    if timing_by_file:
        profile["timing_by_file"] = timing_by_file
    notes = united(previous.get("notes", [previous["note"]] if "note" in previous else []), args.note)
    if len(notes) == 1:
        profile["note"] = notes[0]
    elif notes:
        profile["notes"] = notes
    with open(profile_path, "w") as f:
        json.dump(profile, f, indent=2)
        f.write("\n")
    print("wrote " + profile_path)


if __name__ == "__main__":
    main()
