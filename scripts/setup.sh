#!/usr/bin/env bash
# Installs what detdl needs from Debian's packages, only when something is missing.
# The CUDA toolkit is optional: where nvcc exists the CUDA backend is compiled too.
set -euo pipefail
PKGS=(g++ cmake make pkg-config libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
      nlohmann-json3-dev zlib1g-dev libsqlite3-dev libopenblas-dev libtomlplusplus-dev
      python3-matplotlib)
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
