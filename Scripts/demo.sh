#!/usr/bin/env bash
# Sets up, builds, and runs a real job on the embedded farm (a coordinator and one worker
# process per core on loopback): which items is the shipped CNN (≥ 99 %) sure are bags?
# The job runs until R-hat < 1.01 and bulk/tail ESS ≥ 400 (5–10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift build -c release --product probefarm
.build/release/probefarm run Deploy/jobs/surely-a-bag.yaml --overwrite "$@"
echo
echo "the answer: runs/surely-a-bag/samples.npy (items as 28×28 images, shape (draws, 784))"
echo "            runs/surely-a-bag/outputs.npy (the CNN's probabilities at every draw)"
echo "            runs/surely-a-bag/summary.json (R-hat, ESS, why it stopped, provenance)"
