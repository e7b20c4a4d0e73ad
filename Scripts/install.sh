#!/usr/bin/env bash
# Builds the probefarm command (release, with the Swift runtime and Foundation linked in
# statically, so that the binary needs only libzmq, OpenBLAS and the C/C++ runtime) and
# installs it as PREFIX/bin/probefarm (default /usr/local). Run Scripts/setup.sh first.
# The container image (Deploy/container/Containerfile) runs exactly these two scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
# A build folder of its own: the static link must not replace the test build in .build/.
scratch=.build-static
swift build -c release --product probefarm --static-swift-stdlib --scratch-path "$scratch"
bin=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/probefarm
install -D -m 0755 "$bin" "$prefix/bin/probefarm"
echo "install: $prefix/bin/probefarm ($("$prefix/bin/probefarm" --version))"
