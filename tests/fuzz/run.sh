#!/usr/bin/env bash
# Runs every libFuzzer harness of a fuzz build for a given time each (make fuzz). Usage:
#   tests/fuzz/run.sh BUILD_DIR SECONDS TARGET...
# Each target fuzzes BUILD_DIR/fuzz-corpus/TARGET (kept between runs, started from tests/fuzz/corpus/TARGET) and
# saves any finding (crash, uncaught exception other than InputError, sanitizer report, leak, timeout, out of
# memory) as BUILD_DIR/fuzz-findings/TARGET/<kind>-<sha1> (earlier runs' findings stay there); its log is
# BUILD_DIR/fuzz-logs/TARGET.log. Exits 1 if any target has a finding. A finding is replayed with
# `BUILD_DIR/fuzz_TARGET FILE`; once fixed, the file goes to tests/data/fuzz-regressions/TARGET/
# (tests/unit/test_fuzz_regressions.cpp replays every file there).
set -uo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 BUILD_DIR SECONDS TARGET..." >&2
  exit 2
fi
build=$1
seconds=$2
shift 2
src="$(cd "$(dirname "$0")/../.." && pwd)"
# Per input: 10 s is far beyond any legitimate one (a hang); 2 GiB of memory likewise.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
failed=()
for t in "$@"; do
  corpus="$build/fuzz-corpus/$t"
  findings="$build/fuzz-findings/$t"
  log="$build/fuzz-logs/$t.log"
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  "$build/fuzz_$t" "$corpus" "$src/tests/fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$findings/" -print_final_stats=1 -close_fd_mask=1 >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  units=$(ls "$corpus" | wc -l)
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    echo "fuzz_$t: FINDING after ${runs:-?} runs (exit $rc): $(ls -t "$findings" | head -1) -- see $log"
    grep -m1 -E "ERROR: |runtime error:|terminate called|==[0-9]+==" "$log" | sed 's/^/  /'
  else
    echo "fuzz_$t: ${seconds} s, ${runs:-?} runs, corpus ${units} inputs, no finding"
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "findings in: ${failed[*]}"
  exit 1
fi
