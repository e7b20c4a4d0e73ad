#!/usr/bin/env bash
# Runs every test: set-up if needed, an optimised build, then the whole suite.
# Tests run in release mode (numerical kernels are too slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift build -c release --build-tests
swift test -c release --skip-build "$@"
