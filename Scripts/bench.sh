#!/usr/bin/env bash
# Benchmarks that print figures (never timed tests). One core (taskset -c 0).
#   Scripts/bench.sh engine        CNN+decoder and MLP gradients vs the JAX peer (shared/peers)
#   Scripts/bench.sh diagnostics   all diagnostics, 64 chains x 2000 draws x 784 quantities, vs ArviZ
#   Scripts/bench.sh sampler       full MALA steps on the same probes vs JAX's fused MALA (scanu)
#   Scripts/bench.sh memory        PSS of two processes mapping one 200 MB weight file
#   Scripts/bench.sh farm          farm throughput, 2 worker processes vs 1; PSS of N workers on one model
#   Scripts/bench.sh farm-memory   only the latter: the installed binary, then the development build
#   Scripts/bench.sh ingest        coordinator ingest: 1,000 DEALERs sending segment results and heartbeats
#   Scripts/bench.sh mixing        NUTS on 20-d and 100-d badly scaled correlated Gaussians vs NumPyro's NUTS:
#                                  ESS per gradient and ESS/s (ArviZ on both; needs numpyro + arviz in JAX_PYTHON)
# Peers run in the same invocation when their Python is found:
#   JAX_PYTHON (default ../jaxenv/bin/python), ARVIZ_PYTHON (default ../pyenv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
PEERS=${PEERS:-../shared/peers}
JAX_PYTHON=${JAX_PYTHON:-../jaxenv/bin/python}
ARVIZ_PYTHON=${ARVIZ_PYTHON:-../pyenv/bin/python}
OUT=${BENCH_OUT:-.build/bench}
mkdir -p "$OUT"
PIN="taskset -c 0"
command -v taskset >/dev/null || PIN=""

swift build -c release --product probefarm-bench >/dev/null
BENCH=.build/release/probefarm-bench

engine() {
  # ProbeFarm runs before and after the peer; the ratio uses the mean of the two, so a
  # machine whose speed drifts over the minutes the peer takes does not favour either.
  $PIN "$BENCH" engine --json "$OUT/probefarm-engine.json"
  if [ -x "$JAX_PYTHON" ] && "$JAX_PYTHON" -c "import jax" 2>/dev/null; then
    $PIN "$JAX_PYTHON" "$PEERS/jax_mala_bench.py" --modes call,scanu --json "$OUT/jax-engine.json" | grep -E "^(vae_cnn|mlp) "
    $PIN "$BENCH" engine --json "$OUT/probefarm-engine-after.json"
    python3 - "$OUT/probefarm-engine.json" "$OUT/probefarm-engine-after.json" "$OUT/jax-engine.json" <<'PY'
import json, sys
before, after = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
jax = json.load(open(sys.argv[3]))["results"]
print("\n| case | batch | ProbeFarm grad/s (before, after JAX) | JAX best grad/s (mode) | ProbeFarm/JAX (mean) |")
print("|---|---|---|---|---|")
for r, s in zip(before, after):
    peers = [j for j in jax if j["case"] == r["case"] and j["batch"] == r["batch"]]
    best = max(peers, key=lambda j: j["grad_evals_per_s_total"])
    mean = (r["gradientsPerSecondTotal"] + s["gradientsPerSecondTotal"]) / 2
    ratio = mean / best["grad_evals_per_s_total"]
    print(f"| {r['case']} | {r['batch']} | {r['gradientsPerSecondTotal']:.1f}, {s['gradientsPerSecondTotal']:.1f} | "
          f"{best['grad_evals_per_s_total']:.1f} ({best['mode']}) | {ratio:.2f}x |")
PY
  else
    echo "bench: no JAX at $JAX_PYTHON (python3 -m venv ../jaxenv && ../jaxenv/bin/pip install jax); ProbeFarm figures only"
  fi
}

diagnostics() {
  local npy="$OUT/draws-64x2000x784.npy"
  if [ ! -f "$npy" ]; then
    python3 - "$npy" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(1)
c, n, d = 64, 2000, 784
rho = np.linspace(0.0, 0.95, d)
x = np.empty((c, n, d))
x[:, 0] = rng.normal(size=(c, d))
for t in range(1, n):
    x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * rng.normal(size=(c, d))
np.save(sys.argv[1], x)
PY
  fi
  $PIN "$BENCH" diagnostics "$npy" --json "$OUT/probefarm-diagnostics.json"
  if [ -x "$ARVIZ_PYTHON" ] && "$ARVIZ_PYTHON" -c "import arviz" 2>/dev/null; then
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $PIN "$ARVIZ_PYTHON" - "$npy" "$OUT/probefarm-diagnostics.json" <<'PY'
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, arviz as az
x = np.load(sys.argv[1])
ds = az.convert_to_dataset(x)
t0 = time.perf_counter()
r = {"rhat": az.rhat(ds, method="rank"), "rhat_split": az.rhat(ds, method="split"),
     "ess_bulk": az.ess(ds, method="bulk"), "ess_tail": az.ess(ds, method="tail"),
     "ess_mean": az.ess(ds, method="mean"), "ess_sd": az.ess(ds, method="sd"),
     "mcse_mean": az.mcse(ds, method="mean"), "mcse_sd": az.mcse(ds, method="sd")}
t = time.perf_counter() - t0
ours = json.load(open(sys.argv[2]))
print(f"ArviZ {az.__version__} diagnostics: {x.shape[2]} quantities in {t:.2f} s")
first = {k: float(v["x"].values.ravel()[0]) for k, v in r.items()}
agree = all(abs(first[k] - ours["first"][k]) <= 1e-9 * abs(first[k]) for k in ("rhat", "ess_bulk", "ess_tail", "mcse_mean"))
print(f"ProbeFarm/ArviZ speed: {t / ours['seconds']:.1f}x  (values of x[0] agree to 1e-9: {agree})")
PY
  else
    echo "bench: no ArviZ at $ARVIZ_PYTHON; ProbeFarm figures only"
  fi
}

sampler() {
  # As engine(): ProbeFarm before and after the peer, the ratio from their mean.
  $PIN "$BENCH" sampler --json "$OUT/probefarm-sampler.json"
  if [ -x "$JAX_PYTHON" ] && "$JAX_PYTHON" -c "import jax" 2>/dev/null; then
    $PIN "$JAX_PYTHON" "$PEERS/jax_mala_bench.py" --modes scanu --json "$OUT/jax-sampler.json" | grep -E "^(vae_cnn|mlp) "
    $PIN "$BENCH" sampler --json "$OUT/probefarm-sampler-after.json"
    python3 - "$OUT/probefarm-sampler.json" "$OUT/probefarm-sampler-after.json" "$OUT/jax-sampler.json" <<'PY'
import json, sys
before, after = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
jax = json.load(open(sys.argv[3]))["results"]
print("\n| case | batch | ProbeFarm MALA steps/s (before, after JAX) | JAX fused MALA (scanu) steps/s | ProbeFarm/JAX (mean) |")
print("|---|---|---|---|---|")
for r, s in zip(before, after):
    j = [x for x in jax if x["case"] == r["case"] and x["batch"] == r["batch"] and x["mode"] == "scanu"][0]
    # scanu: grad_evals = batch * (steps + 1) per call; one gradient per MALA step.
    steps = j["grad_evals_per_s_total"] * 20 / 21
    mean = (r["stepsPerSecondTotal"] + s["stepsPerSecondTotal"]) / 2
    print(f"| {r['case']} | {r['batch']} | {r['stepsPerSecondTotal']:.1f}, {s['stepsPerSecondTotal']:.1f} | {steps:.1f} | {mean / steps:.2f}x |")
PY
  else
    echo "bench: no JAX at $JAX_PYTHON; ProbeFarm figures only"
  fi
}

memory() {
  # Two processes map the same 200 MB weight file: MAP_SHARED means one page-cache copy,
  # so each process's proportional set size (PSS) should be about half the file.
  local big="$OUT/big-200mb.safetensors"
  [ -f "$big" ] || "$BENCH" make-big "$big" >/dev/null
  local fifo1="$OUT/hold1.out" fifo2="$OUT/hold2.out"
  "$BENCH" hold "$big" 20 > "$fifo1" & local p1=$!
  "$BENCH" hold "$big" 20 > "$fifo2" & local p2=$!
  for _ in $(seq 1 100); do grep -q ready "$fifo1" 2>/dev/null && grep -q ready "$fifo2" 2>/dev/null && break; sleep 0.2; done
  local size pss1 pss2 rss1
  size=$(( $(stat -c %s "$big") / 1024 ))
  pss1=$(awk '/^Pss:/ {print $2}' /proc/$p1/smaps_rollup)
  pss2=$(awk '/^Pss:/ {print $2}' /proc/$p2/smaps_rollup)
  rss1=$(awk '/^Rss:/ {print $2}' /proc/$p1/smaps_rollup)
  kill $p1 $p2 2>/dev/null || true
  wait $p1 $p2 2>/dev/null || true
  echo "memory: weight file $((size / 1024)) MiB; process 1 RSS $((rss1 / 1024)) MiB, PSS $((pss1 / 1024)) MiB; process 2 PSS $((pss2 / 1024)) MiB"
  echo "memory: PSS of both together $(((pss1 + pss2) / 1024)) MiB = $(python3 -c "print(f'{($pss1 + $pss2) / $size:.2f}')") copies of the file"
}

farm() {
  # Throughput of the embedded farm with 1 and 2 worker processes (the same draws), then
  # the PSS of N workers mapping one fetched 200 MB model.
  local P=.build/release/probefarm
  swift build -c release --product probefarm >/dev/null
  local job="$OUT/farm-throughput.yaml" models=$PWD/Deploy/models
  cat > "$job" <<JOB
name: farm-throughput
seed: 3
models: {cnn: $models/fashion-cnn.safetensors, decoder: $models/fashion-vae-decoder.safetensors}
space: {latent: {decoder: decoder, prior: standard-normal}}
probe: [{level-set: {model: cnn, target: {ambiguous: [0, 6]}, sigma: 0.05}}]
sampler: {method: mala, warmup: 300, draws: 700, batch: 4}
chains: 16
JOB
  # Sampling rate (the coordinator's loop, not the run directory written after it), in
  # the order 1, 2, 2, 1 workers: the machine's speed drifts over minutes, and the means
  # of the two runs each then favour neither.
  local rates=() n
  for n in 1 2 2 1; do
    "$P" run "$job" --workers "$n" -o "$OUT/farm-$n" --overwrite --cache "$OUT/cache" --quiet >/dev/null
    rates+=("$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['chains'] * (s['warmup'] + s['draws_per_chain']) / s['wall_time_seconds'])" "$OUT/farm-$n/summary.json")")
    echo "farm: $n worker process(es): ${rates[-1]%.*} chain-iterations/s"
  done
  cmp -s "$OUT/farm-1/samples.npy" "$OUT/farm-2/samples.npy" && echo "farm: samples.npy identical for 1 and 2 workers"
  echo "farm: 2 workers / 1 worker = $(python3 -c "print(f'{(${rates[1]} + ${rates[2]}) / (${rates[0]} + ${rates[3]}):.2f}x')") (means of two runs each)"

  farm_memory
}

farm_memory() {
  local big="$OUT/big-200mb.safetensors"
  [ -f "$big" ] || "$BENCH" make-big "$big" >/dev/null
  swift build -c release --product probefarm >/dev/null
  # What the worker hosts run: the binary Scripts/install.sh builds (Swift runtime and
  # Foundation linked in). Then the development build, whose Swift runtime is shared
  # libraries (each process relocates its own copy of their data: ~1.5 MiB more apiece).
  Scripts/install.sh "$OUT/prefix" >/dev/null
  worker_pss "$OUT/prefix/bin/probefarm" "installed (Scripts/install.sh)"
  worker_pss .build/release/probefarm "development build (.build/release)"
}

# The PSS of FARM_WORKERS (default 4) workers running a job on the 200 MB model, in all and
# of their mappings of the cached weight file alone: sampled 12 times 0.25 s apart, once
# the job is under way (a worker's heap grows within a segment as its draws arrive and is
# given back after it, so one sample can fall anywhere in between). The workers are
# `probefarm worker` processes of a coordinator run from a copy of the installed binary,
# which shares none of their code or files but the system's libraries, as on a host of
# their own. (Under `probefarm run` the coordinator maps the same cached weights and code,
# and so takes a share of them: the workers' sum would flatter them.)
worker_pss() {
  local P=$1 label=$2 big="$OUT/big-200mb.safetensors" workers=${FARM_WORKERS:-4}
  cat > "$OUT/farm-big.yaml" <<JOB
name: farm-big
seed: 1
models: {big: $PWD/$big}
space: {data: {dimension: 10000}}
probe: [{fixed-value: {model: big, value: 0.0}}]
sampler: {method: mala, warmup: 50, draws: 400, batch: 1}
chains: $workers
JOB
  rm -rf "$OUT/cache-big" "$OUT/farm-big"  # an old journal would end the wait below at once
  cp "$OUT/prefix/bin/probefarm" "$OUT/coordinator-copy"
  "$OUT/coordinator-copy" coordinator "$OUT/farm-big.yaml" --bind tcp://127.0.0.1:47123 -o "$OUT/farm-big" --quiet --segment 10 >/dev/null &
  local run=$!
  for i in $(seq 1 "$workers"); do
    OPENBLAS_NUM_THREADS=1 "$P" worker --connect tcp://127.0.0.1:47123 --cache "$OUT/cache-big" --name "pss-$i" --quiet >/dev/null &
  done
  for _ in $(seq 1 600); do [ "$(stat -c %s "$OUT/farm-big/journal.pfj" 2>/dev/null || echo 0)" -gt 20000 ] && break; sleep 0.2; done
  local size
  size=$(( $(stat -c %s "$big") / 1024 ))
  cat > "$OUT/pss.py" <<'PY'
import sys
total = weights = 0
for pid in sys.argv[1:]:
    mapping = None
    for line in open(f"/proc/{pid}/smaps"):
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            mapping = head[5] if len(head) > 5 else ""
        elif head[0] == "Pss:":
            total += int(head[1])
            if "/cache-big/" in mapping:
                weights += int(head[1])
print(f"{len(sys.argv) - 1},{total},{weights}")
PY
  local samples=()
  for _ in $(seq 1 12); do
    samples+=("$(python3 "$OUT/pss.py" $(pgrep -f "worker --connect .*--cache $OUT/cache-big"))")
    sleep 0.25
  done
  wait $run || true
  wait
  python3 - "$size" "$label" "${samples[@]}" <<'PY'
import sys, statistics
size, label = int(sys.argv[1]), sys.argv[2]
rows = [tuple(map(int, s.split(","))) for s in sys.argv[3:]]
count = max(r[0] for r in rows)
totals = sorted(r[1] for r in rows if r[0] == count)
weights = statistics.median(r[2] for r in rows if r[0] == count)
mib = lambda k: k / 1024
print(f"farm: {label}: {count} worker processes on a host of their own mapping a {size // 1024} MiB model ({len(totals)} samples): "
      f"PSS of the weight mappings {mib(weights):.0f} MiB = {weights / size:.2f}x the file; whole processes "
      f"median {mib(statistics.median(totals)):.0f} MiB = {statistics.median(totals) / size:.2f}x "
      f"(min {totals[0] / size:.2f}x, max {totals[-1] / size:.2f}x)")
PY
}

mixing() {
  $PIN "$BENCH" mixing --dir "$OUT" --json "$OUT/probefarm-mixing.json"
  if [ -x "$JAX_PYTHON" ] && "$JAX_PYTHON" -c "import numpyro, arviz" 2>/dev/null; then
    $PIN "$JAX_PYTHON" Scripts/peers/numpyro_mixing_bench.py --dir "$OUT" --probefarm "$OUT/probefarm-mixing.json" 2>&1 \
      | grep -vE "Warning|warn\(|ArviZ is undergoing|Some upcoming|For details"
  else
    echo "bench: no NumPyro at $JAX_PYTHON (../jaxenv/bin/pip install jax numpyro arviz); ProbeFarm figures only"
  fi
}

case "$what" in
  engine) engine ;;
  memory) memory ;;
  farm) farm ;;
  farm-memory) farm_memory ;;
  ingest) "$BENCH" ingest --connections "${CONNECTIONS:-1000}" --results "${RESULTS:-2000}" --dir "$OUT" ;;
  sampler) sampler ;;
  mixing) mixing ;;
  diagnostics) diagnostics ;;
  all) engine; sampler; diagnostics; memory ;;
  *) echo "usage: Scripts/bench.sh [engine|sampler|mixing|diagnostics|memory|farm|farm-memory|ingest|all]" >&2; exit 64 ;;
esac
