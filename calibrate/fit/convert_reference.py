#!/usr/bin/env python3
"""Converts the "H200 kernel timings, 2026-11-27" reference measurements into a servesim profile directory.

usage: convert_reference.py REFERENCE_DIR OUT_DIR
  REFERENCE_DIR holds gemm.json, attn.json, mem.json and env.json of the reference measurements.
  OUT_DIR receives gemm.csv, attention.csv, memory.csv, collectives.csv and profile.json
  (the profile schema is described in calibrate/README.md).

Standard library only; run once, the output is committed (calibrate/data/h200/). Every reference row is
kept, with the reference's op names (l8b_qkv, l8b_gateup, l70b_tp8_down, ...). Conversions:
  gemm.json  -> gemm.csv       op,M,N,K,dtype and median/min/max µs unchanged
  attn.json  -> attention.csv  prefill_causal -> prefill (ctx_len 0, kv_total B·S);
                               decode -> decode (q_len 1, ctx_len L, kv_total B·L); hq/hkv tell the
                               two shape sets apart (l8b 32/8, l70b_tp8 8/1)
  mem.json   -> memory.csv     d2d, h2d_pinned, d2h_pinned unchanged; tiny_kernel_launch_host ->
                               launch_host with median = min = max = us_per_launch (one value given)
collectives.csv is not in the reference directory: it holds the published 8×H200 torch.distributed
all_reduce busbw sweep (stas00/ml-engineering network/benchmarks/results/all-reduce-8xH200.md, torch
2.9.1, NCCL 2.27.7), copied into ALLREDUCE_8XH200 below and into calibrate/data/published.md;
algbw = busbw / (2·7/8), time_us = bytes / algbw (KiB/MiB/GiB = powers of 1024, GB/s = 1e9 B/s).
"""
import json
import os
import sys

SOURCE = "H200 kernel timings, 2026-11-27"
METHOD = ("CUDA events around 20 back-to-back calls, divided by 20; median of 15 such repetitions (min and max "
          "kept); inputs random normal, never zeros; GEMM weights rotated over copies so that the weights streamed "
          "per call exceed the L2")

ALLREDUCE_SOURCE = ("stas00/ml-engineering network/benchmarks/results/all-reduce-8xH200.md "
                    "(torch.distributed all_reduce; torch 2.9.1; NCCL 2.27.7)")
# (payload, busbw GB/s) as published; payload units are powers of 1024.
ALLREDUCE_8XH200 = [
    ("32 KiB", 1.44), ("64 KiB", 2.93), ("128 KiB", 5.73), ("256 KiB", 11.74), ("512 KiB", 23.94),
    ("1 MiB", 39.93), ("2 MiB", 64.53), ("4 MiB", 107.16), ("8 MiB", 155.53), ("16 MiB", 219.89),
    ("32 MiB", 275.84), ("64 MiB", 346.51), ("128 MiB", 401.93), ("256 MiB", 436.15), ("512 MiB", 450.29),
    ("1 GiB", 463.58), ("4 GiB", 473.10), ("16 GiB", 482.26),
]
UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def num(v):
    """Shortest text that reads back as the same float (integers stay integers)."""
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def load(ref_dir, name):
    with open(os.path.join(ref_dir, name)) as f:
        return json.load(f)


def write_csv(path, comments, header, rows):
    with open(path, "w") as f:
        for c in comments:
            f.write("# " + c + "\n")
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(num(x) if not isinstance(x, str) else x for x in r) + "\n")
    return len(rows)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ref_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    env = load(ref_dir, "env.json")
    gemm = load(ref_dir, "gemm.json")
    attn = load(ref_dir, "attn.json")
    mem = load(ref_dir, "mem.json")
    for rows in (gemm, attn, mem):
        for r in rows:
            if "back_to_back" in r and r["back_to_back"] != 20:
                sys.exit("unexpected back_to_back value in reference: %r" % r)

    common = [
        "source: " + SOURCE + " (one NVIDIA H200; PyTorch " + env["torch"] + ", CUDA " + env["cuda"] + ")",
        "method: " + METHOD,
        "converted by calibrate/fit/convert_reference.py; times in microseconds",
    ]
    counts = {}

    rows = [(r["op"], r["M"], r["N"], r["K"], r["dtype"], r["median_us"], r["min_us"], r["max_us"]) for r in gemm]
    counts["gemm.csv"] = write_csv(
        os.path.join(out_dir, "gemm.csv"),
        common + ["timed call: torch.nn.functional.linear(X[M,K], W[N,K]) (cuBLAS), bf16",
                  "op names as in the reference: l8b_* = Llama-3-8B, l70b_tp8_* = one TP-8 shard of Llama-3-70B; "
                  "gateup = gate+up projection, lmhead = lm_head"],
        ["op", "M", "N", "K", "dtype", "median_us", "min_us", "max_us"], rows)

    rows = []
    for r in attn:
        if r["op"] == "prefill_causal":
            rows.append(("prefill", r["B"], r["S"], 0, r["B"] * r["S"], r["hq"], r["hkv"], r["d"], "bf16",
                         r["median_us"], r["min_us"], r["max_us"]))
        elif r["op"] == "decode":
            rows.append(("decode", r["B"], 1, r["L"], r["B"] * r["L"], r["hq"], r["hkv"], r["d"], "bf16",
                         r["median_us"], r["min_us"], r["max_us"]))
        else:
            sys.exit("unknown attention op in reference: %r" % r["op"])
    counts["attention.csv"] = write_csv(
        os.path.join(out_dir, "attention.csv"),
        common + ["timed call: torch.nn.functional.scaled_dot_product_attention, enable_gqa=True, bf16, "
                  "PyTorch chose the kernel (flash-attn and FlashInfer not installed)",
                  "prefill: batch 1, S query tokens attending causally to the same S tokens (ctx_len 0); "
                  "decode: one query token per sequence, all sequences with ctx_len cached tokens",
                  "shape sets: hq=32 hkv=8 = Llama-3-8B (reference tag l8b); hq=8 hkv=1 = one TP-8 shard of "
                  "Llama-3-70B (l70b_tp8)"],
        ["op", "batch", "q_len", "ctx_len", "kv_total", "hq", "hkv", "head_dim", "dtype",
         "median_us", "min_us", "max_us"], rows)

    order = {"d2d": 0, "h2d_pinned": 1, "d2h_pinned": 2, "tiny_kernel_launch_host": 3}
    rows = []
    for r in sorted(mem, key=lambda r: (order[r["op"]], r.get("bytes", 0))):
        if r["op"] == "tiny_kernel_launch_host":
            v = r["us_per_launch"]
            rows.append(("launch_host", 0, v, v, v))
        else:
            rows.append((r["op"], r["bytes"], r["median_us"], r["min_us"], r["max_us"]))
    counts["memory.csv"] = write_csv(
        os.path.join(out_dir, "memory.csv"),
        common + ["d2d: device copy of `bytes` (bytes read = bytes written = bytes); h2d_pinned / d2h_pinned: "
                  "PCIe Gen5 copies from/to pinned host memory",
                  "launch_host: host time per launch of a one-element kernel from Python (reference "
                  "tiny_kernel_launch_host); one value was given, so median = min = max"],
        ["op", "bytes", "median_us", "min_us", "max_us"], rows)

    rows = []
    for payload, busbw in ALLREDUCE_8XH200:
        value, unit = payload.split()
        nbytes = int(value) * UNITS[unit]
        algbw = busbw / (2.0 * 7 / 8)
        time_us = nbytes / (algbw * 1e9) * 1e6
        rows.append(("all_reduce", 8, nbytes, round(time_us, 3), round(algbw, 4), busbw,
                     ALLREDUCE_SOURCE.replace(",", ";")))
    counts["collectives.csv"] = write_csv(
        os.path.join(out_dir, "collectives.csv"),
        ["source: " + ALLREDUCE_SOURCE + "; 8x H200 SXM in one node (NVLink/NVSwitch)",
         "busbw_GBps as published; algbw_GBps = busbw / (2*7/8); time_us = bytes / algbw; GB = 1e9 bytes; "
         "sizes in powers of 1024 (32 KiB ... 16 GiB)",
         "converted by calibrate/fit/convert_reference.py"],
        ["collective", "ranks", "bytes", "time_us", "algbw_GBps", "busbw_GBps", "source"], rows)

    profile = {
        "gpu": env["gpu"],
        "source": SOURCE + " (reference measurements with PyTorch/cuBLAS on one H200); collectives.csv: "
                  + ALLREDUCE_SOURCE,
        "driver": "580.159",
        "cuda": env["cuda"],
        "libraries": {
            "torch": env["torch"],
            "cublas": "as bundled with PyTorch " + env["torch"] + " (version not recorded)",
            "nccl": "2.27.7 (published collectives only, torch 2.9.1)",
            "flash_attn": env.get("flash_attn", "absent"),
            "flashinfer": env.get("flashinfer", "absent"),
        },
        "date": "2026-11-27",
        "method": METHOD,
        "files": ["gemm.csv", "attention.csv", "memory.csv", "collectives.csv"],
        "rows": counts,
        "hardware": {
            "gpu_count": 1,
            "sms": env["sms"],
            "l2_bytes": env["l2_bytes"],
            "mem_bytes": env["mem_bytes"],
            "clocks": "SM 1980 MHz, memory 3201 MHz as read; clocks left as found",
        },
        "notes": [
            "GEMM op names keep the reference spelling (gateup, lmhead); servesim-gemm-bench writes gate_up, lm_head.",
            "No GPU-side 'launch' row: the reference measured host launch time only (launch_host).",
            "hardware describes the single H200 of the kernel timings; collectives.csv comes from a published "
            "8x H200 SXM node (ranks = 8), not from that machine.",
        ],
    }
    with open(os.path.join(out_dir, "profile.json"), "w") as f:
        json.dump(profile, f, indent=2)
        f.write("\n")
    for name, n in counts.items():
        print("%s: %d rows" % (name, n))


if __name__ == "__main__":
    main()
