#!/bin/bash
# Starts a one-node Slurm cluster on this machine (munge, slurmctld, slurmd from Debian's
# packages, everything in a temporary directory, as root), runs a 4-task array of a tiny
# study plus the merge through scripts/slurm/submit-study.sh, and checks that the merged
# store has the rows of the same study run locally (keys and weight hashes). Exit 0: equal;
# 1: different or a job failed; 77: Slurm did not come up within a minute (skip).
#
#   bash scripts/slurm/one-node-check.sh [build/detdl]
#
# Installs slurmctld, slurmd, slurm-client and munge when missing (apt-get, as root).
# docs/scale.md records a run of it.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
detdl=$(realpath "${1:-build/detdl}")
[ -x "$detdl" ] || { echo "one-node-check: no detdl at $detdl" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "one-node-check: run as root (it starts slurmd)" >&2; exit 77; }
for p in slurmctld slurmd slurm-client munge; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ -n "${missing[*]:-}" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    { echo "one-node-check: could not install ${missing[*]}" >&2; exit 77; }
fi

work=$(mktemp -d /tmp/detdl-slurm.XXXXXX)
host=$(hostname -s)
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{munge,state,spool,log,shards}

# munge: its own key, socket and files (root may run it with --force).
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.sock" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
  --seed-file="$work/munge/seed" --foreground 2>>"$work/log/munged.out" &
pids+=($!)

cpus=$(nproc)
export SLURM_CONF=$work/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=detdl-check
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
sleep 1
slurmctld -D -c >"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -c >"$work/log/slurmd.out" 2>&1 &
pids+=($!)
up=""
for _ in $(seq 60); do
  if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then up=1; break; fi
  sleep 1
done
if [ -z "$up" ]; then
  echo "one-node-check: Slurm did not come up within a minute; its logs:" >&2
  tail -5 "$work"/log/*.log "$work"/log/*.out >&2
  exit 77
fi
echo "one-node-check: Slurm is up ($(sinfo -h -o '%P %D %t %c' | head -1))"

study=$work/tiny.toml
cat >"$study" <<'EOF'
name = "slurm-check"
repetitions = 4
[experiment]
net = "mlp:16"
data = "blobs"
epochs = 2
batch_size = 32
[[setting]]
name = "fixed"
[[setting]]
name = "varied"
vary = ["all"]
EOF
t0=$SECONDS
(cd "$work" && DETDL=$detdl SBATCH_ARGS="--cpus-per-task=1 --chdir=$work" \
  bash "$root/scripts/slurm/submit-study.sh" 4 "$study" "$work/shards" "$work/merged.sqlite") ||
  { echo "one-node-check: submit failed" >&2; exit 1; }
for _ in $(seq 300); do
  [ -z "$(squeue -h 2>/dev/null)" ] && break
  sleep 1
done
echo "one-node-check: the array and the merge ran in $((SECONDS - t0)) s"
echo "one-node-check: shard stores:" "$(cd "$work/shards" && echo *)"
"$detdl" study run "$study" --store "$work/local.sqlite" --quiet >/dev/null || exit 1
q="SELECT key || ' ' || weight_hash FROM runs ORDER BY key"
if ! [ -f "$work/merged.sqlite" ]; then
  echo "one-node-check: no merged store; job output:" >&2
  cat "$work"/*.out >&2 2>/dev/null
  exit 1
fi
if [ "$(sqlite3 "$work/merged.sqlite" "$q")" = "$(sqlite3 "$work/local.sqlite" "$q")" ]; then
  echo "one-node-check: merged store = local run ($(sqlite3 "$work/merged.sqlite" 'SELECT count(*) FROM runs') rows, keys and weight hashes)"
  exit 0
fi
echo "one-node-check: merged store differs from the local run" >&2
diff <(sqlite3 "$work/merged.sqlite" "$q") <(sqlite3 "$work/local.sqlite" "$q") >&2
exit 1
