// Activation ops over kernels/cpu/activation.h or, for CUDA tensors, kernels/cuda/
// elementwise.h; both evaluate the formulas of kernels/common/activation.h.
//
// At the `emulated` level (kernels/common/impl_choice.h) each call of a kind that has
// transcendentals draws from the math family whether they come from detmath_alt.h, and a
// tanh call draws from the contraction family whether its gradient's 1 - y * y is fused.
// Both draws are made once per call, here in the forward, and the backward keeps them
// (a library picks its implementation per layer); kinds without such a formula draw
// nothing, so they take no place in the family.
#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/activation.h"

namespace detdl::ops {
namespace {

ActImpl draw_activation_impl(Activation kind) {
  ActImpl impl;
  if (act_uses_math(kind))
    if (const auto m = context().impl_draw(ImplFamily::math)) impl.alt_math = m->coin(0);
  if (act_has_contraction(kind))
    if (const auto c = context().impl_draw(ImplFamily::contraction))
      impl.fuse = c->coin(kActSiteTanhGrad) ? 1u << kActSiteTanhGrad : 0u;
  return impl;
}

// The CUDA kernels run the canonical formulas only (kernels/cuda/elementwise.h takes no
// ActImpl yet): a drawn variant of a CUDA tensor runs on a host copy, so it has the CPU
// run's bits, at the cost of two copies.
Tensor on_host(const Tensor& t) { return t.to(Device::cpu); }

}  // namespace

Tensor activation(const Tensor& x, Activation kind, float alpha) {
  check_dtype(x, DType::f32, "activation");
  const Device dev = x.device();
  const ActImpl impl = draw_activation_impl(kind);
  Tensor y;
  if (dev == Device::cuda && impl.canonical()) {
    y = Tensor::empty_on(dev, x.shape());
    gpu::activation_forward(kind, alpha, x.data_f32(), y.data_f32(), x.numel());
  } else {
    const Tensor xh = on_host(x);
    Tensor yh = Tensor::empty(x.shape());
    cpu::activation_forward(kind, alpha, xh.f32(), yh.f32(), x.numel(), impl);
    y = yh.to(dev);
  }
  record(OpKind::activation, {x}, y, [x, y, kind, alpha, dev, impl](const Tensor& g) {
    if (dev == Device::cuda && impl.canonical()) {
      Tensor gx = Tensor::empty_on(dev, x.shape());
      gpu::activation_backward(kind, alpha, x.data_f32(), y.data_f32(), g.data_f32(), gx.data_f32(),
                               x.numel());
      return std::vector<Tensor>{gx};
    }
    const Tensor xh = on_host(x), yh = on_host(y), gh = on_host(g);
    Tensor gx = Tensor::empty(x.shape());
    cpu::activation_backward(kind, alpha, xh.f32(), yh.f32(), gh.f32(), gx.f32(), x.numel(), impl);
    return std::vector<Tensor>{gx.to(dev)};
  });
  return y;
}

}  // namespace detdl::ops
