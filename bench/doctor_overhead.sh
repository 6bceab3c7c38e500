#!/usr/bin/env bash
# What the training monitor costs (issue 14: free when off, at most 2% of an epoch when on).
# Healthy runs of three nets, each trained REPS times in an alternating order without the
# monitor, with AutoTrainer's schedule (--monitor 3: a probe after epochs 1, 4, 7, ...) and
# with every epoch probed (--monitor 1), and under `--doctor detdl --doctor-watch` (detdl's
# doctor: its probes spaced so that they cost at most 2% of the steps, engine/monitor.h's
# budget; BUTTER's 16-step epochs are probed every 5th epoch); the figure is the whole run's wall time (training,
# evaluation and probes: what the monitor adds is its probes), the fastest of REPS, and the
# probes' own seconds from the records. With PREV=path/to/an/older/detdl (one built before
# the monitor existed) it also times that binary: "free when off" is the off row against it.
#   usage: bench/doctor_overhead.sh [REPS]   (from the repository root, after a build)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS="${1:-3}"
DETDL=${DETDL:-build/detdl}
export DETDL_DATA_DIR="${DETDL_DATA_DIR:-$(cd .. && pwd)/shared/data}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
nets=(
  "mnist-mlp|--net mlp:128 --data mnist --epochs 6 --batch-size 128 --optimizer adam --lr 0.001"
  "lenet5|--net lenet5:keras --data mnist --epochs 3 --batch-size 128 --optimizer sgd --lr 0.01 --threads 2"
  "butter-wine|--preset butter --epochs 600"
)
for spec in "${nets[@]}"; do
  name=${spec%%|*}
  flags=${spec#*|}
  for r in $(seq 1 "$REPS"); do
    for arm in off at detdl doctor prev; do
      case $arm in
        off) extra=(); bin=$DETDL ;;
        at) extra=(--monitor 3); bin=$DETDL ;;
        detdl) extra=(--monitor 1); bin=$DETDL ;;
        doctor) extra=(--doctor detdl --doctor-watch); bin=$DETDL ;;
        prev) [ -n "${PREV:-}" ] || continue; extra=(); bin=$PREV ;;
      esac
      t0=$(date +%s.%N)
      # shellcheck disable=SC2086
      "$bin" train $flags --quiet --force --record "$out/$name-$arm-$r.json" "${extra[@]}" > /dev/null
      t1=$(date +%s.%N)
      echo "$name $arm $r $(echo "$t1 - $t0" | bc)" >> "$out/times"
    done
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, os, sys, collections
out = sys.argv[1]
best = collections.defaultdict(lambda: float("inf"))
for line in open(os.path.join(out, "times")):
    name, arm, r, s = line.split()
    best[(name, arm)] = min(best[(name, arm)], float(s))
def probes(name, arm):
    total = 0.0
    for f in os.listdir(out):
        if f.startswith(f"{name}-{arm}-1.json"):
            d = json.load(open(os.path.join(out, f)))
            total = sum(e.get("monitor", {}).get("seconds", 0.0) for e in d["epochs"])
    return total
print("| net | monitor | wall s (best of reps) | x off | probes s |")
print("|---|---|---|---|---|")
names = sorted({k[0] for k in best}, key=lambda n: list(best).index((n, "off")))
for name in names:
    off = best[(name, "off")]
    for arm, label in [("prev", "before the monitor existed"), ("off", "off"), ("at", "every 3 epochs (autotrainer)"), ("detdl", "every epoch"), ("doctor", "detdl's doctor (probes within 2% of the steps)")]:
        if (name, arm) not in best:
            continue
        print(f"| {name} | {label} | {best[(name, arm)]:.2f} | {best[(name, arm)] / off:.3f} | {probes(name, arm):.3f} |")
PY
