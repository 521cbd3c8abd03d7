#!/usr/bin/env python3
"""Writes profile.json for a calibration profile directory produced by calibrate/run_all.sh.

Standard library only. Versions are collected from the "# key: value" comment lines that the
calibration programs write at the top of their CSV files (cuBLASLt from gemm.csv, NCCL from
collectives.csv, PyTorch/cuDNN from attention.csv, CUDA runtime from memory.csv), the GPU name,
driver and memory from the nvidia-smi line passed on the command line. No host names, no paths.

usage: write_profile.py --dir DIR --model CONFIG.json --tp N --nvidia-smi "NAME, DRIVER, MEM"
                        --gpu-count N --date ISO8601 [--skipped TEXT ...] [--note TEXT]
"""
import argparse
import json
import os
import sys

CSV_FILES = ["gemm.csv", "attention.csv", "memory.csv", "collectives.csv"]
OTHER_FILES = ["nccl_sweep.log"]

METHOD = (
    "CUDA events around N back-to-back calls (N = 20 unless stated in the CSV comments), time per call = "
    "elapsed / N, median/min/max over 15 repetitions after warm-up calls; random normal inputs, never zeros. "
    "GEMM: cuBLASLt, heuristic algorithm, 32 MiB workspace, weight copies rotated so weight bytes exceed 2x L2. "
    "Attention: torch scaled_dot_product_attention bf16, inputs rotated over copies exceeding 2x L2. "
    "Memory: cudaMemcpyAsync d2d and pinned h2d/d2h; launch = empty kernel, GPU-side (events) and host "
    "wall time per launch call. Collectives: NCCL, one process over all local GPUs, time = median over "
    "repetitions of the max over ranks, out-of-place, busbw per nccl-tests."
)


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
    ap.add_argument("--skipped", action="append", default=[])
    ap.add_argument("--note")
    args = ap.parse_args()

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
    model["config_name"] = os.path.basename(os.path.dirname(os.path.abspath(args.model))) or "config"

    profile = {
        "gpu": gpu,
        "source": "measured with servesim calibrate/run_all.sh (servesim-gemm-bench, servesim-mem-bench, "
                  "servesim-nccl-sweep, calibrate/torch/attn_bench.py)",
        "driver": driver,
        "cuda": first("cuda_runtime"),
        "cuda_driver_api": first("cuda_driver_api"),
        "libraries": libraries,
        "date": args.date,
        "method": METHOD,
        "files": files,
        "rows": rows,
        "hardware": {
            "gpu_count": args.gpu_count,
            "memory_total": memory_total,
            "compute_capability": first("compute_capability"),
            "sms": int(first("sms")) if first("sms") else None,
            "l2_bytes": int(first("l2_bytes")) if first("l2_bytes") else None,
        },
        "model": model,
        "tp": args.tp,
        "skipped": args.skipped,
    }
    if args.note:
        profile["note"] = args.note
    with open(os.path.join(args.dir, "profile.json"), "w") as f:
        json.dump(profile, f, indent=2)
        f.write("\n")
    print("wrote " + os.path.join(args.dir, "profile.json"))


if __name__ == "__main__":
    main()
