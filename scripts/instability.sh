#!/usr/bin/env bash
# Twin runs for the instability question (docs/studies.md, "One bit at initialisation"):
# for LeNet-5 (real MNIST) and the BUTTER wine MLP, the distance between paired runs over
# the steps, for one initial weight moved by one ulp (portable) and for each emulated
# implementation family (impl seed 1 vs 2), then one picture per net.
#
#   bash scripts/instability.sh OUT_DIR [LENET_EPOCHS] [WINE_EPOCHS]
#
# Needs build/detdl (scripts/build.sh) and ../shared/data. Each pair is resumable by file:
# a CSV already in OUT_DIR is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: instability.sh OUT_DIR [LENET_EPOCHS] [WINE_EPOCHS]}
lenet_epochs=${2:-3}
wine_epochs=${3:-100}
mkdir -p "$out"
detdl=${DETDL:-build/detdl}  # the binary (DETDL=... to run a copy while rebuilding)

twin() {  # NAME ARGS...: one pair into OUT_DIR/NAME.csv (and its summary .txt)
  local name=$1
  shift
  [[ -s "$out/$name.csv" ]] && return 0
  echo "== $name"
  "$detdl" twin "$@" --out "$out/$name.csv" --force | tee "$out/$name.txt"
}

families="matmul conv scatter reduce contraction math optimizer loss"
for net in lenet5 wine; do
  if [[ $net == lenet5 ]]; then
    base=(--preset lenet5 --set net=lenet5:keras --set "epochs=$lenet_epochs" --set threads=2)
  else
    base=(--preset butter --set "epochs=$wine_epochs")
  fi
  # Two one-ulp pairs: a nudged weight can be dead (a ReLU unit that never fires keeps its
  # input weights, and the change never reaches the output), so one draw may show nothing.
  twin "$net-one-ulp" "${base[@]}" --b init_nudge=1
  twin "$net-one-ulp-2" "${base[@]}" --b init_nudge=2
  for f in $families; do
    # These nets have one math site per step (the loss's exp, the output sigmoid): one coin,
    # which impl seeds 1 and 2 happen to draw alike; 1 and 3 differ.
    b_seed=2
    [[ $f == math ]] && b_seed=3
    twin "$net-$f" "${base[@]}" --set "emulated_ops=[\"$f\"]" --a seeds.impl=1 --b seeds.impl=$b_seed
  done
  twin "$net-all" "${base[@]}" --set level=emulated --a seeds.impl=1 --b seeds.impl=2
  twin "$net-seeds" "${base[@]}" --b seeds.init=2 --b seeds.order=2
done
/usr/bin/python3 scripts/plot_twins.py "$out"
