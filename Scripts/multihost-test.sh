#!/usr/bin/env bash
# Multi-host test of the farm on one machine: a coordinator and three workers in their own
# network namespaces (and hostnames), joined by veth links, CURVE-encrypted. Mid-run one
# worker's link is cut (its chains finish elsewhere), then restored (it rejoins). The run
# directory must hold exactly the draws of `probefarm run` on the same job.
# Needs root (ip netns). Exit 77 (with the reason) where namespaces cannot be made.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PROBEFARM:-$PWD/.build/release/probefarm}
WORK=$(mktemp -d /tmp/probefarm-multihost.XXXXXX)
TAG=pf$$
NS_C=${TAG}c
WORKERS=3
pids=()

cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  for i in $(seq 1 $WORKERS); do ip netns del "${TAG}w$i" 2>/dev/null || true; done
  ip netns del "$NS_C" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

if ! ip netns add "$NS_C" 2>"$WORK/netns.err"; then
  echo "SKIP: network namespaces are not possible here: $(head -1 "$WORK/netns.err")"
  exit 77
fi
ip -n "$NS_C" link set lo up
for i in $(seq 1 $WORKERS); do
  ns=${TAG}w$i
  ip netns add "$ns"
  ip link add "${TAG}c$i" type veth peer name "${TAG}w$i"
  ip link set "${TAG}c$i" netns "$NS_C"
  ip link set "${TAG}w$i" netns "$ns"
  ip -n "$NS_C" addr add "10.77.$i.1/24" dev "${TAG}c$i"
  ip -n "$ns" addr add "10.77.$i.2/24" dev "${TAG}w$i"
  ip -n "$NS_C" link set "${TAG}c$i" up
  ip -n "$ns" link set "${TAG}w$i" up
  ip -n "$ns" link set lo up
done

MODELS=$PWD/Deploy/models
cat > "$WORK/job.yaml" <<JOB
name: multihost
seed: 21
models:
  cnn: $MODELS/fashion-cnn.safetensors
  decoder: $MODELS/fashion-vae-decoder.safetensors
space:
  latent: {decoder: decoder, prior: standard-normal}
probe:
  - level-set: {model: cnn, target: {ambiguous: [0, 6]}, sigma: 0.05}
sampler: {method: mala, warmup: 300, draws: 900, batch: 4}
chains: 12
JOB

echo "multihost: reference run on loopback"
"$P" run "$WORK/job.yaml" --workers 2 -o "$WORK/reference" --cache "$WORK/cache-ref" --quiet >/dev/null

"$P" keys generate "$WORK/keys" >/dev/null
echo "multihost: coordinator in $NS_C, workers in ${TAG}w1..${TAG}w$WORKERS"
ip netns exec "$NS_C" unshare --uts sh -c "hostname coordinator-host && exec \"$P\" coordinator \"$WORK/job.yaml\" --bind 'tcp://*:5555' --keys \"$WORK/keys\" -o \"$WORK/run\" --heartbeat 0.5 --segment 50 --verbose" \
  > "$WORK/coordinator.log" 2>&1 &
coord=$!
pids+=("$coord")
sleep 1
for i in $(seq 1 $WORKERS); do
  ip netns exec "${TAG}w$i" unshare --uts sh -c "hostname worker-host-$i && exec \"$P\" worker --connect tcp://10.77.$i.1:5555 --keys \"$WORK/keys\" --cache \"$WORK/cache-$i\" --name worker-$i --heartbeat 0.5 --verbose" \
    > "$WORK/worker-$i.log" 2>&1 &
  pids+=("$!")
done

# Cut worker 1's link once it has run a segment, restore it a few seconds later.
for _ in $(seq 1 600); do
  grep -q "worker joined: worker-1" "$WORK/coordinator.log" && [ "$(stat -c %s "$WORK/run/journal.pfj" 2>/dev/null || echo 0)" -gt 20000 ] && break
  sleep 0.1
done
echo "multihost: cutting worker-1's link"
ip -n "${TAG}w1" link set "${TAG}w1" down
for _ in $(seq 1 100); do grep -q "worker lost: worker-1" "$WORK/coordinator.log" && break; sleep 0.1; done
sleep 2
echo "multihost: restoring worker-1's link"
ip -n "${TAG}w1" link set "${TAG}w1" up

status=0
wait "$coord" || status=$?
fail() { echo "multihost: FAIL: $*"; echo "--- coordinator log"; grep -v '^progress' "$WORK/coordinator.log" | tail -40; exit 1; }
[ "$status" -eq 0 ] || fail "coordinator exited $status"
for f in samples.npy latent.npy stats.npy outputs.npy; do
  cmp -s "$WORK/reference/$f" "$WORK/run/$f" || fail "$f differs from the loopback reference"
done
grep -q "worker lost: worker-1" "$WORK/coordinator.log" || fail "worker-1 was never declared lost"
grep -q "reassigned" "$WORK/coordinator.log" || fail "no chains were reassigned"
[ "$(grep -c "worker joined: worker-1" "$WORK/coordinator.log")" -ge 2 ] || fail "worker-1 did not rejoin after its link came back"
hosts=$(python3 -c "import json,sys; print(' '.join(sorted(json.load(open(sys.argv[1]))['provenance']['hosts'])))" "$WORK/run/summary.json")
[ "$hosts" = "worker-host-1 worker-host-2 worker-host-3" ] || fail "hosts in provenance: $hosts"
echo "multihost: OK — identical draws; worker-1 lost, its chains reassigned, rejoined; hosts: $hosts"
