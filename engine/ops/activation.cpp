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

}  // namespace

Tensor activation(const Tensor& x, Activation kind, float alpha) {
  check_dtype(x, DType::f32, "activation");
  const Device dev = x.device();
  // Both backends draw the same implementation (the CUDA kernels take ActImpl too).
  const ActImpl impl = draw_activation_impl(kind);
  Tensor y = Tensor::empty_on(dev, x.shape());
  if (dev == Device::cuda)
    gpu::activation_forward(kind, alpha, x.data_f32(), y.data_f32(), x.numel(), impl);
  else
    cpu::activation_forward(kind, alpha, x.f32(), y.f32(), x.numel(), impl);
  record(OpKind::activation, {x}, y, [x, y, kind, alpha, dev, impl](const Tensor& g) {
    Tensor gx = Tensor::empty_on(dev, x.shape());
    if (dev == Device::cuda)
      gpu::activation_backward(kind, alpha, x.data_f32(), y.data_f32(), g.data_f32(), gx.data_f32(),
                               x.numel(), impl);
    else
      cpu::activation_backward(kind, alpha, x.f32(), y.f32(), g.f32(), gx.f32(), x.numel(), impl);
    return std::vector<Tensor>{gx};
  });
  return y;
}

}  // namespace detdl::ops
