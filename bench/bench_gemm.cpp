// CPU GEMM: detdl portable and fast against OpenBLAS cblas_sgemm, same shapes, same
// thread counts, in the same run. Results and the machine: bench/RESULTS.md.
//   build-a/bench/bench_gemm --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
// Args: (implementation 0 portable / 1 fast / 2 OpenBLAS, shape index, threads).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#if DETDL_HAVE_OPENBLAS
#include <cblas.h>
#endif

using namespace detdl;
using i64 = std::int64_t;

namespace {

struct Shape {
  const char* name;
  i64 M, N, K;
  bool ta, tb;
};
// Square products, and a convolution weight gradient (dW (O, C*KH*KW) = dY (O, P) *
// cols (C*KH*KW, P)^T over P = batch * rows * cols positions): 64 x 576, K = 131072.
const Shape kShapes[] = {
    {"512", 512, 512, 512, false, false},
    {"1024", 1024, 1024, 1024, false, false},
    {"2048", 2048, 2048, 2048, false, false},
    {"wgrad64x576xK131072", 64, 576, 131072, false, true},
};

float value(i64 i) { return static_cast<float>((i * 7919) % 2001 - 1000) * 1e-3f; }

void gemm(benchmark::State& state) {
  const int impl = static_cast<int>(state.range(0));
  const Shape& s = kShapes[state.range(1)];
  const int threads = static_cast<int>(state.range(2));
  const i64 lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
  std::vector<float> A(s.M * s.K), B(s.K * s.N), C(s.M * s.N);
  for (i64 i = 0; i < static_cast<i64>(A.size()); ++i) A[i] = value(i);
  for (i64 i = 0; i < static_cast<i64>(B.size()); ++i) B[i] = value(i + 17);
#if DETDL_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
#else
  if (impl == 2) {
    state.SkipWithError("built without OpenBLAS");
    return;
  }
#endif
  cpu::set_num_threads(threads);
  auto run = [&] {
    if (impl == 2) {
#if DETDL_HAVE_OPENBLAS
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                  static_cast<int>(s.M), static_cast<int>(s.N), static_cast<int>(s.K), 1.0f,
                  A.data(), static_cast<int>(lda), B.data(), static_cast<int>(ldb), 0.0f, C.data(),
                  static_cast<int>(s.N));
#endif
    } else {
      cpu::sgemm(impl == 0 ? Level::portable : Level::fast, s.ta, s.tb, s.M, s.N, s.K, A.data(),
                 lda, B.data(), ldb, C.data(), s.N);
    }
  };
  run();  // warm-up: page in C, grow the packing buffers
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  // Check the output after timing: a few elements against a float64 dot, within the
  // rigorous bound of a K-long fmaf chain (K * 2^-24 * sum |a b|; fast's single chain over
  // K = 131072 of these biased values is ~5e-5 off in relative terms, legitimately).
  for (i64 t = 0; t < 8; ++t) {
    const i64 m = (t * 37) % s.M, n = (t * 101) % s.N;
    double exact = 0.0, mag = 0.0;
    for (i64 k = 0; k < s.K; ++k) {
      const double p = static_cast<double>(s.ta ? A[k * lda + m] : A[m * lda + k]) *
                       (s.tb ? B[n * ldb + k] : B[k * ldb + n]);
      exact += p;
      mag += std::fabs(p);
    }
    if (std::fabs(C[m * s.N + n] - exact) > static_cast<double>(s.K) * 0x1p-24 * mag + 1e-30) {
      state.SkipWithError("wrong result");
      break;
    }
  }
  state.counters["GFLOP"] = benchmark::Counter(2e-9 * static_cast<double>(s.M * s.N) * s.K,
                                               benchmark::Counter::kIsIterationInvariantRate);
  static const char* kImpl[] = {"detdl_portable", "detdl_fast", "openblas"};
  state.SetLabel(std::string(kImpl[impl]) + " " + s.name + " t" + std::to_string(threads));
}

void args(benchmark::internal::Benchmark* b) {
  for (int shape = 0; shape < 4; ++shape)
    for (int threads : {1, 2})
      for (int impl : {0, 1, 2}) b->Args({impl, shape, threads});
}

}  // namespace

BENCHMARK(gemm)->Apply(args)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  // The OpenBLAS actually loaded (its version and the kernel it picked for this CPU), into
  // the JSON's context: bench/peers.sh may run a copy packed from another machine.
  benchmark::AddCustomContext("openblas", openblas_get_config());
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
