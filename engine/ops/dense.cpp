// Matrix products and the linear layer, over cpu::sgemm or, for CUDA tensors, cuda::sgemm
// (bit for bit the same reductions).
// Reduction orders: y[n][o] = canonical dot over i of x[n][i] * w[o][i], then + b[o];
// dx[n][i] = canonical dot over o; dw[o][i] = canonical dot over n (the batch);
// db[o] = canonical sum of values over n (OpFamily::bias_grad).
// At `emulated` (kernels/common/impl_choice.h), a product with the matmul family on runs a
// drawn split-K plan (kernels/common/split_k_plan.h) and a bias gradient with the reduce
// family on a drawn tree (kernels/common/reduce_shape.h), on either device with the same
// bits; each kernel call takes one draw.
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/emulated_gemm.h"
#include "kernels/cpu/emulated_reduce.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/reduce.h"

namespace detdl::ops {
namespace {

// C (M, N) = opA (M, K) * opB (K, N) on `dev`; pointers on that device.
void gemm(Device dev, Level lv, bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K,
          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float* C,
          std::int64_t ldc) {
  switch (route_gemm(dev)) {
    case Route::cpu: return cpu::sgemm(lv, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    case Route::cuda: return gpu::sgemm(lv, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    // cuBLAS: plain FP32 unless the family runs at `fast` (then TF32).
    case Route::vendor:
      return gpu::cublas_sgemm(lv == Level::fast, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  }
}

// gemm, or at `emulated` with the matmul family on the drawn split-K plan (the CPU's
// emulated GEMM or the CUDA GEMM with the plan: the same bits). One draw per product, taken
// here in the op's order, never inside a kernel.
// C (M, N) = opA (M, K) * opB (K, N), arguments as gemm's.
void product(Device dev, Level lv, bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K,
             const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float* C,
             std::int64_t ldc) {
  if (auto d = context().impl_draw(ImplFamily::matmul)) {
    const EmulatedGemmPlan plan = emulated_gemm_plan(*d, K);
    if (dev == Device::cpu)
      cpu::emulated_sgemm(plan, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    else
      gpu::sgemm(plan, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    return;
  }
  gemm(dev, lv, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_ndim(a, 2, "matmul a");
  check_ndim(b, 2, "matmul b");
  check_dtype(a, DType::f32, "matmul a");
  check_dtype(b, DType::f32, "matmul b");
  const Device dev = same_device({a, b}, "matmul");
  const std::int64_t M = a.dim(0), K = a.dim(1), N = b.dim(1);
  if (b.dim(0) != K)
    throw std::invalid_argument("matmul: inner sizes differ: " + shape_str(a.shape()) + " x " +
                                shape_str(b.shape()));
  Tensor y = Tensor::empty_on(dev, {M, N});
  product(dev, context().level(OpFamily::matmul), false, false, M, N, K, a.data_f32(), K,
          b.data_f32(), N, y.data_f32(), N);
  record(OpKind::matmul, {a, b}, y, [a, b, M, N, K, dev](const Tensor& g) {
    const Level lv = context().level(OpFamily::matmul);
    Tensor ga, gb;
    if (a.requires_grad()) {  // (M,K) = g (M,N) * b^T
      ga = Tensor::empty_on(dev, {M, K});
      product(dev, lv, false, true, M, K, N, g.data_f32(), N, b.data_f32(), N, ga.data_f32(), K);
    }
    if (b.requires_grad()) {  // (K,N) = a^T (K,M) * g (M,N)
      gb = Tensor::empty_on(dev, {K, N});
      product(dev, lv, true, false, K, N, M, a.data_f32(), K, g.data_f32(), N, gb.data_f32(), N);
    }
    return std::vector<Tensor>{ga, gb};
  });
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_ndim(x, 2, "linear input");
  check_ndim(w, 2, "linear weight");
  check_dtype(x, DType::f32, "linear input");
  check_dtype(w, DType::f32, "linear weight");
  const Device dev = same_device({x, w, b}, "linear");
  const std::int64_t N = x.dim(0), I = x.dim(1), O = w.dim(0);
  if (w.dim(1) != I)
    throw std::invalid_argument("linear: input " + shape_str(x.shape()) + " does not fit weight " +
                                shape_str(w.shape()) + " (expected (O, " + std::to_string(I) +
                                "))");
  if (b.defined()) check_shape(b, {O}, "linear bias");
  Tensor y = Tensor::empty_on(dev, {N, O});
  product(dev, context().level(OpFamily::matmul), false, true, N, O, I, x.data_f32(), I,
          w.data_f32(), I, y.data_f32(), O);
  if (b.defined()) {
    if (dev == Device::cuda) {
      gpu::add_row_bias(N, O, y.data_f32(), b.data_f32());
    } else {
      float* py = y.f32();
      const float* pb = b.f32();
      cpu::parallel_ranges(N, [&](std::int64_t s, std::int64_t e, int) {
        for (std::int64_t n = s; n < e; ++n)
          for (std::int64_t o = 0; o < O; ++o) py[n * O + o] = py[n * O + o] + pb[o];
      });
    }
  }
  record(OpKind::linear, {x, w, b}, y, [x, w, b, N, I, O, dev](const Tensor& g) {
    const Level lv = context().level(OpFamily::matmul);
    Tensor gx, gw, gb;
    if (x.requires_grad()) {  // (N,I) = g (N,O) * w (O,I)
      gx = Tensor::empty_on(dev, {N, I});
      product(dev, lv, false, false, N, I, O, g.data_f32(), O, w.data_f32(), I, gx.data_f32(), I);
    }
    if (w.requires_grad()) {  // (O,I) = g^T (O,N) * x (N,I): reduction over the batch
      gw = Tensor::empty_on(dev, {O, I});
      product(dev, lv, true, false, O, I, N, g.data_f32(), O, x.data_f32(), I, gw.data_f32(), I);
    }
    if (b.defined() && b.requires_grad()) {
      gb = Tensor::empty_on(dev, {O});
      const Level blv = context().level(OpFamily::bias_grad);
      const auto d = context().impl_draw(ImplFamily::reduce);  // one draw on either device
      if (dev == Device::cuda) {
        gpu::column_sums(SumOrder::of(blv, d), N, O, g.data_f32(), gb.data_f32());
      } else if (d) {
        cpu::emulated_column_sums(*d, N, O, g.f32(), gb.f32());  // g (N, O) -> gb (O)
      } else {
        cpu::column_sums(blv, N, O, g.f32(), gb.f32());
      }
    }
    return std::vector<Tensor>{gx, gw, gb};
  });
  return y;
}

}  // namespace detdl::ops
