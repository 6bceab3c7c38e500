#!/usr/bin/env bash
# The CUDA backend in host mode (docs/gpu.md, "Host mode"): builds build-host/ with
# -DDETDL_CUDA_HOST=ON (the kernels of kernels/cuda/ compiled by the C++ compiler, every
# CUDA thread a fiber) and runs the GPU tests there, without a GPU: the kernel tests against
# the CPU kernels bit for bit (in index order and under a seeded schedule), host mode's own
# tests, and the engine on "CUDA" (every op through the tape, every golden network's hash).
# Called by scripts/run-tests.sh, so CI runs it on every change.
#
#   scripts/host-mode-tests.sh [CTEST-ARGS...]      (JOBS=... to override the parallelism)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
t0=$SECONDS
cmake -S . -B build-host -DCMAKE_BUILD_TYPE=Release -DDETDL_CUDA=OFF -DDETDL_CUDA_HOST=ON \
  -DDETDL_BUILD_BENCH=OFF -DDETDL_BUILD_TESTS=ON >/dev/null
cmake --build build-host -j"$JOBS" --target test_gpu_kernels test_gpu_engine test_host_mode dev_sgemm dev_conv
echo "host-mode: built in $((SECONDS - t0)) s"
cd build-host
ctest --output-on-failure -j"$JOBS" \
  -R '^(test_host_mode|test_gpu_kernels|test_gpu_kernels_seeded_schedule|test_gpu_engine|dev_sgemm_validate|dev_conv_validate)$' "$@"
