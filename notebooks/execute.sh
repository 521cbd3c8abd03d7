#!/usr/bin/env bash
# Executes one notebook headless, as the test suite does (ctest label external):
#   notebooks/execute.sh PYTHON NOTEBOOK SERVESIM_BIN OUT_DIR
# runs `PYTHON -m nbconvert --to notebook --execute` on NOTEBOOK with SERVESIM_BIN set and SERVESIM_FIGURES=OUT_DIR,
# so OUT_DIR receives the notebook's PNGs and its executed copy. A cell that raises fails the run (exit 1).
# Exit 77 (ctest SKIP_RETURN_CODE) only when PYTHON or one of nbconvert, ipykernel, matplotlib, pandas is missing;
# .ci/install-deps.sh installs them (Debian: python3-nbconvert python3-ipykernel python3-matplotlib python3-pandas).
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 PYTHON NOTEBOOK SERVESIM_BIN OUT_DIR" >&2
  exit 2
fi
py=$1 nb=$2 bin=$3 out=$4
# The kernel runs in the notebook's folder: a relative SERVESIM_BIN is made absolute from where this was called.
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
if ! command -v "$py" >/dev/null 2>&1; then
  echo "SKIP: $py is missing"
  exit 77
fi
if ! "$py" -c "import nbconvert, ipykernel, matplotlib, pandas" 2>/dev/null; then
  echo "SKIP: $py lacks nbconvert, ipykernel, matplotlib or pandas (.ci/install-deps.sh installs Debian's, for /usr/bin/python3)"
  exit 77
fi
rm -rf "$out"
mkdir -p "$out"
export SERVESIM_BIN="$bin" SERVESIM_FIGURES="$out" MPLBACKEND=Agg PYDEVD_DISABLE_FILE_VALIDATION=1 \
  PYTHONDONTWRITEBYTECODE=1
"$py" -m nbconvert --to notebook --execute --ExecutePreprocessor.timeout=120 \
  --ExecutePreprocessor.kernel_name=python3 --output-dir "$out" "$nb"
ls "$out"/*.png >/dev/null 2>&1 || { echo "FAIL: $nb wrote no PNG to $out"; exit 1; }
echo "ok: $nb -> $out"
