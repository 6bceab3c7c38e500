#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang, -fsanitize=fuzzer,address,undefined) in
# build-fuzz/ and runs each for a bounded time from its seed corpus (fuzz/corpus/<name>/).
# Fails when any harness finds a crash, a sanitizer report, a timeout or an out-of-memory;
# prints each harness's executions (libFuzzer's final stats). See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]   (default 60 s; all harnesses)
#   scripts/fuzz.sh --make-corpus                       regenerate fuzz/corpus/ (seeds)
#
# Environment: DETDL_FUZZ_BUILD (build dir, default build-fuzz), DETDL_FUZZ_PARALLEL (how
# many harnesses run at once, default: the number of CPUs, at most 2), DETDL_FUZZ_JOBS (build
# jobs, default 2), DETDL_FUZZ_TIMEOUT (seconds one input may take, default 30),
# DETDL_FUZZ_RSS_MB (memory limit, default 2048). New inputs go to $BUILD/corpus/<name>/
# (not into the committed seeds); crashing inputs to $BUILD/artifacts/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${DETDL_FUZZ_BUILD:-build-fuzz}
JOBS=${DETDL_FUZZ_JOBS:-2}
NPROC=$(nproc)
PARALLEL=${DETDL_FUZZ_PARALLEL:-$(( NPROC < 2 ? NPROC : 2 ))}
TIMEOUT=${DETDL_FUZZ_TIMEOUT:-30}
RSS_MB=${DETDL_FUZZ_RSS_MB:-2048}
ALL=(fuzz_idx fuzz_cifar fuzz_pmlb fuzz_study_toml fuzz_study_json fuzz_experiment_json
     fuzz_safetensors fuzz_store)

configure_and_build() {
  local t0=$SECONDS
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    mkdir -p "$BUILD"
    CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDETDL_FUZZ=ON \
      -DDETDL_CUDA=OFF -DDETDL_BUILD_TESTS=OFF -DDETDL_BUILD_BENCH=OFF >"$BUILD/configure.log" 2>&1 ||
      { cat "$BUILD/configure.log"; rm -f "$BUILD/CMakeCache.txt"; echo "fuzz: configure failed"; exit 1; }
  fi
  cmake --build "$BUILD" -j"$JOBS" --target "$@" >"$BUILD/build.log" 2>&1 ||
    { tail -40 "$BUILD/build.log"; echo "fuzz: build failed (log: $BUILD/build.log)"; exit 1; }
  echo "fuzz: built $* in $((SECONDS - t0)) s"
}

if [ "${1:-}" = "--make-corpus" ]; then
  configure_and_build detdl_fuzz_make_corpus
  "$BUILD/fuzz/detdl_fuzz_make_corpus" fuzz/corpus
  du -sh fuzz/corpus
  exit 0
fi

SECS=${1:-60}
shift || true
HARNESSES=("$@")
((${#HARNESSES[@]})) || HARNESSES=("${ALL[@]}")
configure_and_build "${HARNESSES[@]}"

# ASan: leaks are findings too (the harnesses free everything they load).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One harness: its own work corpus (new units) first, then the committed seeds (read only).
run_one() {
  local h=$1 work="$BUILD/corpus/$1" art="$BUILD/artifacts/$1" rc=0
  mkdir -p "$work" "$art"
  "$BUILD/fuzz/$h" "$work" "$ROOT/fuzz/corpus/$h" -max_total_time="$SECS" -timeout="$TIMEOUT" \
    -rss_limit_mb="$RSS_MB" -print_final_stats=1 -artifact_prefix="$art/" >"$BUILD/$h.log" 2>&1 || rc=$?
  echo "$rc" >"$BUILD/$h.rc"
}

echo "fuzz: ${#HARNESSES[@]} harnesses x ${SECS} s, ${PARALLEL} at a time"
t0=$SECONDS
running=0
for h in "${HARNESSES[@]}"; do
  rm -f "$BUILD/$h.rc"
  run_one "$h" &
  running=$((running + 1))
  if ((running >= PARALLEL)); then wait -n || true; running=$((running - 1)); fi
done
wait || true

failed=0
printf '%-22s %14s %10s %8s  %s\n' harness executions exec/s corpus result
for h in "${HARNESSES[@]}"; do
  log="$BUILD/$h.log"
  rc=$(cat "$BUILD/$h.rc" 2>/dev/null || echo 255)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  units=$(find "$BUILD/corpus/$h" "$ROOT/fuzz/corpus/$h" -type f | wc -l)
  if [ "$rc" = 0 ]; then result=ok; else result="FAILED (exit $rc, log $log)"; failed=1; fi
  printf '%-22s %14s %10s %8s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "$units" "$result"
done
echo "fuzz: $((SECONDS - t0)) s of fuzzing"
if ((failed)); then
  for h in "${HARNESSES[@]}"; do
    [ "$(cat "$BUILD/$h.rc" 2>/dev/null)" = 0 ] && continue
    echo "---- $h (the report, frames in this project only; whole log $BUILD/$h.log; input in $BUILD/artifacts/$h/)"
    grep -E "ERROR:|runtime error:|invariant failed|SUMMARY:|Test unit written|^ +#[0-9]+ .* $ROOT/(engine|kernels|nets|variance|fuzz)/" \
      "$BUILD/$h.log" | cut -c1-400 | head -40
  done
  exit 1
fi
