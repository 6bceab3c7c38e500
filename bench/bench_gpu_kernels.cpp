// GPU kernel benchmarks (built only with the CUDA backend; run on a GPU machine):
//   - SGEMM: detdl `portable` and `fast` against cuBLAS with TF32 off (the goal:
//     portable >= 0.8x cuBLAS FP32 at 4096^3) and cuBLAS TF32 (for scale);
//   - convolution forward / data gradient / weight gradient, `portable` against `fast`
//     (goal: portable <= 1.1x fast), and against cuDNN with its deterministic algorithms
//     (cudnn-repeatable) and its fastest ones (cudnn-fast), on ResNet-56 and WRN-sized
//     layers (cuDNN rows report an error when detdl was built without cuDNN).
// GFLOP/s from wall time of the stream-synchronised call (CUDA events would hide nothing
// here: every call ends with a synchronise). Record results in bench/RESULTS.md with the
// GPU model and date: build-gpu/bench/bench_gpu_kernels --benchmark_repetitions=3
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <vector>

#include "kernels/common/random.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/vendor.h"
#include "kernels/cuda/vendor_cudnn.h"

namespace {

using detdl::Level;

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

float* device_random(std::int64_t n, std::uint64_t seed) {
  std::vector<float> h(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    h[i] = detdl::philox_uniform_range(-1.0f, 1.0f, seed, detdl::RandomStream::test, 0,
                                       static_cast<std::uint64_t>(i));
  float* d = nullptr;
  DETDL_CUDA_CHECK(cudaMalloc(&d, h.size() * sizeof(float)));
  DETDL_CUDA_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
  return d;
}

// impl: 0 portable, 1 fast, 2 cuBLAS FP32, 3 cuBLAS TF32.
void BM_sgemm(benchmark::State& st) {
  if (!have_gpu()) {
    st.SkipWithError("no CUDA device");
    return;
  }
  const std::int64_t n = st.range(0);
  const int impl = static_cast<int>(st.range(1));
  float* a = device_random(n * n, 1);
  float* b = device_random(n * n, 2);
  float* c = nullptr;
  DETDL_CUDA_CHECK(cudaMalloc(&c, n * n * sizeof(float)));
  auto call = [&] {
    if (impl <= 1)
      detdl::cuda::sgemm(impl == 0 ? Level::portable : Level::fast, false, false, n, n, n, a, n, b,
                         n, c, n, nullptr);
    else
      detdl::cuda::cublas_sgemm(impl == 3, false, false, n, n, n, a, n, b, n, c, n, nullptr);
    DETDL_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  };
  call();  // warm-up (and cuBLAS handle creation)
  for (auto _ : st) call();
  // GFLOP per call as a rate: Google Benchmark prints GFLOP=N/s (as bench_gemm does).
  st.counters["GFLOP"] =
      benchmark::Counter(2e-9 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(impl == 0   ? "portable"
              : impl == 1 ? "fast"
              : impl == 2 ? "cublas-fp32"
                          : "cublas-tf32");
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
}
BENCHMARK(BM_sgemm)
    ->ArgsProduct({{1024, 2048, 4096}, {0, 1, 2, 3}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Conv layers: (N, C, H, W, O) 3x3 'same' stride 1. pass: 0 forward, 1 data grad, 2 weight grad.
// impl: 0 own portable, 1 own fast, 2 cuDNN repeatable (deterministic algorithms, FP32),
// 3 cuDNN fast (fastest algorithm, TF32 allowed).
void BM_conv(benchmark::State& st) {
  if (!have_gpu()) {
    st.SkipWithError("no CUDA device");
    return;
  }
  const std::int64_t N = st.range(0), C = st.range(1), HW = st.range(2), O = st.range(3);
  const int pass = static_cast<int>(st.range(4));
  const int impl = static_cast<int>(st.range(5));
  if (impl >= 2 && !detdl::cuda::cudnn_available()) {
    st.SkipWithError("built without cuDNN");
    return;
  }
  const Level level = impl == 0 ? Level::portable : impl == 2 ? Level::repeatable : Level::fast;
  const auto s = detdl::conv2d_shape_same(N, C, HW, HW, O, 3, 3, 1);
  float* x = device_random(N * C * HW * HW, 3);
  float* w = device_random(O * C * 9, 4);
  float* y = device_random(N * O * s.OH * s.OW, 5);
  float* out = nullptr;
  DETDL_CUDA_CHECK(cudaMalloc(&out, std::max(N * C * HW * HW, O * C * 9) * sizeof(float)));
  auto call = [&] {
    if (impl < 2) {
      if (pass == 0) detdl::cuda::conv2d_forward(level, s, x, w, nullptr, y, nullptr);
      if (pass == 1) detdl::cuda::conv2d_backward_data(level, s, y, w, out, nullptr);
      if (pass == 2) detdl::cuda::conv2d_backward_weight(level, s, x, y, out, nullptr);
    } else {
      if (pass == 0) detdl::cuda::cudnn_conv2d_forward(level, s, x, w, nullptr, y, nullptr);
      if (pass == 1) detdl::cuda::cudnn_conv2d_backward_data(level, s, y, w, out, nullptr);
      if (pass == 2) detdl::cuda::cudnn_conv2d_backward_weight(level, s, x, y, out, nullptr);
    }
    DETDL_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  };
  call();
  for (auto _ : st) call();
  st.counters["GFLOP"] = benchmark::Counter(2e-9 * N * O * s.OH * s.OW * C * 9,
                                            benchmark::Counter::kIsIterationInvariantRate);
  static const char* const kImpl[] = {" portable", " fast", " cudnn-repeatable", " cudnn-fast"};
  st.SetLabel(std::string(pass == 0 ? "fwd" : pass == 1 ? "dgrad" : "wgrad") + kImpl[impl]);
  cudaFree(x);
  cudaFree(w);
  cudaFree(y);
  cudaFree(out);
}
// ResNet-56 stage 1 and stage 3 at batch 128; a WRN-28-10 group-2 layer at batch 128.
BENCHMARK(BM_conv)
    ->ArgsProduct({{128}, {16}, {32}, {16}, {0, 1, 2}, {0, 1, 2, 3}})
    ->ArgsProduct({{128}, {64}, {8}, {64}, {0, 1, 2}, {0, 1, 2, 3}})
    ->ArgsProduct({{128}, {320}, {16}, {320}, {0, 1, 2}, {0, 1, 2, 3}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
