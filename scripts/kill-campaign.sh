#!/usr/bin/env bash
# Kill campaign: a study survives any number of SIGKILLs and still ends with exactly the rows
# of an uninterrupted run.
#
#   scripts/kill-campaign.sh DETDL [KILLS] [STUDY]
#     DETDL  the detdl executable (e.g. build/detdl)
#     KILLS  how many SIGKILLs to deliver (default 100; CI runs 10)
#     STUDY  the study file (default studies/kill-campaign.toml: 40 runs of ~0.4 s)
#
# What it does: runs STUDY uninterrupted into a reference store. Then, round after round,
# into a fresh store: starts two `detdl study run` processes on that store (each in its own
# process group, so they share the plan through the store's claims), SIGKILLs each group
# at a random moment (0 to 1.5 s), and starts them again, until the store holds every row;
# once all KILLS are spent the last round runs to the end uninterrupted. Each round's store
# is compared with the reference row for row: keys and final weight hashes, no row lost,
# none extra, no run stored twice (a runner that finds its run already stored says so in
# its log) and no claim left behind. Prints one summary line and exits 1 on any difference.
#
# Needs bash, python3 (standard library only, for reading the SQLite stores) and GNU sleep.
set -euo pipefail
set -m  # job control: every background job gets its own process group

if [[ $# -lt 1 || $# -gt 3 ]]; then
  echo "usage: $0 DETDL [KILLS] [STUDY]" >&2
  exit 2
fi
detdl=$(realpath "$1")
kills=${2:-100}
study=$(realpath "${3:-$(dirname "$0")/../studies/kill-campaign.toml}")
[[ -x "$detdl" ]] || { echo "kill-campaign: $detdl is not executable" >&2; exit 2; }
[[ "$kills" =~ ^[0-9]+$ ]] || { echo "kill-campaign: KILLS must be a number, got '$kills'" >&2; exit 2; }
[[ -f "$study" ]] || { echo "kill-campaign: no study file $study" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kill-campaign.XXXXXX")
runners=()
cleanup() {
  local status=$?
  for pid in "${runners[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  if (( status != 0 )) && [[ -e /proc/self/fd/3 ]]; then exec 2>&3; fi
  if (( status > 1 )); then  # not a difference found: something broke; show why
    tail -n 20 "$work"/*.log >&2 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# key -> final hash of a store's runs, one "key hash" line each, sorted.
rows_of() {
  python3 - "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for key, h in sorted(db.execute("SELECT key, weight_hash FROM runs")):
    print(key, h)
EOF
}

claims_left() {
  python3 - "$1" <<'EOF'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM claims").fetchone()[0])
EOF
}

# A random delay in [0, 1.5) s, as text for sleep.
random_delay() {
  local ms=$(( (RANDOM * 32768 + RANDOM) % 1500 ))
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

reference="$work/reference.sqlite"
"$detdl" study run "$study" --store "$reference" --jobs 2 --quiet
rows_of "$reference" > "$work/reference.rows"
planned=$(wc -l < "$work/reference.rows")

delivered=0 rounds=0 lost=0 extra=0 duplicated=0 differ=0 leftover=0
# bash reports every killed job ("line N: PID Killed ..."): that is the campaign working,
# so the shell's own messages go to a file while it runs.
exec 3>&2 2>>"$work/shell.log"
while :; do
  rounds=$((rounds + 1))
  store="$work/round$rounds.sqlite"
  log="$work/round$rounds.log"
  : > "$log"
  while :; do
    stored=0
    [[ -f "$store" ]] && stored=$(rows_of "$store" | wc -l)
    (( stored == planned )) && break
    if (( delivered >= kills )); then
      # Every kill delivered: finish the round without interruption.
      "$detdl" study run "$study" --store "$store" --jobs 2 >> "$log" 2>&1
      continue
    fi
    runners=()
    for _ in 1 2; do
      "$detdl" study run "$study" --store "$store" --jobs 1 >> "$log" 2>&1 &
      runners+=("$!")
    done
    for pid in "${runners[@]}"; do
      (( delivered < kills )) || break
      sleep "$(random_delay)"
      # Counted only when the group was still there to be killed.
      if kill -KILL -- "-$pid" 2>/dev/null; then delivered=$((delivered + 1)); fi
    done
    for pid in "${runners[@]}"; do wait "$pid" 2>/dev/null || true; done
    runners=()
  done
  rows_of "$store" > "$work/round.rows"
  lost=$((lost + $(comm -23 <(cut -d' ' -f1 "$work/reference.rows") <(cut -d' ' -f1 "$work/round.rows") | wc -l)))
  extra=$((extra + $(comm -13 <(cut -d' ' -f1 "$work/reference.rows") <(cut -d' ' -f1 "$work/round.rows") | wc -l)))
  # Same keys, another hash.
  differ=$((differ + $(join "$work/reference.rows" "$work/round.rows" | awk '$2 != $3' | wc -l)))
  duplicated=$((duplicated + $(grep -c "another runner stored it first" "$log" || true)))
  leftover=$((leftover + $(claims_left "$store")))
  (( delivered < kills )) || break
done
exec 2>&3 3>&-

hashes="all hashes equal"
(( differ == 0 )) || hashes="$differ hashes differ"
echo "kill campaign: $delivered kills, $rounds round(s) of $planned rows, $lost lost, $((duplicated + extra)) duplicated, $hashes, $leftover claims left"
(( lost == 0 && extra == 0 && duplicated == 0 && differ == 0 && leftover == 0 ))
