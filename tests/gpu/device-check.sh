#!/usr/bin/env bash
# The prepared device check (docs/gpu.md, "On a GPU machine"): everything a session with a
# lent GPU machine (an H200 with 16 cores, about 15 minutes of lease) should run, in one
# call, about 10 minutes, each step under its own time limit so that one slow step cannot
# eat the others. Writes everything under $OUT (the device tool's folder that comes back;
# default device-check-out/):
#   machine.txt            GPU, driver, toolkit, cores, date
#   run.log                tests/gpu/run.sh: kernel tests, engine tests, cuDNN tests,
#                          golden (CPU and --device cuda), compute-sanitizer
#   bench_gpu_kernels.json SGEMM vs cuBLAS FP32 / TF32 (4096^3 and network shapes),
#                          conv passes vs cuDNN (Google Benchmark JSON)
#   dev_sgemm.log          every SGEMM version == CPU, then timed against cuBLAS
#   dev_conv.log           every convolution version == CPU, then timed against cuDNN
#   resnet56.jsonl         ResNet-56 epoch: detdl portable / fast vs PyTorch deterministic /
#                          default (bench/gpu_resnet56.sh)
#   emulated.jsonl         LeNet-5 epoch at `emulated` vs `portable` on the GPU, and the
#                          emulated weight hash against the CPU's (bench/gpu_emulated.sh)
#   summary.txt            one line per step (PASS / FAIL / SKIP / TIMEOUT, seconds) and
#                          the benchmark ratios; bench/gpu_summary.py writes it
#
#   device-check.tar.gz    all of the above, packed: the device tool brings back at most 8
#                          files, so the logs travel as one archive beside summary.txt
#
#   tests/gpu/device-check.sh        (BUILD_DIR=build-gpu, RESNET_IMAGES=10000 to override)
#   DEADLINE=540     seconds for the whole script: each step's limit is cut to what is left
#                    (the device tool kills a command at 600 s and then nothing is packed)
#   PREBUILT=1       use the binaries already in BUILD_DIR (tests/gpu/pack-prebuilt.sh: built
#                    on a CPU machine with the same toolkit; the GPU machine's image has
#                    CMake but none of Debian's -dev packages, so it cannot configure detdl)
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-device-check-out}
BUILD=${BUILD_DIR:-build-gpu}
JOBS=$(nproc)
IMAGES=${RESNET_IMAGES:-10000}
DEADLINE=${DEADLINE:-540}
PREBUILT=${PREBUILT:-0}
WORK=$(mktemp -d /tmp/device-check.XXXXXX)/device-check
mkdir -p "$OUT" "$WORK"
FINAL_OUT=$OUT
OUT=$WORK  # every step writes here; the end packs it into $FINAL_OUT
STEPS="$OUT/steps.txt"
: >"$STEPS"

verdict() {  # verdict NAME TEXT SECONDS: one line of steps.txt
  printf '%-22s %-16s %5d s\n' "$1" "$2" "$3" | tee -a "$STEPS"
}

step() {  # step NAME LIMIT_SECONDS COMMAND...: runs it under `timeout`, logs to $OUT/NAME.log
  local name=$1 limit=$2 t0=$SECONDS rc=0
  shift 2
  local left=$((DEADLINE - SECONDS - 20))  # 20 s kept for the summary and the archive
  if [ "$left" -lt 10 ]; then
    verdict "$name" "SKIP (no time)" 0
    return 0
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  echo "==== $name (limit ${limit} s): $*"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  local result=PASS
  [ $rc = 0 ] || result="FAIL (exit $rc)"
  [ $rc = 124 ] && result=TIMEOUT
  verdict "$name" "$result" $((SECONDS - t0))
  tail -5 "$OUT/$name.log"
}

{
  date -u
  nvidia-smi -L 2>&1 || echo "nvidia-smi: not found"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  nvcc --version 2>&1 | tail -2
  echo "cores: $JOBS"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
  echo "prebuilt: $PREBUILT  build: $BUILD  LD_LIBRARY_PATH: ${LD_LIBRARY_PATH:-}"
  [ -x "$BUILD/detdl" ] && ldd "$BUILD/detdl" 2>&1 | grep -E 'not found|cudnn|cublas|sqlite|stdc'
} >"$OUT/machine.txt"
cat "$OUT/machine.txt"

# 1. Configure and build with every core (tests/gpu/run.sh then finds the build done).
if [ "$PREBUILT" = 1 ]; then
  verdict build "SKIP (prebuilt)" 0
else
  step configure 120 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDETDL_CUDA=ON \
    -DDETDL_BUILD_TESTS=ON -DDETDL_BUILD_BENCH=ON
  step build 300 cmake --build "$BUILD" -j "$JOBS" --target detdl test_gpu_kernels test_gpu_engine \
    test_gpu_cudnn bench_gpu_kernels dev_sgemm dev_conv
fi
# 2. The GPU tests: kernels == CPU, engine == CPU, golden on the device, compute-sanitizer
#    (which may answer "Device not supported" on some runtimes: run.sh records that as SKIP).
step run 240 env BUILD_DIR="$BUILD" JOBS="$JOBS" SKIP_BUILD="$PREBUILT" bash tests/gpu/run.sh
cp "$OUT/run.log" "$OUT/run-full.log" 2>/dev/null
# 3. Kernel benchmarks against cuBLAS and cuDNN.
step bench 150 "$BUILD/bench/bench_gpu_kernels" --benchmark_min_time=0.2 \
  --benchmark_out="$OUT/bench_gpu_kernels.json" --benchmark_out_format=json
# 3b. The SGEMM versions of kernels/cuda/dev/ (each validated against the CPU, then timed).
step dev_sgemm 90 "$BUILD/dev_sgemm" --reps 5
step dev_conv 90 "$BUILD/dev_conv" --reps 5
# 4. A ResNet-56 epoch against PyTorch on the same GPU.
step resnet56 150 env RESNET_IMAGES="$IMAGES" bash bench/gpu_resnet56.sh "$BUILD"
grep '^{' "$OUT/resnet56.log" >"$OUT/resnet56.jsonl" 2>/dev/null
# 5. What `emulated` costs on the GPU, and that its bits are the CPU's.
step emulated 90 bash bench/gpu_emulated.sh "$BUILD"
grep '^{' "$OUT/emulated.log" >"$OUT/emulated.jsonl" 2>/dev/null

python3 bench/gpu_summary.py "$OUT" >"$OUT/summary.txt" 2>&1 || cat "$STEPS" >>"$OUT/summary.txt"
cat "$OUT/summary.txt"
tar czf "$FINAL_OUT/device-check.tar.gz" -C "$(dirname "$OUT")" device-check
cp "$OUT/summary.txt" "$OUT/steps.txt" "$OUT/machine.txt" "$FINAL_OUT/"
! grep -qE 'FAIL|TIMEOUT' "$STEPS"
