// The op registry: every op of engine/ops (all differentiable but softmax), the op family
// whose level it runs at, where its CPU kernel and its CUDA kernel live, its reduction, and
// the tests that cover it. The table drives the code: autograd's record() takes an OpKind
// (the tape names nodes from here), `detdl ops` prints this table, and
// tests/engine/test_op_coverage.cpp checks every row's tests exist. It is checked at compile
// time: an OpKind without a row, a row without every column, or rows out of order, do not
// compile.
#pragma once
#include <cstdint>
#include <iterator>

#include "kernels/common/level.h"

namespace detdl {

enum class OpKind : std::uint8_t {
  add,
  sub,
  mul,
  scale,
  sum,
  mean,
  reshape,
  concat,
  matmul,
  linear,
  activation,
  softmax,
  conv2d,
  max_pool2d,
  relu_max_pool2d,
  avg_pool2d,
  global_avg_pool2d,
  batch_norm,
  dropout,
  softmax_cross_entropy,
  binary_cross_entropy,
  mean_squared_error,
  l1_penalty,
  l2_penalty,
  count_,
};

// The tests that cover an op, each "binary:Suite.Name" (a gtest test in the binary built
// from tests/*/<binary>.cpp). tests/engine/test_op_coverage.cpp fails, naming the op, when
// an entry is empty or names a test that the binary does not have.
struct OpTests {
  const char* gradient;  // finite differences through the tape (or: records nothing)
  const char* threads;   // the same bits on 1 and N CPU threads, forward and backward
  const char* cuda;      // CPU == GPU bit for bit (tests/gpu, skipped without a GPU)

  // All three are required: a row that leaves one out does not compile.
  consteval OpTests(const char* g, const char* t, const char* c)
      : gradient(g), threads(t), cuda(c) {}
};

struct OpInfo {
  OpKind kind;
  const char* name;
  OpFamily family;          // the level it runs at (its longest reduction's family)
  const char* cpu_kernel;   // kernels/cpu/... (or engine/ops/... where the op is a loop there)
  const char* cuda_kernel;  // kernels/cuda/... (engine/ops/*.cpp dispatches by the inputs' device)
  const char* reduction;    // the index order of its reductions, or "none"
  OpTests tests;

  // Every column is required: a row without its tests does not compile.
  consteval OpInfo(OpKind k, const char* n, OpFamily f, const char* cpu, const char* cuda,
                   const char* red, OpTests t)
      : kind(k), name(n), family(f), cpu_kernel(cpu), cuda_kernel(cuda), reduction(red), tests(t) {}
};

inline constexpr OpInfo kOps[] = {
    {OpKind::add,
     "add",
     OpFamily::elementwise,
     "engine/ops/arith.cpp",
     "kernels/cuda/arith.cu",
     "none",
     {"test_dense:Arith.AddSumMeanGradientsMatchFiniteDifferences",
      "test_op_threads:ArithOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::sub,
     "sub",
     OpFamily::elementwise,
     "engine/ops/arith.cpp",
     "kernels/cuda/arith.cu",
     "none",
     {"test_dense:Arith.GradientsMatchFiniteDifferences",
      "test_op_threads:ArithOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::mul,
     "mul",
     OpFamily::elementwise,
     "engine/ops/arith.cpp",
     "kernels/cuda/arith.cu",
     "none",
     {"test_dense:Arith.GradientsMatchFiniteDifferences",
      "test_op_threads:ArithOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::scale,
     "scale",
     OpFamily::elementwise,
     "engine/ops/arith.cpp",
     "kernels/cuda/arith.cu",
     "none",
     {"test_dense:Arith.GradientsMatchFiniteDifferences",
      "test_op_threads:ArithOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::sum,
     "sum",
     OpFamily::loss_reduce,
     "kernels/cpu/reduce.cpp",
     "kernels/cuda/reduce.cu",
     "values over the flat index",
     {"test_dense:Arith.AddSumMeanGradientsMatchFiniteDifferences",
      "test_dense:Arith.SumIsTheCanonicalSum",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::mean,
     "mean",
     OpFamily::loss_reduce,
     "kernels/cpu/reduce.cpp",
     "kernels/cuda/reduce.cu",
     "values over the flat index, then / n",
     {"test_dense:Arith.AddSumMeanGradientsMatchFiniteDifferences",
      "test_op_threads:ArithOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::reshape,
     "reshape",
     OpFamily::data_movement,
     "engine/ops/shape.cpp",
     "engine/ops/shape.cpp",
     "none",
     {"test_dense:ShapeOps.ConcatAndReshapeRouteGradientsExactly",
      "test_op_threads:ShapeOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.NormActivationsDropoutConcatAreBitEqual"}},
    {OpKind::concat,
     "concat",
     OpFamily::data_movement,
     "engine/ops/shape.cpp",
     "kernels/cuda/arith.cu",
     "none",
     {"test_dense:ShapeOps.ConcatAndReshapeRouteGradientsExactly",
      "test_op_threads:ShapeOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.NormActivationsDropoutConcatAreBitEqual"}},
    {OpKind::matmul,
     "matmul",
     OpFamily::matmul,
     "kernels/cpu/gemm.cpp",
     "kernels/cuda/gemm.cu",
     "products over k",
     {"test_dense:Matmul.GradientsMatchFiniteDifferences",
      "test_op_threads:MatmulOp.ThreadInvariant", "test_gpu_engine:GpuEngine.DenseOpsAreBitEqual"}},
    {OpKind::linear,
     "linear",
     OpFamily::matmul,
     "kernels/cpu/gemm.cpp",
     "kernels/cuda/gemm.cu",
     "products over inputs; dW over batch; db values over batch",
     {"test_dense:Linear.GradientsMatchFiniteDifferences",
      "test_dense:Linear.WeightAndBiasGradientsAreCanonicalOverTheBatch",
      "test_gpu_engine:GpuEngine.DenseOpsAreBitEqual"}},
    {OpKind::activation,
     "activation",
     OpFamily::elementwise,
     "kernels/cpu/activation.cpp",
     "kernels/cuda/elementwise.cu",
     "none",
     {"test_ops_nn:ActivationOps.GradientsOfEveryKind",
      "test_op_threads:ActivationOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.NormActivationsDropoutConcatAreBitEqual"}},
    {OpKind::softmax,
     "softmax",
     OpFamily::loss_reduce,
     "kernels/cpu/loss.cpp",
     "kernels/cuda/loss.cu",
     "values over classes",
     {"test_op_threads:SoftmaxOp.NotDifferentiableRecordsNothing",
      "test_op_threads:SoftmaxOp.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::conv2d,
     "conv2d",
     OpFamily::conv_wgrad,
     "kernels/cpu/conv.cpp",
     "kernels/cuda/conv.cu",
     "(c,kh,kw); dx: o then (kh,kw); dW: (n,oh,ow); db: (n,oh,ow)",
     {"test_ops_nn:Conv2dOp.GradientsAndThreadInvariance",
      "test_ops_nn:Conv2dOp.GradientsAndThreadInvariance",
      "test_gpu_engine:GpuEngine.ConvAndPoolingAreBitEqual"}},
    {OpKind::max_pool2d,
     "max_pool2d",
     OpFamily::pooling,
     "kernels/cpu/pool.cpp",
     "kernels/cuda/pool.cu",
     "window (kh,kw); dx scatter (oh,ow)",
     {"test_ops_nn:PoolOps.GradientsAndThreadInvariance",
      "test_ops_nn:PoolOps.GradientsAndThreadInvariance",
      "test_gpu_engine:GpuEngine.ConvAndPoolingAreBitEqual"}},
    {OpKind::relu_max_pool2d,
     "relu_max_pool2d",
     OpFamily::pooling,
     "kernels/cpu/pool.cpp",
     "kernels/cuda/elementwise.cu, kernels/cuda/pool.cu (relu, then max_pool2d)",
     "window (kh,kw) of relu(x); dx scatter (oh,ow), then relu's mask",
     {"test_ops_nn:PoolOps.ReluMaxPoolIsReluThenMaxPool",
      "test_ops_nn:PoolOps.ReluMaxPoolIsReluThenMaxPool",
      "test_gpu_engine:GpuEngine.ReluMaxPoolIsBitEqual"}},
    {OpKind::avg_pool2d,
     "avg_pool2d",
     OpFamily::pooling,
     "kernels/cpu/pool.cpp",
     "kernels/cuda/pool.cu",
     "window (kh,kw); dx scatter (oh,ow)",
     {"test_ops_nn:PoolOps.GradientsAndThreadInvariance",
      "test_ops_nn:PoolOps.GradientsAndThreadInvariance",
      "test_gpu_engine:GpuEngine.ConvAndPoolingAreBitEqual"}},
    {OpKind::global_avg_pool2d,
     "global_avg_pool2d",
     OpFamily::pooling,
     "kernels/cpu/pool.cpp",
     "kernels/cuda/pool.cu",
     "values over (h,w)",
     {"test_ops_nn:PoolOps.GradientsAndThreadInvariance",
      "test_ops_nn:PoolOps.GradientsAndThreadInvariance",
      "test_gpu_engine:GpuEngine.ConvAndPoolingAreBitEqual"}},
    {OpKind::batch_norm,
     "batch_norm",
     OpFamily::norm_stats,
     "kernels/cpu/batchnorm.cpp",
     "kernels/cuda/batchnorm.cu",
     "values over (n,h,w)",
     {"test_ops_nn:BatchNormOp.TrainingGradientsRunningStatsAndEval",
      "test_ops_nn:BatchNormOp.TrainingGradientsRunningStatsAndEval",
      "test_gpu_engine:GpuEngine.NormActivationsDropoutConcatAreBitEqual"}},
    {OpKind::dropout,
     "dropout",
     OpFamily::random,
     "kernels/cpu/dropout.cpp",
     "kernels/cuda/elementwise.cu",
     "none",
     {"test_ops_nn:DropoutOp.KeyedByStepAndLayerAndIdentityInEval",
      "test_op_threads:DropoutOp.ThreadInvariant",
      "test_gpu_engine:GpuEngine.NormActivationsDropoutConcatAreBitEqual"}},
    {OpKind::softmax_cross_entropy,
     "softmax_cross_entropy",
     OpFamily::loss_reduce,
     "kernels/cpu/loss.cpp",
     "kernels/cuda/loss.cu",
     "values over classes, then samples",
     {"test_ops_nn:LossOps.GradientsAndValues", "test_op_threads:LossOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::binary_cross_entropy,
     "binary_cross_entropy",
     OpFamily::loss_reduce,
     "kernels/cpu/loss.cpp",
     "kernels/cuda/loss.cu",
     "values over elements",
     {"test_ops_nn:LossOps.GradientsAndValues", "test_op_threads:LossOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::mean_squared_error,
     "mean_squared_error",
     OpFamily::loss_reduce,
     "kernels/cpu/loss.cpp",
     "kernels/cuda/loss.cu",
     "values over elements",
     {"test_ops_nn:LossOps.GradientsAndValues", "test_op_threads:LossOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::l1_penalty,
     "l1_penalty",
     OpFamily::loss_reduce,
     "kernels/cpu/loss.cpp",
     "kernels/cuda/loss.cu",
     "values over elements",
     {"test_ops_nn:LossOps.GradientsAndValues", "test_op_threads:LossOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
    {OpKind::l2_penalty,
     "l2_penalty",
     OpFamily::loss_reduce,
     "kernels/cpu/loss.cpp",
     "kernels/cuda/loss.cu",
     "values over elements",
     {"test_ops_nn:LossOps.GradientsAndValues", "test_op_threads:LossOps.ThreadInvariant",
      "test_gpu_engine:GpuEngine.ArithmeticAndLossesAreBitEqual"}},
};

static_assert(std::size(kOps) == static_cast<std::size_t>(OpKind::count_),
              "every OpKind needs a row in kOps");
consteval bool ops_table_in_order() {
  for (std::size_t i = 0; i < std::size(kOps); ++i)
    if (static_cast<std::size_t>(kOps[i].kind) != i) return false;
  return true;
}
static_assert(ops_table_in_order(), "kOps rows must be in OpKind order");

constexpr const OpInfo& op_info(OpKind k) { return kOps[static_cast<std::size_t>(k)]; }

}  // namespace detdl
