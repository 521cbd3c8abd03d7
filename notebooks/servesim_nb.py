"""Shared by the notebooks: where the servesim binary and the figure directory are, running a scenario, and reading
its run directory with pandas.

Environment:
  SERVESIM_BIN      the servesim binary (default: build/servesim under the repository root)
  SERVESIM_FIGURES  where the notebooks write their PNGs (default: build/notebook-figures under the repository root)
"""
import json
import os
import subprocess
import tempfile

import pandas as pd

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SERVESIM = os.path.abspath(os.environ.get("SERVESIM_BIN") or os.path.join(ROOT, "build", "servesim"))
FIGURES = os.path.abspath(os.environ.get("SERVESIM_FIGURES") or os.path.join(ROOT, "build", "notebook-figures"))
if not os.path.exists(SERVESIM):
    raise FileNotFoundError(f"{SERVESIM} does not exist: build it (`make demo`) or set SERVESIM_BIN")


class Run:
    """A finished run: summary (dict of summary.json), requests (DataFrame of requests.csv) and timeseries
    (DataFrame of timeseries.csv, or None when the run was not asked for one)."""

    def __init__(self, summary, requests, timeseries):
        self.summary = summary
        self.requests = requests
        self.timeseries = timeseries


def run(scenario, sets=None, timeseries=False):
    """Runs `servesim run scenarios/<scenario>` with --set path=VALUE for each item of `sets` (and --timeseries when
    asked) in a temporary directory; returns a Run. A failing run raises RuntimeError with servesim's message."""
    with tempfile.TemporaryDirectory() as out:
        args = [SERVESIM, "run", os.path.join(ROOT, "scenarios", scenario), "--out", out]
        for key, value in (sets or {}).items():
            args += ["--set", f"{key}={value}"]
        if timeseries:
            args += ["--timeseries", os.path.join(out, "timeseries.csv")]
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        requests = pd.read_csv(os.path.join(out, "requests.csv"))
        ts = pd.read_csv(os.path.join(out, "timeseries.csv")) if timeseries else None
        return Run(summary, requests, ts)


def cohorts(values):
    """Row positions of the P50 cohort (ranks [floor(0.45 n), ceil(0.55 n))) and the P99 cohort (ranks
    [floor(0.99 n), n)) of `values`, ranked ascending with ties by position: the cohorts of `servesim report`."""
    n = len(values)
    order = sorted(range(n), key=lambda i: (values[i], i))
    begin = n * 45 // 100
    end = max(begin + 1, (n * 55 + 99) // 100)
    return order[begin:end], order[min(n * 99 // 100, n - 1):]


def savefig(fig, name):
    """Writes `fig` as FIGURES/<name> (PNG, 100 dpi) and returns the path."""
    os.makedirs(FIGURES, exist_ok=True)
    path = os.path.join(FIGURES, name)
    fig.savefig(path, dpi=100)
    print("wrote", path)
    return path
