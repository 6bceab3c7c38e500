#!/usr/bin/env bash
# The CI campaign after the normal tests (docs/fuzzing.md): every fuzz harness for a bounded
# time (scripts/fuzz.sh), then the sanitizer builds and their tests (scripts/sanitize.sh).
# Prints the wall time of each part; fails when any part fails (all parts still run).
#
#   scripts/campaign.sh [SECONDS_PER_HARNESS]     (default 60)
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
bash scripts/setup.sh || exit 1

status=0
times=()
part() {
  local name=$1 t0=$SECONDS rc=0
  shift
  echo "==== campaign: $name: $*"
  "$@" || rc=$?
  times+=("$(printf '%-22s %6d s  %s' "$name" $((SECONDS - t0)) "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc)")")")
  [ $rc = 0 ] || status=1
}
t_all=$SECONDS
# ASan first: its build (clang) holds the fuzz harnesses too, so fuzz.sh only runs them.
part "sanitize asan+ubsan" bash scripts/sanitize.sh asan
if [ -f build-asan/fuzz/fuzz_idx ]; then
  part "fuzz (${SECS} s each)" env DETDL_FUZZ_BUILD=build-asan bash scripts/fuzz.sh "$SECS"
else
  part "fuzz (${SECS} s each)" bash scripts/fuzz.sh "$SECS"
fi
part "sanitize tsan" bash scripts/sanitize.sh tsan
echo "==== campaign timings (wall)"
printf '%s\n' "${times[@]}"
printf '%-22s %6d s\n' total $((SECONDS - t_all))
exit $status
