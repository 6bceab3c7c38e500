// Element-wise arithmetic and full reductions.
#include <cstring>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/emulated_reduce.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/reduce.h"

namespace detdl::ops {
namespace {

void check_same(const Tensor& a, const Tensor& b, const char* op) {
  check_dtype(a, DType::f32, op);
  check_shape(b, a.shape(), op);
  same_device({a, b}, op);
}

// y = f(a, b) element-wise; on CUDA the same IEEE operation `op` per element.
template <class F>
Tensor map2(const Tensor& a, const Tensor& b, BinaryOp op, F f) {
  if (a.device() == Device::cuda) {
    Tensor y = Tensor::empty_on(Device::cuda, a.shape());
    gpu::binary_map(op, a.numel(), a.data_f32(), b.data_f32(), y.data_f32());
    return y;
  }
  Tensor y = Tensor::empty(a.shape());
  const float* pa = a.f32();
  const float* pb = b.f32();
  float* py = y.f32();
  cpu::parallel_ranges(a.numel(), [&](std::int64_t s, std::int64_t e, int) {
    for (std::int64_t i = s; i < e; ++i) py[i] = f(pa[i], pb[i]);
  });
  return y;
}

// The canonical sum of all elements at the loss_reduce level, on a's device; in the reduce
// family's drawn shape when it is emulated (kernels/cpu/emulated_reduce.h).
float sum_of(const Tensor& a) {
  const Level lv = context().level(OpFamily::loss_reduce);
  const auto d = context().impl_draw(ImplFamily::reduce);  // one draw on either device
  if (a.device() == Device::cuda) return gpu::sum_all(SumOrder::of(lv, d), a.numel(), a.data_f32());
  if (d) return cpu::emulated_sum(*d, a.numel(), a.f32());
  return cpu::sum_all(lv, a.numel(), a.f32());
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_same(a, b, "add");
  Tensor y = map2(a, b, BinaryOp::add, [](float u, float v) { return u + v; });
  record(OpKind::add, {a, b}, y, [](const Tensor& g) {
    // Two gradients that must not share storage: each may be accumulated into later.
    return std::vector<Tensor>{g, g.clone()};
  });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_same(a, b, "sub");
  Tensor y = map2(a, b, BinaryOp::sub, [](float u, float v) { return u - v; });
  record(OpKind::sub, {a, b}, y, [](const Tensor& g) {
    return std::vector<Tensor>{g, scale(g, -1.0f)};
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_same(a, b, "mul");
  Tensor y = map2(a, b, BinaryOp::mul, [](float u, float v) { return u * v; });
  record(OpKind::mul, {a, b}, y, [a, b](const Tensor& g) {
    NoGradGuard ng;
    return std::vector<Tensor>{mul(g, b), mul(g, a)};
  });
  return y;
}

Tensor scale(const Tensor& a, float s) {
  check_dtype(a, DType::f32, "scale");
  Tensor y = Tensor::empty_on(a.device(), a.shape());
  if (a.device() == Device::cuda) {
    gpu::scale(a.numel(), a.data_f32(), s, y.data_f32());
  } else {
    const float* pa = a.f32();
    float* py = y.f32();
    cpu::parallel_ranges(a.numel(), [&](std::int64_t b, std::int64_t e, int) {
      for (std::int64_t i = b; i < e; ++i) py[i] = pa[i] * s;
    });
  }
  record(OpKind::scale, {a}, y, [s](const Tensor& g) {
    NoGradGuard ng;
    return std::vector<Tensor>{scale(g, s)};
  });
  return y;
}

Tensor sum(const Tensor& a) {
  check_dtype(a, DType::f32, "sum");
  // The result is a host scalar whatever a's device (as the losses'); gradients go back to a's.
  Tensor y = Tensor::scalar(sum_of(a));
  record(OpKind::sum, {a}, y, [shape = a.shape(), d = a.device()](const Tensor& g) {
    return std::vector<Tensor>{Tensor::full(shape, g.item()).to(d)};
  });
  return y;
}

Tensor mean(const Tensor& a) {
  check_dtype(a, DType::f32, "mean");
  if (a.numel() == 0) throw std::invalid_argument("mean of an empty tensor");
  const float n = static_cast<float>(a.numel());
  // At `emulated`, the loss family draws the mean's form: root / n or root * (1 / n)
  // (kernels/cpu/loss.h), for the value and its gradient alike, on either device.
  bool reciprocal = false;
  if (const auto d = context().impl_draw(ImplFamily::loss))
    reciprocal = cpu::loss_impl(&*d, nullptr, nullptr).reciprocal_mean;
  const float inv = 1.0f / n;
  const float root = sum_of(a);
  Tensor y = Tensor::scalar(reciprocal ? root * inv : root / n);
  record(OpKind::mean, {a}, y,
         [shape = a.shape(), n, inv, reciprocal, d = a.device()](const Tensor& g) {
           const float v = reciprocal ? g.item() * inv : g.item() / n;
           return std::vector<Tensor>{Tensor::full(shape, v).to(d)};
         });
  return y;
}

}  // namespace detdl::ops
