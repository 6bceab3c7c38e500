#!/usr/bin/env bash
# What the `emulated` level costs on the GPU, and that it keeps the CPU's bits: LeNet-5 on
# synthetic MNIST, 2 epochs, `portable` vs `--level emulated --impl-seed 7` on --device
# cuda, and the emulated run on the CPU. One JSON line per run: the second epoch's seconds
# (the first pays for allocations) and the weight hash; then a line comparing them
# ("same_bits": the CUDA and CPU emulated hashes are equal). Called by
# tests/gpu/device-check.sh.
#
#   bench/gpu_emulated.sh [BUILD_DIR]        (IMAGES=... to override 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
IMAGES=${IMAGES:-10000}
run() {  # run NAME DEVICE LEVEL-FLAGS...
  local name=$1 device=$2
  shift 2
  "$BUILD/detdl" train --device "$device" --preset lenet5 --data "synthetic-mnist:$IMAGES" \
    --epochs 2 --no-metrics --force --record "/tmp/detdl_emulated_$name.json" --quiet "$@"
  python3 - "/tmp/detdl_emulated_$name.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"run": sys.argv[2], "epoch_seconds": r["epochs"][-1]["train_seconds"],
                  "weight_hash": r["weight_hash"]}))
PY
}
run cuda_portable cuda --level portable
run cuda_emulated cuda --level emulated --impl-seed 7
run cpu_emulated cpu --level emulated --impl-seed 7 --threads "$(nproc)"
python3 - <<'PY'
import json
r = {n: json.load(open(f"/tmp/detdl_emulated_{n}.json")) for n in ("cuda_portable", "cuda_emulated", "cpu_emulated")}
sec = lambda n: r[n]["epochs"][-1]["train_seconds"]
same = r["cuda_emulated"]["weight_hash"] == r["cpu_emulated"]["weight_hash"]
print(json.dumps({"emulated_over_portable_cuda": sec("cuda_emulated") / sec("cuda_portable"),
                  "same_bits": same}))
raise SystemExit(0 if same else 1)  # the step fails when the GPU's bits are not the CPU's
PY
