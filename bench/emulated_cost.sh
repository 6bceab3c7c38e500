#!/usr/bin/env bash
# What the `emulated` level costs: LeNet-5 (lenet5:keras) on real MNIST, one training
# epoch at `portable`, at `emulated` (every family) and with each family alone, in the same
# sitting, on T threads. Prints each run's training seconds (evaluation excluded) and the
# ratio to portable's. bench/RESULTS.md records a run.
#   usage: bench/emulated_cost.sh [THREADS] [EPOCHS]   (from the repository root, after a build)
set -euo pipefail
cd "$(dirname "$0")/.."
T="${1:-2}"
EPOCHS="${2:-1}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() {  # NAME FLAGS...
  local name=$1
  shift
  build/detdl train --net lenet5:keras --data mnist --epochs "$EPOCHS" --batch-size 128 \
    --optimizer sgd --lr 0.01 --momentum 0 --threads "$T" --no-metrics --quiet --force \
    --record "$out/$name.json" "$@" > /dev/null
}
run portable
run emulated --level emulated --impl-seed 1
for f in matmul conv scatter reduce contraction math optimizer loss; do
  run "$f" --emulated-op "$f" --impl-seed 1
done
/usr/bin/python3 - "$out" "$T" <<'PY'
import json, os, sys
out, t = sys.argv[1], sys.argv[2]
def secs(name):
    d = json.load(open(os.path.join(out, name + ".json")))
    return sum(e["train_seconds"] for e in d["epochs"]), d["epochs"][-1]["test"]["accuracy"]
base, _ = secs("portable")
print(f"threads {t}")
print(f"{'setting':<12} {'train s':>8} {'/ portable':>10} {'test acc':>8}")
for name in ["portable", "emulated", "matmul", "conv", "scatter", "reduce", "contraction", "math", "optimizer", "loss"]:
    s, acc = secs(name)
    print(f"{name:<12} {s:8.2f} {s / base:10.2f} {acc:8.4f}")
PY
