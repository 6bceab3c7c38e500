#!/usr/bin/env bash
# Sanitizer builds of the CPU code and its tests (docs/fuzzing.md, "Sanitizer builds"):
#   asan: the whole CPU test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#         (+ LeakSanitizer) in build-asan/, all ctest tests;
#   tsan: the threaded kernel tests, the study runner and store tests under
#         ThreadSanitizer in build-tsan/, with the CUDA kernels' tests in host mode
#         (racecheck: a missing barrier in a test kernel must be reported).
# Any sanitizer report fails the run, also one from a child process (the detdl command
# line the CLI tests start, the runner's forked workers): reports go to files
# (log_path) which are checked after the tests, whatever the tests' own verdicts.
#
#   scripts/sanitize.sh [asan|tsan|all]      (default all)
#
# asan also builds the libFuzzer harnesses in the same tree (-DDETDL_FUZZ=ON: clang, libFuzzer's
# coverage in the parsers' libraries only), so that scripts/fuzz.sh can run them from there
# (DETDL_FUZZ_BUILD=build-asan, as scripts/campaign.sh does) instead of building everything
# a third time: clang also compiles this code under ASan about twice as fast as g++.
#
# Environment: DETDL_SAN_CXX / DETDL_SAN_CC (compiler, default clang++ / clang), DETDL_SAN_JOBS
# (build and ctest jobs, default 2), DETDL_ASAN_SKIP (ctest -E regex of tests not run under
# ASan; default below, see docs/fuzzing.md for why), extra ctest arguments in
# DETDL_SAN_CTEST_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-all}
JOBS=${DETDL_SAN_JOBS:-2}
SAN_CXX=${DETDL_SAN_CXX:-clang++}
SAN_CC=${DETDL_SAN_CC:-clang}
# Tests too slow under ASan on 2 cores to be worth their minutes (docs/fuzzing.md).
# The MPI runner's tests start detdl under mpirun: OpenMPI's libraries (not instrumented)
# leave their allocations to the exit, which LeakSanitizer would report as detdl's.
ASAN_SKIP=${DETDL_ASAN_SKIP-MpiRunner}
# The threaded tests run under TSan: every kernel test (the pool runs them on 1..N threads),
# the training tests that set threads, the study runner (forks workers) and the store
# (several connections, one per process / thread).
TSAN_TESTS=(test_activation test_batchnorm test_conv test_dropout test_gemm test_loss test_optim
            test_pool test_reduction test_runner test_store
            test_emulated_gemm test_emulated_conv test_emulated_reduce test_emulated_loss
            test_emulated_elementwise test_butter_batched
            test_host_mode test_gpu_kernels)

# Extra configure arguments of the next configure_build.
EXTRA_CMAKE=()

# configure_build DIR SANITIZERS TARGET...
configure_build() {
  local dir=$1 san=$2 t0=$SECONDS
  shift 2
  mkdir -p "$dir"
  # -O2 -g1: optimised enough that the training tests finish, line tables for the stacks;
  # no NDEBUG, so assert()s are live as well.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1" \
    -DCMAKE_CXX_COMPILER="$SAN_CXX" -DCMAKE_C_COMPILER="$SAN_CC" -DDETDL_SANITIZE="$san" \
    -DDETDL_CUDA=OFF -DDETDL_BUILD_BENCH=OFF -DDETDL_BUILD_TESTS=ON ${EXTRA_CMAKE[@]+"${EXTRA_CMAKE[@]}"} \
    >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; exit 1; }
  cmake --build "$dir" -j"$JOBS" ${1:+--target "$@"} >"$dir/build.log" 2>&1 ||
    { grep -B2 -A12 -m5 'error' "$dir/build.log" | head -80; echo "sanitize: build failed ($dir/build.log)"; exit 1; }
  echo "sanitize: built $dir ($san) in $((SECONDS - t0)) s"
}

# run_ctest DIR NAME CTEST-ARGS...: runs the tests, then fails on any sanitizer log.
run_ctest() {
  local dir=$1 name=$2 t0=$SECONDS rc=0
  shift 2
  local logs="$ROOT/$dir/sanitizer-logs"
  rm -rf "$logs"
  mkdir -p "$logs"
  (cd "$dir" && ctest --output-on-failure -j"$JOBS" "$@" ${DETDL_SAN_CTEST_ARGS:-}) >"$dir/ctest.log" 2>&1 || rc=$?
  grep -E '^(Total Test time|[0-9]+% tests passed)|\*\*\*|Failed|Timeout' "$dir/ctest.log" | tail -30 || true
  echo "sanitize: $name tests ran in $((SECONDS - t0)) s (ctest exit $rc, log $dir/ctest.log)"
  if compgen -G "$logs/*" >/dev/null; then
    echo "sanitize: $name: sanitizer reports in $logs:"
    for f in "$logs"/*; do echo "---- $f"; head -60 "$f"; done
    rc=1
  fi
  return $rc
}

status=0
if [ "$MODE" = asan ] || [ "$MODE" = all ]; then
  # float-cast-overflow: part of clang's "undefined" but not of g++'s, and the fuzzers found
  # two such casts (docs/fuzzing.md).
  # The fuzz harnesses need clang (libFuzzer); with another compiler this is ASan alone.
  EXTRA_CMAKE=()
  [[ "$("$SAN_CXX" --version 2>/dev/null)" == *clang* ]] && EXTRA_CMAKE=(-DDETDL_FUZZ=ON)
  configure_build build-asan "address,undefined,float-cast-overflow"
  EXTRA_CMAKE=()
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$ROOT/build-asan/sanitizer-logs/asan"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$ROOT/build-asan/sanitizer-logs/ubsan"
  export LSAN_OPTIONS="suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0"
  run_ctest build-asan "ASan+UBSan" ${ASAN_SKIP:+-E "$ASAN_SKIP"} || status=1
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
fi
if [ "$MODE" = tsan ] || [ "$MODE" = all ]; then
  # Host mode (docs/gpu.md): the CUDA kernels' tests run here too, every CUDA thread a fiber
  # that ThreadSanitizer sees as a thread of its own: it stands in for compute-sanitizer's
  # racecheck (races on shared memory between the threads of a block).
  EXTRA_CMAKE=(-DDETDL_CUDA_HOST=ON)
  configure_build build-tsan thread "${TSAN_TESTS[@]}" detdl
  EXTRA_CMAKE=()
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$ROOT/build-tsan/sanitizer-logs/tsan"
  # Only the executables above are built; ctest lists the others as <name>_NOT_BUILT.
  # Host mode under TSan: one schedule is enough (TSan judges happens-before, not the order
  # things ran in), and the two largest GPU kernel cases take minutes there while adding no
  # kernel the smaller cases do not run.
  export GTEST_FILTER='-Gpu.GemmPortableWithManyTiles*:Gpu.ConvFastWeightGradientVaries*'
  # Host mode also registers tests whose executables are not built here (the engine on
  # CUDA, cuDNN, the dev harnesses): left out by name, as ctest would call them not run.
  run_ctest build-tsan "TSan" \
    -E '_NOT_BUILT$|_seeded_schedule$|^test_gpu_engine$|^test_gpu_cudnn$|^dev_.*_validate$' ||
    status=1
  unset GTEST_FILTER
  # The racecheck's own check: a kernel without its barrier must be reported.
  race_logs="$ROOT/build-tsan/race-check-logs"
  rm -rf "$race_logs"
  mkdir -p "$race_logs"
  TSAN_OPTIONS="halt_on_error=0:exitcode=0:log_path=$race_logs/tsan" DETDL_TSAN_RACE_CHECK=1 \
    build-tsan/tests/gpu/test_host_mode --gtest_filter=HostMode.AMissingBarrierShowsInTheResults \
    >"$race_logs/test.log" 2>&1 || true
  if cat "$race_logs"/tsan* 2>/dev/null | grep -q "data race" &&
    cat "$race_logs"/tsan* | grep -q "neighbour_kernel"; then
    echo "sanitize: racecheck: TSan reports the missing barrier of neighbour_kernel (as it must)"
  else
    echo "sanitize: racecheck: TSan did NOT report the missing barrier of neighbour_kernel"
    status=1
  fi
  unset TSAN_OPTIONS
fi
exit $status
