#!/bin/bash
# Queues a detdl study on a Slurm cluster: a job array of N shards, then the merge, which
# starts only when every shard succeeded (afterok). docs/scale.md walks through it.
#
#   scripts/slurm/submit-study.sh N STUDY.toml SHARD_DIR OUT.sqlite [detdl study run options]
#
# Extra sbatch options (partition, account, time limit) go in SBATCH_ARGS, e.g.
#   SBATCH_ARGS="--partition=cpu --time=12:00:00" scripts/slurm/submit-study.sh 64 ...
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 N STUDY.toml SHARD_DIR OUT.sqlite [detdl study run options]" >&2
  exit 2
fi
n=$1 study=$2 shards=$3 out=$4
shift 4
case $n in '' | *[!0-9]* | 0) echo "submit-study: N must be a whole number >= 1, got '$n'" >&2; exit 2 ;; esac
[ -f "$study" ] || { echo "submit-study: no study file $study" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC2086  # SBATCH_ARGS is a list of options
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array=0-$((n - 1)) "$here/study-array.sh" \
  "$study" "$shards" "$@")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency=afterok:"$array" \
  "$here/study-merge.sh" "$shards" "$out")
echo "array job $array ($n shards into $shards), merge job ${merge%%;*} into $out"
