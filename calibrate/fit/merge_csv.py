#!/usr/bin/env python3
"""Merges calibration CSV files that share one column header (used by calibrate/run_all.sh --append and
calibrate/device_check.sh). Standard library only.

usage: merge_csv.py OUT IN [IN ...] [--rename-op OLD=NEW ...]

OUT may be one of the inputs. OUT gets the comment lines of all inputs ("# ..." lines before their
header; each distinct line once, in the order first seen), the common header, then the data rows of all
inputs in order. A row whose key (every column except the measured ones: median_us, min_us, max_us,
time_us, algbw_GBps, busbw_GBps) equals that of an earlier row replaces it in place, so measuring a shape
again updates it.

--rename-op OLD=NEW renames the value of the first column (op) OLD to NEW, and TAG_OLD to TAG_NEW, before
the rows are keyed; a "# op names:" comment records the mapping. device_check.sh uses gate_up=gateup and
lm_head=lmhead so that its GEMM rows are spelt like the shipped H200 profile (calibrate/data/h200/gemm.csv).
"""
import argparse
import os
import sys

MEASURED = {"median_us", "min_us", "max_us", "time_us", "algbw_GBps", "busbw_GBps"}


def read_csv(path):
    """Returns (comment lines, header, data rows) of a calibration CSV; lines without newline."""
    comments, header, rows = [], None, []
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\r\n")
            if not line:
                continue
            if line.startswith("#"):
                if header is None:
                    comments.append(line)
                continue
            if header is None:
                header = line
            else:
                rows.append(line)
    if header is None:
        sys.exit(f"merge_csv.py: {path}: no header line")
    return comments, header, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--rename-op", action="append", default=[], metavar="OLD=NEW")
    args = ap.parse_args()

    renames = {}
    for spec in args.rename_op:
        old, sep, new = spec.partition("=")
        if not sep or not old or not new:
            sys.exit(f"merge_csv.py: --rename-op wants OLD=NEW, not '{spec}'")
        renames[old] = new

    def rename(op):
        for old, new in renames.items():
            if op == old:
                return new
            if op.endswith("_" + old):
                return op[: -len(old)] + new
        return op

    comments, header, keyed = [], None, {}
    for path in args.inputs:
        c, h, rows = read_csv(path)
        if header is None:
            header = h
            columns = h.split(",")
            key_cols = [i for i, name in enumerate(columns) if name not in MEASURED]
        elif h != header:
            sys.exit(f"merge_csv.py: {path}: header '{h}' differs from '{header}'")
        comments += [line for line in c if line not in comments]
        for row in rows:
            fields = row.split(",")
            if len(fields) != len(columns):
                sys.exit(f"merge_csv.py: {path}: row '{row}' does not have {len(columns)} columns")
            fields[0] = rename(fields[0])
            keyed[tuple(fields[i] for i in key_cols)] = ",".join(fields)  # dict: first position, last value
    if renames:
        note = "# op names: " + ", ".join(f"{o} -> {n}" for o, n in renames.items()) + \
               " (spelling of the shipped H200 profile)"
        if note not in comments:
            comments.append(note)

    tmp = args.out + ".merging"
    with open(tmp, "w") as f:
        f.write("\n".join(comments + [header] + list(keyed.values())) + "\n")
    os.replace(tmp, args.out)
    print(f"merged {len(args.inputs)} file(s) into {args.out}: {len(keyed)} rows")


if __name__ == "__main__":
    main()
