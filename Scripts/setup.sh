#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build and test ProbeFarm.
# Idempotent: does nothing when everything is present. `--build-only` (the container
# image's build stage) skips what only the tests need: chromium, netcdf-bin, Python.
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=false
[ "${1:-}" = "--build-only" ] && build_only=true
packages=(libopenblas-dev libzmq3-dev libnetcdf-dev pkg-config)
# The tests: a real browser for report.html, ncdump, network namespaces, systemd units.
$build_only || packages+=(netcdf-bin chromium fonts-dejavu-core iproute2 util-linux systemd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
# Python for the tests' reference checks (ArviZ reading inference_data.nc), in a virtual
# environment of its own: the product never runs Python.
if ! $build_only && ! .venv-fixtures/bin/python -c "import arviz, netCDF4, yaml" 2>/dev/null; then
  echo "setup: installing the fixture checks' Python packages into .venv-fixtures"
  python3 -m venv .venv-fixtures
  .venv-fixtures/bin/pip install --quiet --disable-pip-version-check -r Scripts/fixtures/requirements.txt
fi
command -v swift >/dev/null || { echo "setup: Swift 6 is required (swift.org/install)" >&2; exit 69; }
echo "setup: ready ($(swift --version 2>/dev/null | head -1))"
