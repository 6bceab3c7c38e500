#!/bin/bash
# One task of a Slurm job array that runs a detdl study in shards: task I of N runs the rows
# of shard I/N (rows by key, `detdl study run --shard`) into its own SQLite store, so tasks
# never share a file (SQLite over NFS is not to be trusted with concurrent writers). Submit
# with scripts/slurm/submit-study.sh, which also queues the merge after the array.
#
#   sbatch --array=0-(N-1) scripts/slurm/study-array.sh STUDY.toml SHARD_DIR [detdl study run options]
#
# Resubmitting the same array after a failure (a node lost, a time limit hit) resumes every
# shard where it stopped: each store keeps the runs it finished.
#SBATCH --job-name=detdl-study
#SBATCH --cpus-per-task=2
#SBATCH --output=%x-%A_%a.out
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: sbatch --array=0-(N-1) $0 STUDY.toml SHARD_DIR [detdl study run options]" >&2
  exit 2
fi
study=$1 shards=$2
shift 2
: "${SLURM_ARRAY_TASK_ID:?not inside a Slurm job array (sbatch --array=0-(N-1))}"
# SLURM_ARRAY_TASK_COUNT is the number of tasks; with --array=0-(N-1) that is N.
count=${SLURM_ARRAY_TASK_COUNT:-$((SLURM_ARRAY_TASK_MAX + 1))}
detdl=${DETDL:-detdl}
mkdir -p "$shards"
exec "$detdl" study run "$study" --shard "$SLURM_ARRAY_TASK_ID/$count" \
  --store "$shards/shard-$SLURM_ARRAY_TASK_ID-of-$count.sqlite" \
  --jobs "${SLURM_CPUS_PER_TASK:-1}" --quiet "$@"
