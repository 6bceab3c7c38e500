// The op registry: every differentiable op of engine/ops, the op family whose level it
// runs at, where its CPU kernel and its CUDA kernel live, and its reduction. The table is
// checked at compile time: an OpKind without a row, or rows out of order, do not compile.
// `detdl ops` prints it.
#pragma once
#include <cstdint>
#include <iterator>

#include "kernels/common/level.h"

namespace detdl {

enum class OpKind : std::uint8_t {
  add, sub, mul, scale, sum, mean, reshape, concat,
  matmul, linear, activation, softmax,
  conv2d, max_pool2d, avg_pool2d, global_avg_pool2d,
  batch_norm, dropout,
  softmax_cross_entropy, binary_cross_entropy, mean_squared_error, l1_penalty, l2_penalty,
  count_,
};

struct OpInfo {
  OpKind kind;
  const char* name;
  OpFamily family;         // the level it runs at (its longest reduction's family)
  const char* cpu_kernel;  // kernels/cpu/...
  const char* cuda_kernel; // kernels/cuda/... (engine/ops/*.cpp dispatches by the inputs' device)
  const char* reduction;   // the index order of its reductions, or "none"
};

inline constexpr OpInfo kOps[] = {
    {OpKind::add, "add", OpFamily::matmul, "engine/ops/arith.cpp", "kernels/cuda/arith.cu", "none"},
    {OpKind::sub, "sub", OpFamily::matmul, "engine/ops/arith.cpp", "kernels/cuda/arith.cu", "none"},
    {OpKind::mul, "mul", OpFamily::matmul, "engine/ops/arith.cpp", "kernels/cuda/arith.cu", "none"},
    {OpKind::scale, "scale", OpFamily::matmul, "engine/ops/arith.cpp", "kernels/cuda/arith.cu", "none"},
    {OpKind::sum, "sum", OpFamily::loss_reduce, "kernels/cpu/reduce.cpp", "kernels/cuda/reduce.cu", "values over the flat index"},
    {OpKind::mean, "mean", OpFamily::loss_reduce, "kernels/cpu/reduce.cpp", "kernels/cuda/reduce.cu", "values over the flat index, then / n"},
    {OpKind::reshape, "reshape", OpFamily::matmul, "engine/ops/shape.cpp", "engine/ops/shape.cpp", "none"},
    {OpKind::concat, "concat", OpFamily::matmul, "engine/ops/shape.cpp", "kernels/cuda/arith.cu", "none"},
    {OpKind::matmul, "matmul", OpFamily::matmul, "kernels/cpu/gemm.cpp", "kernels/cuda/gemm.cu", "products over k"},
    {OpKind::linear, "linear", OpFamily::matmul, "kernels/cpu/gemm.cpp", "kernels/cuda/gemm.cu", "products over inputs; dW over batch; db values over batch"},
    {OpKind::activation, "activation", OpFamily::matmul, "kernels/cpu/activation.cpp", "kernels/cuda/elementwise.cu", "none"},
    {OpKind::softmax, "softmax", OpFamily::loss_reduce, "kernels/cpu/loss.cpp", "kernels/cuda/loss.cu", "values over classes"},
    {OpKind::conv2d, "conv2d", OpFamily::conv_wgrad, "kernels/cpu/conv.cpp", "kernels/cuda/conv.cu", "(c,kh,kw); dx: o then (kh,kw); dW: (n,oh,ow); db: (n,oh,ow)"},
    {OpKind::max_pool2d, "max_pool2d", OpFamily::matmul, "kernels/cpu/pool.cpp", "kernels/cuda/pool.cu", "window (kh,kw); dx scatter (oh,ow)"},
    {OpKind::avg_pool2d, "avg_pool2d", OpFamily::matmul, "kernels/cpu/pool.cpp", "kernels/cuda/pool.cu", "window (kh,kw); dx scatter (oh,ow)"},
    {OpKind::global_avg_pool2d, "global_avg_pool2d", OpFamily::matmul, "kernels/cpu/pool.cpp", "kernels/cuda/pool.cu", "values over (h,w)"},
    {OpKind::batch_norm, "batch_norm", OpFamily::norm_stats, "kernels/cpu/batchnorm.cpp", "kernels/cuda/batchnorm.cu", "values over (n,h,w)"},
    {OpKind::dropout, "dropout", OpFamily::matmul, "kernels/cpu/dropout.cpp", "kernels/cuda/elementwise.cu", "none"},
    {OpKind::softmax_cross_entropy, "softmax_cross_entropy", OpFamily::loss_reduce, "kernels/cpu/loss.cpp", "kernels/cuda/loss.cu", "values over classes, then samples"},
    {OpKind::binary_cross_entropy, "binary_cross_entropy", OpFamily::loss_reduce, "kernels/cpu/loss.cpp", "kernels/cuda/loss.cu", "values over elements"},
    {OpKind::mean_squared_error, "mean_squared_error", OpFamily::loss_reduce, "kernels/cpu/loss.cpp", "kernels/cuda/loss.cu", "values over elements"},
    {OpKind::l1_penalty, "l1_penalty", OpFamily::loss_reduce, "kernels/cpu/loss.cpp", "kernels/cuda/loss.cu", "values over elements"},
    {OpKind::l2_penalty, "l2_penalty", OpFamily::loss_reduce, "kernels/cpu/loss.cpp", "kernels/cuda/loss.cu", "values over elements"},
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
