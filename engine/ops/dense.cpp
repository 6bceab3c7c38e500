// Matrix products and the linear layer.
// Reduction orders: y[n][o] = canonical dot over i of x[n][i] * w[o][i], then + b[o];
// dx[n][i] = canonical dot over o; dw[o][i] = canonical dot over n (the batch);
// db[o] = canonical sum of values over n (OpFamily::bias_grad).
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/reduce.h"

namespace detdl::ops {

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_ndim(a, 2, "matmul a");
  check_ndim(b, 2, "matmul b");
  const std::int64_t M = a.dim(0), K = a.dim(1), N = b.dim(1);
  if (b.dim(0) != K)
    throw std::invalid_argument("matmul: inner sizes differ: " + shape_str(a.shape()) + " x " +
                                shape_str(b.shape()));
  Tensor y = Tensor::empty({M, N});
  const Level lv = context().level(OpFamily::matmul);
  cpu::sgemm(lv, false, false, M, N, K, a.f32(), K, b.f32(), N, y.f32(), N);
  record("matmul", {a, b}, y, [a, b, M, N, K](const Tensor& g) {
    const Level lv = context().level(OpFamily::matmul);
    Tensor ga, gb;
    if (a.requires_grad()) {  // (M,K) = g (M,N) * b^T
      ga = Tensor::empty({M, K});
      cpu::sgemm(lv, false, true, M, K, N, g.f32(), N, b.f32(), N, ga.f32(), K);
    }
    if (b.requires_grad()) {  // (K,N) = a^T (K,M) * g (M,N)
      gb = Tensor::empty({K, N});
      cpu::sgemm(lv, true, false, K, N, M, a.f32(), K, g.f32(), N, gb.f32(), N);
    }
    return std::vector<Tensor>{ga, gb};
  });
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_ndim(x, 2, "linear input");
  check_ndim(w, 2, "linear weight");
  const std::int64_t N = x.dim(0), I = x.dim(1), O = w.dim(0);
  if (w.dim(1) != I)
    throw std::invalid_argument("linear: input " + shape_str(x.shape()) + " does not fit weight " +
                                shape_str(w.shape()) + " (expected (O, " + std::to_string(I) + "))");
  if (b.defined()) check_shape(b, {O}, "linear bias");
  Tensor y = Tensor::empty({N, O});
  cpu::sgemm(context().level(OpFamily::matmul), false, true, N, O, I, x.f32(), I, w.f32(), I,
             y.f32(), O);
  if (b.defined()) {
    float* py = y.f32();
    const float* pb = b.f32();
    cpu::parallel_ranges(N, [&](std::int64_t s, std::int64_t e, int) {
      for (std::int64_t n = s; n < e; ++n)
        for (std::int64_t o = 0; o < O; ++o) py[n * O + o] = py[n * O + o] + pb[o];
    });
  }
  record("linear", {x, w, b}, y, [x, w, b, N, I, O](const Tensor& g) {
    const Level lv = context().level(OpFamily::matmul);
    Tensor gx, gw, gb;
    if (x.requires_grad()) {  // (N,I) = g (N,O) * w (O,I)
      gx = Tensor::empty({N, I});
      cpu::sgemm(lv, false, false, N, I, O, g.f32(), O, w.f32(), I, gx.f32(), I);
    }
    if (w.requires_grad()) {  // (O,I) = g^T (O,N) * x (N,I): reduction over the batch
      gw = Tensor::empty({O, I});
      cpu::sgemm(lv, true, false, O, I, N, g.f32(), O, x.f32(), I, gw.f32(), I);
    }
    if (b.defined() && b.requires_grad()) {
      gb = Tensor::empty({O});
      cpu::column_sums(context().level(OpFamily::bias_grad), N, O, g.f32(), gb.f32());
    }
    return std::vector<Tensor>{gx, gw, gb};
  });
  return y;
}

}  // namespace detdl::ops
