// The lane kernels' products (kernels/cpu/lanes.h) at the shapes of BUTTER's batched runs
// (nets/butter_batched.cpp): one dense layer's forward, weight gradient and data gradient
// for a lane group of repetitions, one thread. GFLOP/s counts every lane (2 * I * J * R *
// lanes per call). No peer: the lanes' arithmetic has no library equivalent (a batched GEMM
// of tiny matrices is what the rows of bench/RESULTS.md compare against, end to end).
// `subnormal_dy` 1 scales the output gradient into the subnormals (x 1e-39): what the
// backward passes see once a net's softmax saturates on its training set (an overfit
// BUTTER net's p - y), where products and sums of subnormals take the CPU's slow path;
// `subnormal_dy` 2 does the same under flush_subnormals (FTZ+DAZ, kernels/cpu/fpmode.h:
// TensorFlow's CPU arithmetic), where the subnormal operands read as zero.
//
//   build-cpu/bench/bench_lanes --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/fpmode.h"
#include "kernels/cpu/lanes.h"

namespace {

using detdl::cpu::lanes::Kernels;
using i64 = std::int64_t;

std::vector<float> filled(i64 n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = u(gen);
  return v;
}

enum Pass { fwd = 0, wgrad = 1, dgrad = 2 };

// A dense layer of `in` -> `out` units over a batch of `rows`: the pass's product.
void lane_product(benchmark::State& state) {
  const auto pass = static_cast<Pass>(state.range(0));
  const i64 rows = state.range(1), in = state.range(2), out = state.range(3);
  const bool subnormal_dy = state.range(4) != 0;
  const detdl::cpu::FlushSubnormalsScope flush(state.range(4) == 2);
  const Kernels& k = detdl::cpu::lanes::kernels();
  const i64 L = k.lanes;
  const std::vector<float> x = filled(rows * in * L, 1), w = filled(out * in * L, 2);
  std::vector<float> dy = filled(rows * out * L, 3);
  if (subnormal_dy)
    for (float& v : dy) v *= 1e-39f;
  std::vector<float> c(static_cast<std::size_t>(std::max(rows, out) * std::max(in, out) * L));
  i64 I = 0, J = 0, R = 0;
  for (auto _ : state) {
    switch (pass) {
      case fwd:  // y (rows, out) = x w^T
        I = rows, J = out, R = in;
        detdl::cpu::lanes::dot(k, I, J, R, x.data(), in, 1, w.data(), in, 1, c.data(), out, 1);
        break;
      case wgrad:  // dw (out, in) = dy^T x
        I = out, J = in, R = rows;
        detdl::cpu::lanes::dot(k, I, J, R, dy.data(), 1, out, x.data(), 1, in, c.data(), in, 1);
        break;
      case dgrad:  // dx (rows, in) = dy w
        I = rows, J = in, R = out;
        detdl::cpu::lanes::dot(k, I, J, R, dy.data(), out, 1, w.data(), 1, in, c.data(), in, 1);
        break;
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(2 * I * J * R * L),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["lanes"] = static_cast<double>(L);
}

// {pass, rows, in, out, subnormal_dy}: mnist at 2^14 (784 -> 20 -> 20 -> 10) and
// wine_quality_white at 2^10 (11 -> 23 -> 23 -> 7), batch 256; mnist at 2^15 (784 -> 39 ->
// 39 -> 10) with normal output gradients (0), subnormal ones (1) and subnormal ones flushed (2).
BENCHMARK(lane_product)
    ->ArgNames({"pass", "rows", "in", "out", "subnormal_dy"})
    ->Args({fwd, 256, 784, 20, 0})
    ->Args({wgrad, 256, 784, 20, 0})
    ->Args({fwd, 256, 20, 20, 0})
    ->Args({wgrad, 256, 20, 20, 0})
    ->Args({dgrad, 256, 20, 20, 0})
    ->Args({fwd, 256, 11, 23, 0})
    ->Args({wgrad, 256, 11, 23, 0})
    ->Args({fwd, 256, 23, 23, 0})
    ->Args({wgrad, 256, 23, 23, 0})
    ->Args({dgrad, 256, 23, 23, 0})
    ->Args({fwd, 256, 23, 7, 0})
    ->Args({wgrad, 256, 23, 7, 0})
    ->Args({dgrad, 256, 23, 7, 0})
    ->Args({wgrad, 256, 784, 39, 0})
    ->Args({wgrad, 256, 784, 39, 1})
    ->Args({wgrad, 256, 784, 39, 2})
    ->Args({wgrad, 256, 39, 39, 0})
    ->Args({wgrad, 256, 39, 39, 1})
    ->Args({wgrad, 256, 39, 39, 2})
    ->Args({dgrad, 256, 39, 39, 0})
    ->Args({dgrad, 256, 39, 39, 1})
    ->Args({dgrad, 256, 39, 39, 2});

}  // namespace

BENCHMARK_MAIN();
