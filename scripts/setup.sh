#!/usr/bin/env bash
# Installs what detdl needs from Debian's packages, only when something is missing.
# The CUDA toolkit is optional: where nvcc exists the CUDA backend is compiled too.
set -euo pipefail
PKGS=(g++ cmake make pkg-config libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
      nlohmann-json3-dev zlib1g-dev libsqlite3-dev libopenblas-dev libdnnl-dev libtomlplusplus-dev
      python3-matplotlib python3-venv dataset-fashion-mnist
      libopenmpi-dev openmpi-bin libpq-dev postgresql
      patchelf)  # patchelf: tests/gpu/pack-prebuilt.sh (binaries carried to a GPU machine)
# The campaign (scripts/campaign.sh: fuzzers, sanitizer builds; docs/fuzzing.md): clang with
# libFuzzer and its sanitizer runtimes (libclang_rt.fuzzer-x86_64.a is in libclang-rt-14-dev
# for Debian 12's clang 14), llvm-symbolizer (llvm) for the stacks. g++'s ASan/UBSan/TSan
# runtimes come with g++ itself.
PKGS+=(clang libclang-rt-14-dev llvm clang-format)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Optional (the Parquet export): pyarrow and pandas from PyPI into .venv-parquet.
bash "$(dirname "$0")/setup-parquet.sh" ||
  echo "setup: pyarrow/pandas not installed (no network?): the Parquet export is unavailable, its CSV form works"
