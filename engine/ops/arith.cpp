// Element-wise arithmetic and full reductions.
#include <cstring>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/reduce.h"

namespace detdl::ops {
namespace {

void check_same(const Tensor& a, const Tensor& b, const char* op) {
  check_dtype(a, DType::f32, op);
  check_shape(b, a.shape(), op);
}

template <class F>
Tensor map2(const Tensor& a, const Tensor& b, F f) {
  Tensor y = Tensor::empty(a.shape());
  const float* pa = a.f32();
  const float* pb = b.f32();
  float* py = y.f32();
  cpu::parallel_ranges(a.numel(), [&](std::int64_t s, std::int64_t e, int) {
    for (std::int64_t i = s; i < e; ++i) py[i] = f(pa[i], pb[i]);
  });
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_same(a, b, "add");
  Tensor y = map2(a, b, [](float u, float v) { return u + v; });
  record("add", {a, b}, y, [](const Tensor& g) {
    // Two gradients that must not share storage: each may be accumulated into later.
    return std::vector<Tensor>{g, g.clone()};
  });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_same(a, b, "sub");
  Tensor y = map2(a, b, [](float u, float v) { return u - v; });
  record("sub", {a, b}, y, [](const Tensor& g) {
    return std::vector<Tensor>{g, scale(g, -1.0f)};
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_same(a, b, "mul");
  Tensor y = map2(a, b, [](float u, float v) { return u * v; });
  record("mul", {a, b}, y, [a, b](const Tensor& g) {
    NoGradGuard ng;
    return std::vector<Tensor>{mul(g, b), mul(g, a)};
  });
  return y;
}

Tensor scale(const Tensor& a, float s) {
  check_dtype(a, DType::f32, "scale");
  Tensor y = Tensor::empty(a.shape());
  const float* pa = a.f32();
  float* py = y.f32();
  cpu::parallel_ranges(a.numel(), [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t i = b; i < e; ++i) py[i] = pa[i] * s;
  });
  record("scale", {a}, y, [s](const Tensor& g) {
    NoGradGuard ng;
    return std::vector<Tensor>{scale(g, s)};
  });
  return y;
}

Tensor sum(const Tensor& a) {
  check_dtype(a, DType::f32, "sum");
  Tensor y = Tensor::scalar(cpu::sum_all(context().level(OpFamily::loss_reduce), a.numel(), a.f32()));
  record("sum", {a}, y, [shape = a.shape()](const Tensor& g) {
    return std::vector<Tensor>{Tensor::full(shape, g.item())};
  });
  return y;
}

Tensor mean(const Tensor& a) {
  check_dtype(a, DType::f32, "mean");
  if (a.numel() == 0) throw std::invalid_argument("mean of an empty tensor");
  const float n = static_cast<float>(a.numel());
  Tensor y = Tensor::scalar(cpu::sum_all(context().level(OpFamily::loss_reduce), a.numel(), a.f32()) / n);
  record("mean", {a}, y, [shape = a.shape(), n](const Tensor& g) {
    return std::vector<Tensor>{Tensor::full(shape, g.item() / n)};
  });
  return y;
}

}  // namespace detdl::ops
