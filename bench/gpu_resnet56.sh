#!/usr/bin/env bash
# ResNet-56 training throughput on the GPU: detdl (`portable` and `fast`, --device cuda)
# against PyTorch on the same GPU (deterministic FP32, and its defaults), one epoch of
# 50,000 CIFAR-shaped images, batch 128, Adam 1e-3. For a GPU machine; record the output
# in bench/RESULTS.md with the GPU model and date.
#   usage: bench/gpu_resnet56.sh [BUILD_DIR]   (default build-gpu, as tests/gpu/run.sh builds it)
#   RESNET_IMAGES=N: images per epoch (default 50000; tests/gpu/device-check.sh uses 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
PY=${PYTHON:-python3}
IMAGES=${RESNET_IMAGES:-50000}
nvidia-smi -L
for level in portable fast; do
  "$BUILD/detdl" train --device cuda --net resnet56 --data "synthetic-cifar10:$IMAGES" --epochs 2 --batch-size 128 \
    --optimizer adam --lr 1e-3 --eps 1e-7 --level "$level" --no-metrics --force --record "/tmp/detdl_resnet56_$level.json" --quiet
  "$PY" - "/tmp/detdl_resnet56_$level.json" "$level" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["epochs"][-1]["train_seconds"]  # the second epoch: the first pays for allocations
print(json.dumps({"framework": "detdl", "level": sys.argv[2], "epoch_seconds": s,
                  "images_per_second": r["data"]["train_rows"] / s}))
PY
done
for mode in deterministic default; do
  "$PY" bench/torch_resnet56.py --mode "$mode" --device cuda --images "$IMAGES"
done
