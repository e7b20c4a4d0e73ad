#!/usr/bin/env bash
# Reproduces the papers' figures with the shipped models and jobs, and prints them as the
# Markdown tables of docs/reproduced.md:
#   bayes-trex   BAYES-TREX's Fashion-MNIST Table 2: for each class, the CNN's confidence at
#                draws from its confident level set (σ = 0.05) against the test set's items of
#                that class (Deploy/jobs/bayes-trex/confident-*.yaml); and the ambiguous
#                T-shirt/Shirt level set (Deploy/jobs/shirt-or-tshirt.yaml)
#   contrast     the probing paper's CNN-vs-MLP contrast in the VAE's latent space
#                (Deploy/jobs/cnn-vs-mlp.yaml): how often the two disagree at the draws and on
#                the test set
# Usage: Scripts/reproduce.sh [--no-run] [bayes-trex|contrast ...] [-- extra probefarm run flags]
# Each job writes runs/…/report.html, where the draws are to be seen; --no-run only prints the
# tables (and draws docs/figures/bayes-trex-confident.png) from the run directories there are.
set -euo pipefail
cd "$(dirname "$0")/.."
sets=()
no_run=false
[ "${1:-}" = "--no-run" ] && { no_run=true; shift; }
while [ $# -gt 0 ] && [ "$1" != "--" ]; do sets+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#sets[@]} -gt 0 ] || sets=(bayes-trex contrast)
$no_run || swift build -c release --product probefarm >/dev/null
bin=.build/release/probefarm

run() {  # a job file, then extra flags; writes the job's own output directory
  local job=$1; shift
  $no_run || "$bin" run "$job" --overwrite --quiet "$@" >/dev/null
}

table() {  # run directories → Markdown rows
  python3 - "$@" <<'PY'
import json, sys
for run in sys.argv[1:]:
    s = json.load(open(f"{run}/summary.json"))
    a = s["answer"]
    d, r = a["draws"]["terms"][0], a.get("reference", {}).get("terms", [{}])[0]
    name = s["name"]
    verdict = "✓" if s["converged"] else "✗"
    diag = s["diagnostics"]
    def conf(t):
        c = t.get("target_confidence", {})
        return "; ".join(f"p{k} {v['mean']:.3f} ± {v['sd']:.3f}" for k, v in sorted(c.items()) if v["mean"] is not None) or "—"
    if "inside" in d:
        print(f"| {name} | {conf(d)} | {100 * d['inside']:.1f} % | {conf(r)} (n = {r.get('items', '—')}) | {100 * r.get('inside', float('nan')):.1f} % "
              f"| {verdict} R-hat {diag['max_rhat']:.4f}, ESS {diag['min_ess_bulk']:.0f} | {s['chains']} × {s['draws_per_chain']} | {s['wall_time_seconds']:.0f} s |")
    else:
        dd = [t for t in a["draws"]["terms"] if "disagreement" in t]
        rr = [t for t in a.get("reference", {}).get("terms", []) if "disagreement" in t]
        print(f"| {name} | {100 * dd[0]['disagreement']:.1f} % | {100 * rr[0]['disagreement']:.1f} % "
              f"| {verdict} R-hat {diag['max_rhat']:.4f}, ESS {diag['min_ess_bulk']:.0f} | {s['chains']} × {s['draws_per_chain']} | {s['wall_time_seconds']:.0f} s |")
PY
}

figure() {  # PNG, then run directories: one row of 12 draws (spread over the chains) per run
  python3 - "$@" <<'PY'
import json, struct, sys, zlib
import numpy as np
out, runs = sys.argv[1], sys.argv[2:]
rows = []
for run in runs:
    s = json.load(open(f"{run}/summary.json"))
    x = np.load(f"{run}/samples.npy").reshape(s["chains"], -1, 28, 28)
    picks = [x[c, (k + 1) * x.shape[1] // 3 - 1] for c in range(min(4, x.shape[0])) for k in range(3)]
    rows.append(np.concatenate([np.pad(p, 1, constant_values=0.15) for p in picks], axis=1))
img = (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255).astype(np.uint8)
img = np.kron(img, np.ones((2, 2), dtype=np.uint8))
raw = b"".join(b"\0" + r.tobytes() for r in img)
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8, 0, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
open(out, "wb").write(png)
print(f"reproduce: wrote {out}", file=sys.stderr)
PY
}

for set in "${sets[@]}"; do
  case "$set" in
    bayes-trex)
      dirs=()
      for k in 0 1 2 3 4 5 6 7 8 9; do
        echo "reproduce: bayes-trex confident-$k" >&2
        run "Deploy/jobs/bayes-trex/confident-$k.yaml" "$@"
        dirs+=("runs/bayes-trex/confident-$k")
      done
      echo "reproduce: shirt-or-tshirt" >&2
      run Deploy/jobs/shirt-or-tshirt.yaml "$@"
      figure docs/figures/bayes-trex-confident.png "${dirs[@]}" runs/shirt-or-tshirt
      echo
      echo "| job | CNN confidence at the draws | draws in the level set | on the test set's items of the class | test items in the level set | verdict | chains × draws | sampling |"
      echo "|---|---|---|---|---|---|---|---|"
      table "${dirs[@]}" runs/shirt-or-tshirt
      ;;
    contrast)
      echo "reproduce: cnn-vs-mlp" >&2
      run Deploy/jobs/cnn-vs-mlp.yaml "$@"
      echo
      echo "| job | CNN and MLP disagree at the draws | on the test set | verdict | chains × draws | sampling |"
      echo "|---|---|---|---|---|---|"
      table runs/cnn-vs-mlp
      ;;
    *) echo "reproduce: unknown set '$set' (bayes-trex, contrast)" >&2; exit 64 ;;
  esac
done
