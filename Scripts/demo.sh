#!/usr/bin/env bash
# Sets up, builds, and runs a real job on the embedded farm (a coordinator and one worker
# process per core on loopback): which items is the shipped CNN (≥ 99 %) sure are bags?
# The job runs until R-hat < 1.01 and bulk/tail ESS ≥ 400 (about 1.5 minutes on 2 cores after the build).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift build -c release --product probefarm
.build/release/probefarm run Deploy/jobs/surely-a-bag.yaml --overwrite "$@"
echo
echo "the answer: runs/surely-a-bag/report.html (open it in a browser: the draws as images with the"
echo "            CNN's probabilities, the verdict, the figures beside the test set's, trace and rank plots)"
echo "            runs/surely-a-bag/summary.json (R-hat, ESS, why it stopped, the answer's figures, provenance)"
echo "            runs/surely-a-bag/inference_data.nc (ArviZ: arviz.from_netcdf), samples.npy, outputs.npy"
