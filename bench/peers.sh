#!/usr/bin/env bash
# Every CPU peer comparison in one sitting (issue 15), written into bench/RESULTS.md between
# <!-- peers:begin --> and <!-- peers:end --> (nothing else in the file is touched):
#   GEMM                 bench_gemm: detdl portable / fast against OpenBLAS
#   convolution passes   bench_conv: detdl portable / fast against oneDNN (libdnnl), its own
#                        layouts with and without the NCHW reorders timed
#   LeNet-5, LeNet-1     one epoch on real MNIST against PyTorch (bench/torch_lenet5.py)
#   ResNet-20            one epoch of CIFAR-shaped generated data against PyTorch (torch_resnet56.py)
#   BUTTER MLP           wine_quality_white rectangle 3 x 1024 against PyTorch (torch_butter.py)
#   levels               bench_engine_train (portable / fast) and the LeNet-5 epoch at
#                        portable, fast and emulated
#   scaling              LeNet-5 epoch and two convolutions on 1, 2, 4, ... threads (nproc > 2)
# each on 1 and 2 threads. Where the CPU has AVX-512, the vendor peers (OpenBLAS, oneDNN) are
# also run capped to AVX2 (OPENBLAS_CORETYPE=Haswell, ONEDNN_MAX_CPU_ISA=AVX2), so both are on
# record: what a user of the library gets, and the library on AVX2 (as detdl's AVX2 kernels).
#
#   usage: bench/peers.sh [--build DIR] [--quick] [--no-write] [--no-build] [--keep] [--out DIR]
#     --build DIR   build folder (default build-cpu if it has detdl, else build); configured
#                   with -DDETDL_BUILD_BENCH=ON. Its detdl and benches are built first
#                   (cmake --build, a no-op when up to date) unless --no-build.
#     --quick       fewer repetitions and smaller ResNet / BUTTER runs: a smoke test (2-4 min)
#     --no-write    print the section instead of rewriting bench/RESULTS.md
#     --keep        keep the raw outputs (benchmark JSON, run records, log) and say where
#     --out DIR     keep them in DIR (made if missing); bench/peers_tables.py DIR prints the
#                   tables again later, on any machine (a run on the GPU machine's 16 cores)
# The full run takes about 10 minutes on 2 cores. Keep the machine otherwise idle.
# A missing peer (python3-torch, libdnnl-dev, OpenBLAS) or data set (MNIST, PMLB
# wine_quality_white under $DETDL_DATA_DIR) skips its table with a line that says so.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=""
QUICK=0
WRITE=1
DO_BUILD=1
KEEP=0
OUT_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="${2:?--build needs a folder}"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-write) WRITE=0; shift ;;
    --no-build) DO_BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    --out) OUT_DIR="${2:?--out needs a folder}"; KEEP=1; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "peers.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$BUILD" ]; then
  if [ -x build-cpu/detdl ]; then BUILD=build-cpu; else BUILD=build; fi
fi
[ -f "$BUILD/CMakeCache.txt" ] || { echo "peers.sh: $BUILD is not a configured build folder" >&2; exit 1; }
grep -q '^DETDL_BUILD_BENCH:BOOL=ON' "$BUILD/CMakeCache.txt" || {
  echo "peers.sh: $BUILD was configured without the benchmarks: cmake -S . -B $BUILD -DDETDL_BUILD_BENCH=ON" >&2
  exit 1
}
# The first python3 with PyTorch (Debian's /usr/bin/python3 with python3-torch, or the one on
# PATH, as on the GPU machine's image), else the first that exists.
PY=""
for cand in /usr/bin/python3 python3; do
  if "$cand" -c 'import torch, numpy' 2> /dev/null; then PY=$cand; break; fi
done
if [ -z "$PY" ]; then
  PY=/usr/bin/python3
  [ -x "$PY" ] || PY=python3
fi
command -v "$PY" > /dev/null || { echo "peers.sh: needs python3 (it parses the results and writes the tables)" >&2; exit 1; }
export DETDL_DATA_DIR="${DETDL_DATA_DIR:-$(cd .. && pwd)/shared/data}"
NPROC=$(nproc)

if [ -n "$OUT_DIR" ]; then
  mkdir -p "$OUT_DIR"
  out=$(cd "$OUT_DIR" && pwd)
else
  out=$(mktemp -d)
fi
if [ "$KEEP" = 1 ]; then
  trap 'echo "peers.sh: the raw outputs are in $out" >&2' EXIT
else
  trap 'rm -rf "$out"' EXIT
fi
START=$(date +%s)
say() { echo "[peers $(($(date +%s) - START))s] $*" >&2; }
skip() { echo "$1: $2" >> "$out/skipped.txt"; say "skipped $1: $2"; }

# run CMD...: runs the command (its output into $out/log) and records its line for the
# section, the temporary folder written OUT and thread counts T (each distinct line once).
# run_json FILE CMD...: the same, and the command's last stdout line (a JSON object) into FILE.
run() { run_json /dev/null "$@"; }
shell_line() {  # ARGS... -> one line a shell reads back as ARGS (quoted only where needed)
  local a line=""
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./=:,+@%^-]+$ ]]; then line+="$a "; else line+="'${a//\'/\'\\\'\'}' "; fi
  done
  echo "${line% }"
}
run_json() {
  local file=$1 line
  shift
  line=$(shell_line "$@" | sed -e "s#$out#OUT#g" -e "s#$DETDL_DATA_DIR#\$DETDL_DATA_DIR#g" \
    -e 's/--threads\([= ]\)[0-9,]\+/--threads\1T/g' -e 's/_t[0-9]\+\./_tT./g')
  grep -qxF -- "$line" "$out/commands.txt" 2> /dev/null || echo "$line" >> "$out/commands.txt"
  echo "\$ $*" >> "$out/log"
  "$@" > "$out/stdout" 2>> "$out/log" || {
    cat "$out/stdout" >> "$out/log"
    echo "peers.sh: failed: $*" >&2
    tail -20 "$out/log" >&2
    exit 1
  }
  cat "$out/stdout" >> "$out/log"
  if [ "$file" != /dev/null ]; then
    grep '^{' "$out/stdout" | tail -1 > "$file" || { echo "peers.sh: no JSON line from: $*" >&2; exit 1; }
  fi
}

# The LeNet epochs (also the scaling table's).
lenet_detdl() {  # VARIANT THREADS RECORD [FLAGS...]
  local v=$1 t=$2 rec=$3
  shift 3
  run "$DETDL" train --net "lenet$v:keras" --data mnist --epochs 1 --batch-size 128 --optimizer sgd --lr 0.01 \
    --momentum 0 --threads "$t" --no-metrics --quiet --force --record "$rec" "$@"
}
lenet_torch() {  # VARIANT THREADS JSON
  run_json "$3" "$PY" bench/torch_lenet5.py --variant "$1" --epochs 1 --threads "$2" --batch 128 --optimizer sgd \
    --lr 0.01 --mnist "$DETDL_DATA_DIR/mnist"
}

if [ "$DO_BUILD" = 1 ]; then
  say "building detdl and the benches in $BUILD"
  cmake --build "$BUILD" -j"$NPROC" --target detdl bench_gemm bench_conv bench_engine_train > "$out/build.log" 2>&1 ||
    { tail -30 "$out/build.log" >&2; echo "peers.sh: the build failed" >&2; exit 1; }
fi
for b in detdl bench/bench_gemm bench/bench_conv bench/bench_engine_train; do
  [ -x "$BUILD/$b" ] || { echo "peers.sh: $BUILD/$b is missing (cmake --build $BUILD --target ${b##*/})" >&2; exit 1; }
done
DETDL="$BUILD/detdl"

# ---- what is installed ----
HAVE_TORCH=1
"$PY" -c 'import torch, numpy' 2> /dev/null || HAVE_TORCH=0
[ "$HAVE_TORCH" = 1 ] || say "no PyTorch (with numpy) for $PY (Debian: apt-get install python3-torch): its columns are skipped"
HAVE_MNIST=1
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  [ -f "$DETDL_DATA_DIR/mnist/$f" ] || HAVE_MNIST=0
done
AVX512=0
grep -qw avx512f /proc/cpuinfo && AVX512=1

# ---- the machine ----
{
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "cpus=$NPROC"
  echo "threads_per_core=$(lscpu | sed -n 's/^Thread(s) per core: *//p' | head -1)"
  echo "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)"
  echo "isa=$(grep -o -w 'avx512f\|avx2\|fma\|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2> /dev/null || echo ' + uncommitted changes')"
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "build=$BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt"))"
  echo "quick=$QUICK"
  echo "openblas=$(dpkg-query -W -f '${Version}' libopenblas0-pthread 2> /dev/null || echo '?')"
  echo "onednn=$(dpkg-query -W -f '${Version}' libdnnl2 2> /dev/null || echo '?')"
  if [ "$HAVE_TORCH" = 1 ]; then echo "torch=$("$PY" -c 'import torch; print(torch.__version__)')"; fi
  echo "avx512=$AVX512"
  echo "env=$(env | grep -E '^(OPENBLAS_|ONEDNN_|DNNL_|OMP_)' | tr '\n' ' ')"
} > "$out/machine.txt"

# Vendor peers at their native ISA: unset what would cap them (the capped runs set it).
NATIVE=(env -u OPENBLAS_CORETYPE -u ONEDNN_MAX_CPU_ISA -u DNNL_MAX_CPU_ISA)
if [ "$QUICK" = 1 ]; then
  REPS=(--benchmark_min_time=0.05)
  CONV_REPS=(--benchmark_min_time=0.02)
  RESNET_IMAGES=512
  BUTTER_EPOCHS=30
else
  REPS=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
  CONV_REPS=(--benchmark_min_time=0.2 "${REPS[@]}")
  RESNET_IMAGES=3840
  BUTTER_EPOCHS=300
fi

# ---- GEMM ----
say "GEMM (bench_gemm)"
run "${NATIVE[@]}" "$BUILD/bench/bench_gemm" "${REPS[@]}" --benchmark_out="$out/gemm.json" --benchmark_out_format=json
if [ "$AVX512" = 1 ]; then
  run env OPENBLAS_CORETYPE=Haswell "$BUILD/bench/bench_gemm" --benchmark_filter='^gemm/2/' "${REPS[@]}" \
    --benchmark_out="$out/gemm_avx2.json" --benchmark_out_format=json
fi

# ---- convolution passes ----
say "convolution passes (bench_conv)"
HAVE_DNNL=1
# (The list is captured first: `cmd | grep -q` can fail under pipefail when grep exits on
# its first match and cmd is killed by SIGPIPE.)
conv_list=$("$BUILD/bench/bench_conv" --benchmark_list_tests)
grep -q '/onednn/' <<< "$conv_list" || HAVE_DNNL=0
[ "$HAVE_DNNL" = 1 ] ||
  skip conv "bench_conv was built without oneDNN (Debian: apt-get install libdnnl-dev, then reconfigure $BUILD): detdl's rows only"
run "${NATIVE[@]}" "$BUILD/bench/bench_conv" "${CONV_REPS[@]}" --benchmark_out="$out/conv.json" --benchmark_out_format=json
if [ "$HAVE_DNNL" = 1 ] && [ "$AVX512" = 1 ]; then
  run env ONEDNN_MAX_CPU_ISA=AVX2 "$BUILD/bench/bench_conv" --benchmark_filter='/onednn/' "${CONV_REPS[@]}" \
    --benchmark_out="$out/conv_avx2.json" --benchmark_out_format=json
fi

# ---- levels: whole training steps ----
say "training steps per level (bench_engine_train)"
run "$BUILD/bench/bench_engine_train" "${REPS[@]}" --benchmark_out="$out/engine.json" --benchmark_out_format=json

# ---- LeNet-5 and LeNet-1 epochs on MNIST ----
if [ "$HAVE_MNIST" = 1 ]; then
  for v in 5 1; do
    for t in 1 2; do
      say "LeNet-$v epoch, $t thread(s)"
      lenet_detdl "$v" "$t" "$out/lenet${v}_detdl_t$t.json"
      if [ "$HAVE_TORCH" = 1 ]; then lenet_torch "$v" "$t" "$out/lenet${v}_torch_t$t.json"; fi
    done
  done
  for t in 1 2; do
    say "LeNet-5 epoch at fast and emulated, $t thread(s)"
    lenet_detdl 5 "$t" "$out/lenet5_fast_t$t.json" --level fast
    lenet_detdl 5 "$t" "$out/lenet5_emulated_t$t.json" --level emulated --impl-seed 1
  done
  [ "$HAVE_TORCH" = 1 ] || skip lenet "PyTorch not installed (python3-torch): detdl's columns only"
else
  skip lenet "no MNIST under $DETDL_DATA_DIR/mnist (the four IDX .gz files)"
fi

# ---- ResNet-20, one epoch of CIFAR-shaped generated data ----
for t in 1 2; do
  say "ResNet-20 epoch ($RESNET_IMAGES images), $t thread(s)"
  # Two epochs: the second is timed (the first grows the allocator's caches).
  run "$DETDL" train --net resnet20 --data "synthetic-cifar10:$RESNET_IMAGES" --epochs 2 --batch-size 128 \
    --optimizer adam --lr 1e-3 --eps 1e-7 --threads "$t" --no-metrics --quiet --force --record "$out/resnet_detdl_t$t.json"
  if [ "$HAVE_TORCH" = 1 ]; then
    run_json "$out/resnet_torch_t$t.json" "$PY" bench/torch_resnet56.py --device cpu --mode default --depth 20 \
      --images "$RESNET_IMAGES" --threads "$t"
  fi
done
[ "$HAVE_TORCH" = 1 ] || skip resnet "PyTorch not installed (python3-torch): detdl's column only"

# ---- BUTTER MLP ----
wine=$(ls "$DETDL_DATA_DIR"/pmlb/wine_quality_white/wine_quality_white.tsv* 2> /dev/null | head -1 || true)
if [ -n "$wine" ]; then
  for t in 1 2; do
    say "BUTTER wine_quality_white rectangle 3 x 1024, $BUTTER_EPOCHS epochs, $t thread(s)"
    run "$DETDL" train --preset butter --epochs "$BUTTER_EPOCHS" --threads "$t" --quiet --force --record "$out/butter_detdl_t$t.json"
    if [ "$HAVE_TORCH" = 1 ]; then
      widths=$("$PY" -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['net']['butter']['widths'])))" \
        "$out/butter_detdl_t$t.json")
      run_json "$out/butter_torch_t$t.json" "$PY" bench/torch_butter.py --data "$wine" --widths "$widths" --classes \
        --epochs "$BUTTER_EPOCHS" --repetitions 1 --threads "$t"
    fi
  done
  [ "$HAVE_TORCH" = 1 ] || skip butter "PyTorch not installed (python3-torch): detdl's column only"
else
  skip butter "no PMLB wine_quality_white under $DETDL_DATA_DIR/pmlb"
fi

# ---- scaling, where there are more than 2 CPUs ----
if [ "$NPROC" -gt 2 ]; then
  counts=""
  for t in 1 2 4 8 16; do
    if [ "$t" -le "$NPROC" ]; then counts="$counts $t"; fi
  done
  list=${counts# }
  list=${list// /,}
  say "scaling on threads $list"
  run "${NATIVE[@]}" "$BUILD/bench/bench_conv" --threads="$list" \
    --benchmark_filter='(lenet5_c2|resnet20_s1_16)/.*/(detdl_portable|onednn)/' "${CONV_REPS[@]}" \
    --benchmark_out="$out/scaling_conv.json" --benchmark_out_format=json
  if [ "$HAVE_MNIST" = 1 ]; then
    for t in $counts; do
      if [ "$t" -le 2 ]; then continue; fi  # measured above
      say "LeNet-5 epoch, $t threads"
      lenet_detdl 5 "$t" "$out/lenet5_detdl_t$t.json"
      if [ "$HAVE_TORCH" = 1 ]; then lenet_torch 5 "$t" "$out/lenet5_torch_t$t.json"; fi
    done
  fi
  echo "$counts" > "$out/scaling_threads.txt"
fi

say "writing the tables"
if [ "$WRITE" = 1 ]; then
  "$PY" bench/peers_tables.py "$out" --write bench/RESULTS.md
  say "bench/RESULTS.md rewritten between <!-- peers:begin --> and <!-- peers:end -->"
else
  "$PY" bench/peers_tables.py "$out"
fi
say "done"
