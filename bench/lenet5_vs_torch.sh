#!/usr/bin/env bash
# LeNet-5 on real MNIST: detdl (`portable`) against PyTorch from Debian's python3-torch, the
# same network (dl-variance LeNet-5, Glorot-uniform kernels, zero biases), SGD lr 0.01
# without momentum, batch 128, on 1 and 2 threads. Prints each epoch's training seconds
# (the steps only, evaluation excluded) and the ratio. bench/RESULTS.md records a run.
#   usage: bench/lenet5_vs_torch.sh [EPOCHS]   (from the repository root, after a build)
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${1:-2}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
out=$(mktemp -d)
for t in 1 2; do
  build/detdl train --net lenet5:keras --data mnist --epochs "$EPOCHS" --batch-size 128 --optimizer sgd \
    --lr 0.01 --momentum 0 --threads "$t" --no-metrics --quiet --force --record "$out/detdl_t$t.json" > /dev/null
  "$PY" bench/torch_lenet5.py --epochs "$EPOCHS" --threads "$t" --batch 128 --optimizer sgd --lr 0.01 \
    > "$out/torch_t$t.log"
done
"$PY" - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
print(f"{'threads':>7} {'epoch':>5} {'detdl s':>8} {'torch s':>8} {'detdl/torch':>11} {'detdl acc':>9} {'torch acc':>9}")
for t in (1, 2):
    d = json.load(open(os.path.join(out, f"detdl_t{t}.json")))
    tl = [l for l in open(os.path.join(out, f"torch_t{t}.log")) if l.startswith("{")]
    p = json.loads(tl[-1])
    for i, e in enumerate(d["epochs"]):
        ds, ts = e["train_seconds"], p["epoch_seconds"][i]
        print(f"{t:>7} {i+1:>5} {ds:8.2f} {ts:8.2f} {ds/ts:11.2f} {e['test']['accuracy']:9.4f} {p['test_accuracy'][i]:9.4f}")
print("torch", p["torch_version"])
PY
rm -rf "$out"
