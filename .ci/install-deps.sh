#!/usr/bin/env bash
# Installs the Debian packages servesim builds against, if any are missing. Idempotent; apt-get only.
#   install-deps.sh        the build and the test suite (make build, make test), including the external tests:
#                          headless Chromium and Pillow for the report's browser check (tests/report/), Jupyter's
#                          nbconvert and kernel with matplotlib and pandas for the notebooks (notebooks/), PyYAML
#                          for the check of the sweep's Kubernetes manifest (scenarios/sweeps/)
#   install-deps.sh fuzz   also clang 14 and its libFuzzer runtime (make test-sanitize and make fuzz: one clang build)
set -euo pipefail
pkgs=(build-essential cmake libboost-graph-dev libboost-random-dev libeigen3-dev libtomlplusplus-dev
      libcli11-dev catch2 nlohmann-json3-dev libfmt-dev libbenchmark-dev
      chromium fonts-dejavu-core python3-pil
      jupyter-nbconvert python3-nbconvert python3-ipykernel python3-matplotlib python3-pandas
      python3-yaml)
if [ "${1:-}" = "fuzz" ]; then pkgs+=(clang-14 libclang-rt-14-dev); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
