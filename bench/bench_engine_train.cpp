// Whole training steps (forward, backward, optimizer) of the engine's MLP and small CNN,
// per determinism level and thread count: what `portable` costs against `fast`.
//   build/bench/bench_engine_train --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "engine/autograd.h"
#include "engine/train.h"
#include "kernels/cpu/parallel.h"
#include "nets/simple.h"
#include "nets/synthetic.h"

using namespace detdl;

namespace {

void train_steps(benchmark::State& state, bool cnn) {
  const int threads = static_cast<int>(state.range(0));
  const Level level = static_cast<Level>(state.range(1));
  const std::int64_t batch = cnn ? 128 : 256;
  const Dataset data =
      cnn ? nets::make_bar_images(batch, 3, 32, 6, 1) : nets::make_blobs(batch, 256, 10, 1.0f, 1);
  auto model = cnn ? nets::make_small_cnn(3, 6) : nets::make_mlp(256, 1024, 10);
  model->initialize(1);
  OptimizerConfig oc;
  oc.kind = OptimizerConfig::Kind::sgd;
  oc.momentum = 0.9f;
  Optimizer opt(model->parameters(), oc);
  cpu::set_num_threads(threads);
  RunContext ctx;
  ctx.set_level(level);
  ContextGuard guard(ctx);
  for (auto _ : state) {
    Tensor out = model->forward(data.x);
    Tensor loss = ops::softmax_cross_entropy(out, data.y);
    backward(loss);
    opt.step(0.01f);
    opt.zero_grad();
    benchmark::DoNotOptimize(loss.item());
  }
  state.counters["samples/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(level_name(level)) + " t" + std::to_string(threads));
  cpu::set_num_threads(1);
}

void BM_MlpStep(benchmark::State& s) { train_steps(s, false); }
void BM_CnnStep(benchmark::State& s) { train_steps(s, true); }

// Args: threads, level (0 portable, 2 fast).
BENCHMARK(BM_MlpStep)->ArgsProduct({{1, 2}, {0, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CnnStep)->ArgsProduct({{1, 2}, {0, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
