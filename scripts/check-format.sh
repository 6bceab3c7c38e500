#!/usr/bin/env bash
# Fails when a C++ or CUDA source differs from .clang-format's layout (Debian's clang-format;
# scripts/setup.sh installs it). Fix with: clang-format -i $(git ls-files '*.cpp' '*.h' '*.cu')
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' | grep -v '^fuzz/corpus/')
if clang-format --dry-run --Werror "${files[@]}" 2>/tmp/detdl-format.$$; then
  echo "format: ${#files[@]} files follow .clang-format"
  rm -f /tmp/detdl-format.$$
else
  head -40 /tmp/detdl-format.$$
  echo "format: files differ from .clang-format (run clang-format -i on them)"
  rm -f /tmp/detdl-format.$$
  exit 1
fi
