#!/usr/bin/env bash
# GPU checks (docs/gpu.md): builds detdl with the CUDA backend into build-gpu/, runs the
# CUDA-vs-CPU kernel tests, the engine-on-CUDA tests (ops through the tape, golden cases),
# the cuDNN wrappers against the CPU kernels (within rounding bounds),
# the golden hashes on the CPU and with the whole training on the GPU (--device cuda),
# then compute-sanitizer memcheck and racecheck on a few small GPU tests, and prints a
# summary table. Exits non-zero if any step fails.
#   tests/gpu/run.sh              (from anywhere; BUILD_DIR=..., JOBS=... to override;
#                                  SKIP_BUILD=1 to use binaries already in BUILD_DIR)
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD_DIR:-build-gpu}
JOBS=${JOBS:-$(nproc)}
TEST_BIN="$BUILD/tests/gpu/test_gpu_kernels"
ENGINE_BIN="$BUILD/tests/gpu/test_gpu_engine"
CUDNN_BIN="$BUILD/tests/gpu/test_gpu_cudnn"
SANITIZER=$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")
# Small tests for the sanitizers (they slow kernels 10-100x). The cuBLAS test is left out of
# memcheck: its handle lives until exit, so --leak-check would report cuBLAS's workspace.
MEMCHECK_FILTER='Gpu.Allocator*:Gpu.GemmPortableEqualsCpuBitForBit:Gpu.GemmFast*:Gpu.ColumnSums*:Gpu.ConvPortableUnderASmallScratchBudget*:Gpu.Pooling*:Gpu.BatchNorm*:Gpu.Softmax*:Gpu.BinaryCrossEntropy*:Gpu.Optimizer*'
RACECHECK_FILTER='Gpu.GemmPortableEqualsCpuBitForBit:Gpu.GemmFast*:Gpu.ColumnSums*:Gpu.Pooling*'

names=()
results=()
status=0
record() {  # record NAME RESULT
  names+=("$1")
  results+=("$2")
  [ "$2" = FAIL ] && status=1
  return 0
}
step() {  # step NAME COMMAND...: runs it, records PASS / FAIL
  local name=$1
  shift
  echo "==== $name: $*"
  if "$@"; then record "$name" PASS; else record "$name" FAIL; fi
}

if [ "${SKIP_BUILD:-0}" = 1 ]; then  # binaries built elsewhere (tests/gpu/device-check.sh PREBUILT=1)
  record "build (prebuilt)" SKIP
else
  step configure cmake -S . -B "$BUILD" -DDETDL_CUDA=ON -DDETDL_BUILD_TESTS=ON -DDETDL_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=Release
  step build cmake --build "$BUILD" -j "$JOBS" --target detdl test_gpu_kernels test_gpu_engine test_gpu_cudnn
fi

have_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then have_gpu=1; fi

if [ -x "$TEST_BIN" ]; then
  if [ "$have_gpu" = 1 ]; then
    step "gpu kernels (CUDA == CPU)" "$TEST_BIN"
  else
    "$TEST_BIN" --gtest_brief=1 >/dev/null 2>&1  # must still run cleanly (every test skips)
    if [ $? -eq 0 ]; then record "gpu kernels (no GPU: all skipped)" SKIP; else record "gpu kernels (no GPU)" FAIL; fi
  fi
else
  record "gpu kernels" FAIL
fi

if [ -x "$ENGINE_BIN" ]; then
  if [ "$have_gpu" = 1 ]; then
    step "engine on CUDA (ops, golden cases)" "$ENGINE_BIN"
  else
    "$ENGINE_BIN" --gtest_brief=1 >/dev/null 2>&1
    if [ $? -eq 0 ]; then record "engine on CUDA (no GPU: all skipped)" SKIP; else record "engine on CUDA (no GPU)" FAIL; fi
  fi
else
  record "engine on CUDA" FAIL
fi

if [ -x "$CUDNN_BIN" ]; then
  if [ "$have_gpu" = 1 ]; then
    step "cuDNN vs CPU (within rounding)" "$CUDNN_BIN"
  else
    "$CUDNN_BIN" --gtest_brief=1 >/dev/null 2>&1
    if [ $? -eq 0 ]; then record "cuDNN vs CPU (no GPU: skipped)" SKIP; else record "cuDNN vs CPU (no GPU)" FAIL; fi
  fi
else
  record "cuDNN vs CPU" FAIL
fi

if [ -x "$BUILD/detdl" ]; then
  step "golden hashes (CPU)" "$BUILD/detdl" golden --check tests/golden/hashes.json
  if [ "$have_gpu" = 1 ]; then
    step "golden hashes (--device cuda)" "$BUILD/detdl" golden --device cuda --check tests/golden/hashes.json
  else
    record "golden hashes (--device cuda)" SKIP
  fi
else
  record "golden hashes (CPU)" FAIL
  record "golden hashes (--device cuda)" FAIL
fi

if [ "$have_gpu" = 1 ] && [ -x "$SANITIZER" ] && [ -x "$TEST_BIN" ]; then
  step "compute-sanitizer memcheck" "$SANITIZER" --tool memcheck --leak-check full --error-exitcode 1 \
    "$TEST_BIN" --gtest_filter="$MEMCHECK_FILTER"
  step "compute-sanitizer racecheck" "$SANITIZER" --tool racecheck --error-exitcode 1 \
    "$TEST_BIN" --gtest_filter="$RACECHECK_FILTER"
else
  record "compute-sanitizer memcheck" SKIP
  record "compute-sanitizer racecheck" SKIP
fi

echo
printf '%-40s %s\n' "test group" "result"
printf '%-40s %s\n' "----------" "------"
for i in "${!names[@]}"; do printf '%-40s %s\n' "${names[$i]}" "${results[$i]}"; done
[ "$have_gpu" = 1 ] || echo "note: no GPU found: the CUDA kernels were built but not checked against the CPU"
exit $status
