#!/usr/bin/env python3
"""Browser check of `servesim report`: renders a small run's report, opens it in headless Chromium, and checks from
the screenshot that every chart rendered.

    check_report.py --servesim BUILD/servesim --out BUILD/artifacts/report [--source-dir SRC]

Steps: `servesim run scenarios/quickstart.toml` (a few hundred requests, with --timeseries so that the KV-usage and
queue-length charts are drawn), `servesim report`, then `chromium --headless --screenshot` at the page's width and
height (device scale 1); then the same for a disaggregated run (scenarios/disagg/explain-decode-starved.toml, a
decode pool too small, so that both the KV-transfer and the decode-wait CDFs have data; without --timeseries), whose
report must also hold the pools table and those two charts, and the quickstart's must not. The regions to check come
from the report's layout contract (sim/report/html_report.h): every element with data-rect="LEFT,TOP,WIDTH,HEIGHT"
must hold at least MIN_INK non-background pixels, and every colour a chart lists in data-colors must appear, at least
MIN_COLOR_PIXELS times, inside its data-plot rectangle (a chart whose data marks did not render fails even if its
axes did). Before trusting the screenshot the check is run on a blank image of the same size, where every region must
fail (so the check can fail).

Artifacts in --out: run/ (the run directory), report.html, report.png (the screenshot); run-disagg/,
report-disagg.html, report-disagg.png for the disaggregated run.
Exit status: 0 pass, 1 a check failed, 77 (ctest SKIP_RETURN_CODE) when Chromium or Pillow is missing
(.ci/install-deps.sh installs both).
"""
import argparse
import html.parser
import os
import shutil
import subprocess
import sys

SKIP = 77
MIN_INK = 150           # non-background pixels in a region
MIN_COLOR_PIXELS = 20   # pixels of each data colour inside a chart's plot area
COLOR_TOLERANCE = 24    # max per-channel difference from the listed colour
BACKGROUND_LEVEL = 245  # a pixel with every channel >= this counts as background (white, #fafafa)
EXPECTED_CHARTS = ["summary", "ttft-cdf", "tpot-cdf", "e2e-cdf", "ttft-breakdown", "tpot-breakdown", "e2e-breakdown"]
TIMESERIES_CHARTS = ["kv-usage", "queue-length"]
DISAGG_CHARTS = ["pools", "kv-transfer-cdf", "decode-wait-cdf"]


class Regions(html.parser.HTMLParser):
    """Collects the layout contract: elements with data-rect, and <body data-height>."""

    def __init__(self):
        super().__init__()
        self.regions = []
        self.height = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body" and "data-height" in a:
            self.height = int(a["data-height"])
        if "data-rect" in a:
            rect = tuple(int(v) for v in a["data-rect"].split(","))
            plot = tuple(int(v) for v in a["data-plot"].split(",")) if a.get("data-plot") else None
            colors = [c for c in a.get("data-colors", "").split(",") if c]
            self.regions.append({"id": a.get("id", "?"), "rect": rect, "plot": plot, "colors": colors})


def hex_rgb(color):
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


def check_image(img, regions):
    """Failures (strings) of the regions in `img` (an RGB PIL image)."""
    failures = []
    for r in regions:
        x, y, w, h = r["rect"]
        if x + w > img.width or y + h > img.height:
            failures.append(f"{r['id']}: rectangle {r['rect']} is outside the {img.width}x{img.height} screenshot")
            continue
        crop = img.crop((x, y, x + w, y + h))
        ink = sum(1 for p in crop.getdata() if min(p) < BACKGROUND_LEVEL)
        if ink < MIN_INK:
            failures.append(f"{r['id']}: blank ({ink} non-background pixels in {w}x{h})")
            continue
        if r["plot"]:
            px, py, pw, ph = r["plot"]
            plot = list(img.crop((px, py, px + pw, py + ph)).getdata())
            for color in r["colors"]:
                want = hex_rgb(color)
                n = sum(1 for p in plot if all(abs(p[i] - want[i]) <= COLOR_TOLERANCE for i in range(3)))
                if n < MIN_COLOR_PIXELS:
                    failures.append(f"{r['id']}: data colour {color} drawn on {n} pixels of the plot area")
    return failures


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servesim", required=True)
    ap.add_argument("--out", required=True)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--source-dir", default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("--requests", type=int, default=400)
    args = ap.parse_args()

    chromium = find_chromium()
    try:
        from PIL import Image
    except ImportError:
        print("SKIP: Pillow (python3-pil) is missing; .ci/install-deps.sh installs it")
        return SKIP
    if chromium is None:
        print("SKIP: chromium is missing; .ci/install-deps.sh installs it")
        return SKIP

    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    quickstart = os.path.join(args.source_dir, "scenarios", "quickstart.toml")
    disagg = os.path.join(args.source_dir, "scenarios", "disagg", "explain-decode-starved.toml")
    rc = check_report(args.servesim, chromium, Image, out, "", quickstart,
                      ["--set", f"workload.num_requests={args.requests}", "--set", "workload.arrival.rate=20"], True,
                      EXPECTED_CHARTS + TIMESERIES_CHARTS, DISAGG_CHARTS)
    if rc != 0:
        return rc
    # Without --timeseries: its idle prefill replicas' queue lengths would all lie on the x axis, one over another.
    return check_report(args.servesim, chromium, Image, out, "-disagg", disagg,
                        ["--set", f"workload.num_requests={args.requests // 2}"], False,
                        EXPECTED_CHARTS + DISAGG_CHARTS + ["timeseries-note"], TIMESERIES_CHARTS)


def check_report(servesim, chromium, Image, out, suffix, scenario, sets, timeseries, expected, absent):
    """Runs `scenario` with `sets` (and --timeseries when `timeseries`), renders its report and checks it: the regions
    `expected` there, those `absent` not (artifacts named with `suffix`)."""
    run_dir = os.path.join(out, "run" + suffix)
    cmd = [servesim, "run", scenario] + sets + ["--out", run_dir]
    if timeseries:
        cmd += ["--timeseries", os.path.join(run_dir, "timeseries.csv")]
    run(cmd, stdout=subprocess.DEVNULL)
    report = os.path.join(out, f"report{suffix}.html")
    run([servesim, "report", run_dir, "-o", report])

    parser = Regions()
    with open(report, encoding="utf-8") as f:
        parser.feed(f.read())
    ids = [r["id"] for r in parser.regions]
    missing = [i for i in expected if i not in ids]
    if missing or parser.height is None:
        print(f"FAIL: the report lacks regions {missing} (has {ids}) or <body data-height>")
        return 1
    extra = [i for i in absent if i in ids]
    if extra:
        print(f"FAIL: the report has regions {extra} it should not have")
        return 1
    for r in parser.regions:
        if r["id"] in expected and r["id"] not in ("summary", "pools", "timeseries-note") and not r["colors"]:
            print(f"FAIL: chart {r['id']} drew no data marks (data-colors is empty)")
            return 1

    width, height = 1000, parser.height + 20
    png = os.path.join(out, f"report{suffix}.png")
    profile = os.path.join(out, "chromium-profile")
    run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
         "--no-first-run", f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={width},{height}",
         "file://" + report], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90)
    shutil.rmtree(profile, ignore_errors=True)
    img = Image.open(png).convert("RGB")
    if img.size != (width, height):
        print(f"FAIL: screenshot is {img.size}, asked for {(width, height)}")
        return 1

    blank = check_image(Image.new("RGB", img.size, (255, 255, 255)), parser.regions)
    if len(blank) != len(parser.regions):
        print(f"FAIL: the check passes regions of a blank page: {len(blank)} of {len(parser.regions)} failed")
        return 1
    failures = check_image(img, parser.regions)
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"ok: {len(parser.regions)} regions rendered ({', '.join(ids)}); screenshot {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
