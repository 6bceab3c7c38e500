#!/usr/bin/env bash
# The main job on its default, which needs nothing external: build, then train the MLP
# on generated data in `portable`, printing its loss per epoch and its weight hash; then
# the same run on 2 threads, which must print the same hash.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build/detdl train --net mlp --epochs 5 --threads 1 "$@"
build/detdl train --net mlp --epochs 5 --threads 2 --quiet "$@"
