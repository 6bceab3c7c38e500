#!/usr/bin/env bash
# Builds everything (CPU backend, its tests and benchmarks; the CUDA backend too where
# nvcc exists, so that a change breaking the GPU build cannot land) and runs all tests; then
# the GPU tests in host mode (scripts/host-mode-tests.sh: the CUDA kernels run on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)" "$@")
bash scripts/host-mode-tests.sh
