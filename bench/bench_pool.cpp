// LeNet's fused relu + 2x2 max pool, forward and backward, at its two pools (batch 128; a
// tenth of a one-thread LeNet-5 epoch in perf, 2026-12-06). No peer: oneDNN's pooling would
// need the relu as a separate pass; the rows here track detdl's own kernels.
//   build-cpu/bench/bench_pool
//   build-cpu/bench/bench_pool --benchmark_filter=fwd   (forward only)
// fwd_in_cache: the forward one sample at a time on a sample in cache, as
// conv2d_relu_max_pool2d runs it right after each sample's convolution (sample 0, N times:
// the rate at which a batch's samples pool there).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/common/shapes.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/pool.h"

namespace {

using namespace detdl;

struct NamedPool {
  const char* name;
  Pool2dShape s;
};

// LeNet-5 in Keras form: its 2x2 pools after the 28 x 28 and 14 x 14 convolutions (LeNet-1's
// are the same with 4 and 12 channels).
std::vector<NamedPool> pools() {
  return {
      {"lenet5_p1", pool2d_shape(128, 6, 28, 28, 2, 2, 2, 0)},
      {"lenet5_p2", pool2d_shape(128, 16, 14, 14, 2, 2, 2, 0)},
  };
}

std::vector<float> randn(std::int64_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& e : v) e = dist(gen);
  return v;
}

void pool_in_cache(benchmark::State& state, Pool2dShape s) {
  cpu::set_num_threads(1);
  const std::int64_t in = s.C * s.H * s.W, out = s.C * s.OH * s.OW;  // one sample
  const std::vector<float> x = randn(in, 1);
  std::vector<float> y(static_cast<std::size_t>(out));
  std::vector<std::int32_t> argmax(static_cast<std::size_t>(out));
  for (auto _ : state) {
    for (std::int64_t n = 0; n < s.N; ++n)
      cpu::relu_maxpool2d_forward_sample(s, 0, x.data(), y.data(), argmax.data());
    benchmark::ClobberMemory();
  }
}

void pool_pass(benchmark::State& state, Pool2dShape s, bool backward, int threads) {
  cpu::set_num_threads(threads);
  const std::int64_t in = s.N * s.C * s.H * s.W, out = s.N * s.C * s.OH * s.OW;
  const std::vector<float> x = randn(in, 1), dy = randn(out, 2);
  std::vector<float> y(static_cast<std::size_t>(out)), dx(static_cast<std::size_t>(in));
  std::vector<std::int32_t> argmax(static_cast<std::size_t>(out));
  cpu::relu_maxpool2d_forward(s, x.data(), y.data(), argmax.data());
  for (auto _ : state) {
    if (backward)
      cpu::relu_maxpool2d_backward(s, x.data(), y.data(), dy.data(), argmax.data(), dx.data());
    else
      cpu::relu_maxpool2d_forward(s, x.data(), y.data(), argmax.data());
    benchmark::ClobberMemory();
  }
  // Bytes each pass must move at least: x (and dx) once, y and argmax (and dy) once.
  const double bytes = backward ? 4.0 * (in + 3 * out) : 4.0 * (in + 2 * out);
  state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  cpu::set_num_threads(1);
}

}  // namespace

int main(int argc, char** argv) {
  for (const NamedPool& p : pools())
    for (int threads : {1, 2})
      for (bool backward : {false, true}) {
        const std::string name = std::string("pool/") + p.name + (backward ? "/bwd" : "/fwd") +
                                 "/t" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), pool_pass, p.s, backward, threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
  for (const NamedPool& p : pools()) {
    const std::string name = std::string("pool/") + p.name + "/fwd_in_cache/t1";
    benchmark::RegisterBenchmark(name.c_str(), pool_in_cache, p.s)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
