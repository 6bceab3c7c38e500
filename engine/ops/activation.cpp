// Activation ops over kernels/cpu/activation.h; the formulas are kernels/common/activation.h.
#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/activation.h"

namespace detdl::ops {

Tensor activation(const Tensor& x, Activation kind, float alpha) {
  check_dtype(x, DType::f32, "activation");
  Tensor y = Tensor::empty(x.shape());
  cpu::activation_forward(kind, alpha, x.f32(), y.f32(), x.numel());
  record("activation", {x}, y, [x, y, kind, alpha](const Tensor& g) {
    Tensor gx = Tensor::empty(x.shape());
    cpu::activation_backward(kind, alpha, x.f32(), y.f32(), g.f32(), gx.f32(), x.numel());
    return std::vector<Tensor>{gx};
  });
  return y;
}

}  // namespace detdl::ops
