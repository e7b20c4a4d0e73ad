#!/usr/bin/env bash
# The Slurm route, for real: installs Debian's slurm-wlm and munge, configures slurmctld and
# slurmd for this one machine, submits Deploy/slurm/probefarm.sbatch with 2 tasks, and
# checks the run directory (converged, samples identical to `probefarm run` of the same
# job); then submits a longer job, scancels it mid-run, checks the journal it leaves, and
# submits again: the resubmitted job resumes and gives the samples of `probefarm run`.
# Needs root. Exit 77 (skip) only where Slurm cannot run here, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
probefarm=${PROBEFARM:-$root/.build/release/probefarm}
[ -x "$probefarm" ] || { echo "slurm-test: build first (swift build -c release)"; exit 66; }
[ "$(id -u)" -eq 0 ] || { echo "slurm-test: skipped: needs root to run slurmctld/slurmd"; exit 77; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/probefarm-slurm.XXXXXX)
etc=$work/etc
mkdir -p "$etc" "$work/state" "$work/spool" "$work/log" "$work/runs"
chmod 755 "$work"
host=$(hostname -s)
cpus=$(nproc)

cleanup() {
  set +e
  scancel --quiet --user=root 2>/dev/null
  # Every daemon and process of this test names $work on its command line.
  pkill -f "$work" 2>/dev/null
  sleep 1
  pkill -9 -f "$work" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "slurm-test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# munge: its own key and socket, so that nothing of the machine's is touched.
mkdir -p "$work/munge"
chown munge:munge "$work/munge" 2>/dev/null || true
chmod 700 "$work/munge"
dd if=/dev/urandom bs=1 count=1024 of="$work/munge/munge.key" 2>/dev/null
chown munge:munge "$work/munge/munge.key"
chmod 400 "$work/munge/munge.key"
sock=$work/munge/munge.socket.2
# Daemons get no stdout/stderr of ours: a test that reads this script's output to its end
# would otherwise wait for them.
runuser -u munge -- munged --key-file="$work/munge/munge.key" --socket="$sock" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed" --force \
  </dev/null >/dev/null 2>&1

cat > "$etc/slurm.conf" <<CONF
ClusterName=probefarm-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait=30
SchedulerType=sched/backfill
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF=$etc/slurm.conf
slurmctld -f "$SLURM_CONF" </dev/null >/dev/null 2>&1
slurmd -f "$SLURM_CONF" </dev/null >/dev/null 2>&1
for _ in $(seq 1 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE "^idle" && break
  sleep 1
done
sinfo -h -o %T | grep -qE "^idle" || { echo "slurm-test: FAIL: the node did not come up"; sinfo; tail -20 "$work/log/slurmd.log" "$work/log/slurmctld.log"; exit 1; }
echo "slurm-test: slurmctld and slurmd up on $host ($cpus CPUs)"

export PROBEFARM=$probefarm PATH=$(dirname "$probefarm"):$PATH

# Waits for a Slurm job to leave the queue; prints its final state.
wait_job() {
  local id=$1 timeout=$2 state=""
  for _ in $(seq 1 "$timeout"); do
    state=$(scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
    case $state in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
    sleep 1
  done
  echo "$state"
}

same_samples() {
  local a=$1 b=$2 f
  for f in samples.npy stats.npy; do
    cmp -s "$a/$f" "$b/$f" || { echo "slurm-test: FAIL: $f differs between $a and $b"; return 1; }
  done
}

# 1. A job that converges: sbatch with 2 tasks vs `probefarm run`.
cat > "$work/linear.yaml" <<'JOB'
name: slurm-linear
seed: 11
models: {reg: reg.safetensors}
space:
  data: {dimension: 3, lower: [0, -3, -3], upper: [1, 3, 3]}
probe:
  - fixed-value: {model: reg, value: 1.0}
sampler: {method: mala, warmup: 200, draws: 100, batch: 2}
chains: 4
stop: {rhat: 1.02, ess-bulk: 300, ess-tail: 300, max-draws: 25600}
JOB
python3 - "$work/reg.safetensors" <<'PY'
import json, struct, sys
# A linear regressor y = w·x + b as a safetensors file (the format is a JSON header + raw F32).
w, b = [0.8, -0.5, 0.3], [0.2]
meta = {"probefarm.architecture": json.dumps({"input": [3], "output": "value", "layers": [{"op": "linear", "weight": "weight", "bias": "bias"}]})}
header = {"__metadata__": meta, "weight": {"dtype": "F32", "shape": [1, 3], "data_offsets": [0, 12]},
          "bias": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}}
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + struct.pack("<4f", *w, *b))
PY
"$probefarm" run "$work/linear.yaml" --workers 2 -o "$work/runs/linear-local" --cache "$work/cache-local" --quiet >/dev/null
id=$(sbatch --parsable --ntasks=2 --output="$work/linear-%j.out" Deploy/slurm/probefarm.sbatch "$work/linear.yaml" "$work/runs/linear")
echo "slurm-test: submitted job $id (2 tasks)"
state=$(wait_job "$id" 300)
cat "$work/linear-$id.out"
[ "$state" = COMPLETED ] || { echo "slurm-test: FAIL: job $id ended $state"; tail -30 "$work/log/slurmd.log"; exit 1; }
python3 - "$work/runs/linear/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["converged"], f"not converged: {s['stop_reason']}"
assert s["stop_reason"].startswith("converged"), s["stop_reason"]
print(f"slurm-test: converged: {s['stop_reason']}; workers {s['provenance']['farm']['workers']}")
assert len(s["provenance"]["farm"]["workers"]) == 2, "two workers (one per task)"
PY
same_samples "$work/runs/linear-local" "$work/runs/linear"
echo "slurm-test: ok: samples identical to probefarm run"
keymode=$(stat -c %a "$work/runs/.probefarm-keys/coordinator.key")
[ "$keymode" = 600 ] || { echo "slurm-test: FAIL: coordinator.key has mode $keymode"; exit 1; }
[ "$(stat -c %a "$work/runs/.probefarm-keys")" = 700 ] || { echo "slurm-test: FAIL: keys directory is not 0700"; exit 1; }

# 2. scancel mid-job: the journal survives, and a resubmission resumes and finishes it.
models=$root/Deploy/models
cat > "$work/bag.yaml" <<JOB
name: slurm-bag
seed: 7
models: {cnn: $models/fashion-cnn.safetensors, decoder: $models/fashion-vae-decoder.safetensors}
space:
  latent: {decoder: decoder, prior: standard-normal}
probe:
  - level-set: {model: cnn, target: {confident: 8}, sigma: 0.01}
sampler: {method: mala, warmup: 300, draws: 900, batch: 4}
chains: 8
JOB
"$probefarm" run "$work/bag.yaml" --workers 2 -o "$work/runs/bag-local" --cache "$work/cache-local" --quiet >/dev/null
id=$(sbatch --parsable --ntasks=2 --output="$work/bag-%j.out" Deploy/slurm/probefarm.sbatch "$work/bag.yaml" "$work/runs/bag")
journal=$work/runs/bag/journal.pfj
for _ in $(seq 1 600); do
  [ "$(stat -c %s "$journal" 2>/dev/null || echo 0)" -gt 40000 ] && break
  sleep 0.2
done
scancel "$id"
state=$(wait_job "$id" 120)
cat "$work/bag-$id.out"
[ "$state" = CANCELLED ] || { echo "slurm-test: FAIL: job $id ended $state, expected CANCELLED"; exit 1; }
[ -f "$journal" ] && [ ! -f "$work/runs/bag/summary.json" ] || { echo "slurm-test: FAIL: expected a journal and no summary after scancel"; exit 1; }
grep -q "stopped" "$work/bag-$id.out" || { echo "slurm-test: FAIL: the coordinator did not stop cleanly on SIGTERM"; exit 1; }
echo "slurm-test: ok: scancelled job $id left $(stat -c %s "$journal") bytes of journal"
sleep 2
pgrep -f "probefarm (worker|coordinator).*$work" >/dev/null && { echo "slurm-test: FAIL: processes left after scancel"; exit 1; }
id=$(sbatch --parsable --ntasks=2 --output="$work/bag-%j.out" Deploy/slurm/probefarm.sbatch "$work/bag.yaml" "$work/runs/bag")
state=$(wait_job "$id" 600)
cat "$work/bag-$id.out"
[ "$state" = COMPLETED ] || { echo "slurm-test: FAIL: resubmitted job $id ended $state"; exit 1; }
python3 - "$work/runs/bag/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
replayed = s["provenance"]["farm"]["replayedSegments"]
assert replayed > 0, "the resubmitted job replayed the journal"
print(f"slurm-test: resumed: {replayed} segments replayed from the journal")
PY
same_samples "$work/runs/bag-local" "$work/runs/bag"
echo "slurm-test: ok: the resumed job's samples equal probefarm run's"
echo "slurm-test: PASS"
