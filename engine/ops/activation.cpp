// Activation ops over kernels/cpu/activation.h or, for CUDA tensors, kernels/cuda/
// elementwise.h; both evaluate the formulas of kernels/common/activation.h.
#include "engine/autograd.h"
#include "engine/cuda_backend.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/activation.h"

namespace detdl::ops {

Tensor activation(const Tensor& x, Activation kind, float alpha) {
  check_dtype(x, DType::f32, "activation");
  const Device dev = x.device();
  Tensor y = Tensor::empty_on(dev, x.shape());
  if (dev == Device::cuda)
    gpu::activation_forward(kind, alpha, x.data_f32(), y.data_f32(), x.numel());
  else
    cpu::activation_forward(kind, alpha, x.f32(), y.f32(), x.numel());
  record(OpKind::activation, {x}, y, [x, y, kind, alpha, dev](const Tensor& g) {
    Tensor gx = Tensor::empty_on(dev, x.shape());
    if (dev == Device::cuda)
      gpu::activation_backward(kind, alpha, x.data_f32(), y.data_f32(), g.data_f32(), gx.data_f32(),
                               x.numel());
    else
      cpu::activation_backward(kind, alpha, x.f32(), y.f32(), g.f32(), gx.f32(), x.numel());
    return std::vector<Tensor>{gx};
  });
  return y;
}

}  // namespace detdl::ops
