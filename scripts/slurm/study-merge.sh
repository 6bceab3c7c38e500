#!/bin/bash
# The step after a study's job array (scripts/slurm/submit-study.sh queues it with
# --dependency=afterok:ARRAY): joins the shard stores into one with `detdl study merge`,
# which refuses conflicting rows (same key, another weight hash) and keeps identical ones
# once, then prints the study's tables.
#
#   sbatch scripts/slurm/study-merge.sh SHARD_DIR OUT.sqlite
#SBATCH --job-name=detdl-merge
#SBATCH --cpus-per-task=1
#SBATCH --output=%x-%j.out
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: sbatch $0 SHARD_DIR OUT.sqlite" >&2
  exit 2
fi
shards=$1 out=$2
detdl=${DETDL:-detdl}
shopt -s nullglob
stores=("$shards"/shard-*.sqlite)
if [ ${#stores[@]} -eq 0 ]; then
  echo "study-merge: no shard stores in $shards" >&2
  exit 1
fi
"$detdl" study merge "$out" "${stores[@]}"
"$detdl" study table "$out"
