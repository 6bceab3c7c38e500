#!/usr/bin/env bash
# BUTTER's repetitions: detdl trained together (nets/butter_batched.h) against detdl one by
# one and against PyTorch (Debian's python3-torch) one by one, one thread each, every run
# with BUTTER's per-epoch metrics (train and test series). Issue 13's benchmark;
# bench/RESULTS.md records runs.
#
#   usage: bench/butter_batched.sh [EPOCHS] [REPS] [DATA] [SHAPE:DEPTH:SIZE]
#          defaults: 300 30 wine_quality_white rectangle:3:1024 (the primary sweep's point;
#          BUTTER trains it 3000 epochs: every figure here scales with the epochs)
#   DATA is a PMLB name, or pmlb:mnist (read from $DETDL_DATA_DIR or ../shared/data); run from the
#   repository root after a build (build/detdl). Keep the machine otherwise idle.
#
# Rows (wall seconds for all REPS repetitions, ratios against PyTorch one by one):
#   detdl together, 2 threads      study run --batch REPS, the experiment on 2 threads
#   detdl together, 1 thread       study run --batch REPS, 1 thread
#   detdl one by one, 1 thread     study run --batch 1 --jobs 1 (one run after the other)
#   detdl one by one, 2 at a time  study run --batch 1 --jobs 2 (two 1-thread runs at once)
#   PyTorch one by one, 1 thread   bench/torch_butter.py
# Every detdl row stores its runs (SQLite, records without step hashes and without the
# per-epoch test predictions: those are detdl's, for churn, not a BUTTER series, and BUTTER
# sweeps run with --no-epoch-predictions, docs/butter.md) and checks that the runs' weight
# hashes agree between the rows (trained together = alone, bit for bit).
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${1:-300}"
REPS="${2:-30}"
DATA="${3:-wine_quality_white}"
NET="${4:-rectangle:3:1024}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import torch' 2> /dev/null || {
  echo "bench/butter_batched.sh: no PyTorch for $PY, the peer (Debian: apt-get install python3-torch)" >&2
  exit 1
}
DETDL=${DETDL:-build/detdl}
ROOT="${DETDL_DATA_DIR:-$(cd .. && pwd)/shared/data}"
export DETDL_DATA_DIR="$ROOT"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

study() {  # study THREADS -> a study file of REPS repetitions, every seed varied
  cat > "$out/s$1.toml" <<EOF
name = "bench-butter"
repetitions = $REPS
[experiment]
preset = "butter"
net = "butter:$NET"
data = "$DATA"
epochs = $EPOCHS
threads = $1
[[setting]]
name = "varied"
vary = ["all"]
EOF
  echo "$out/s$1.toml"
}

timed() {  # timed NAME THREADS ARGS... : wall seconds of one study run into its own store
  local name=$1 threads=$2
  shift 2
  local t0 t1
  t0=$(date +%s.%N)
  "$DETDL" study run "$(study "$threads")" --store "$out/$name.sqlite" --quiet --no-step-hashes --no-epoch-predictions "$@" > /dev/null
  t1=$(date +%s.%N)
  echo "$name $(echo "$t1 - $t0" | bc)" >> "$out/times"
}

timed together_t2 2 --batch "$REPS"
timed together_t1 1 --batch "$REPS"
timed alone_t1 1 --batch 1 --jobs 1
timed alone_jobs2 1 --batch 1 --jobs 2

# The net's widths and the task, from a stored record, for the peer.
"$DETDL" train --net "butter:$NET" --data "$DATA" --epochs 0 --quiet --force --record "$out/r.json" > /dev/null
read -r widths classes < <("$PY" -c "
import json, sys
r = json.load(open('$out/r.json'))
print(','.join(map(str, r['net']['butter']['widths'])), 'classes' if r['loss'] == 'softmax_ce' else 'regression')")
if [ "$DATA" = pmlb:mnist ]; then
  src="$ROOT/mnist"  # the peer pools the IDX files as PMLB's mnist does
else
  src=$(ls "$ROOT/pmlb/$DATA/$DATA.tsv"* 2>/dev/null | head -1 || true)
fi
[ -n "$src" ] || { echo "no PMLB file for $DATA under $ROOT/pmlb" >&2; exit 1; }
peer_flags=(--data "$src" --widths "$widths" --epochs "$EPOCHS" --repetitions "$REPS" --threads 1)
[ "$classes" = classes ] && peer_flags+=(--classes)
"$PY" bench/torch_butter.py "${peer_flags[@]}" > "$out/torch.json"

"$PY" - "$out" "$EPOCHS" "$REPS" "$DATA" "$NET" "$widths" <<'PY'
import json, os, sqlite3, sys
out, epochs, reps, data, net, widths = sys.argv[1:]
times = dict(l.split() for l in open(os.path.join(out, "times")))
torch = json.load(open(os.path.join(out, "torch.json")))
tt = torch["seconds"]
hashes = {}
for name in times:
    db = sqlite3.connect(os.path.join(out, name + ".sqlite"))
    hashes[name] = sorted(h for (h,) in db.execute("select weight_hash from runs"))
same = all(h == hashes["alone_t1"] for h in hashes.values())
print(f"BUTTER {data} {net} (widths {widths}), {reps} repetitions x {epochs} epochs, per-epoch metrics")
rows = [("detdl together, 2 threads", "together_t2"), ("detdl together, 1 thread", "together_t1"),
        ("detdl one by one, 1 thread", "alone_t1"), ("detdl one by one, 2 at a time", "alone_jobs2")]
print(f"{'':32} {'seconds':>9} {'x PyTorch':>10} {'ms/rep-epoch':>13}")
for label, name in rows:
    s = float(times[name])
    print(f"{label:32} {s:9.2f} {s / tt:10.3f} {1000 * s / int(reps) / int(epochs):13.3f}")
print(f"{'PyTorch one by one, 1 thread':32} {tt:9.2f} {1.0:10.3f} {1000 * tt / int(reps) / int(epochs):13.3f}")
a = float(times["alone_t1"])
print(f"together (2 threads) vs one by one (1 thread): {a / float(times['together_t2']):.2f}x faster; "
      f"vs two at a time: {float(times['alone_jobs2']) / float(times['together_t2']):.2f}x")
print(f"weight hashes identical across the detdl rows: {same}")
print(f"torch {torch['torch_version']}")
PY
