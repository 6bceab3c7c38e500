// Dropout op over kernels/cpu/dropout.h or, for CUDA tensors, kernels/cuda/elementwise.h
// (the same Philox draws), keyed from the RunContext: Philox sub-stream = layer (counting
// dropout calls within the step), index = (step << 36) + element. So the mask of a given
// layer at a given step is the same on every run, thread count and device (2^36 elements
// per layer and 2^28 steps before indices could collide).
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/dropout.h"

namespace detdl::ops {

Tensor dropout(const Tensor& x, float p) {
  if (!(p >= 0.0f && p < 1.0f))
    throw std::invalid_argument("dropout: rate must be in [0, 1), got " + std::to_string(p));
  RunContext& c = context();
  if (!c.training || p == 0.0f) return x;
  check_dtype(x, DType::f32, "dropout");
  const std::uint32_t layer = c.dropout_layer++;
  const Device dev = x.device();
  Tensor y = Tensor::empty_on(dev, x.shape());
  Tensor mask = Tensor::empty_on(dev, {(x.numel() + 3) / 4}, DType::i32);  // bytes, in i32 storage
  auto* m = reinterpret_cast<std::uint8_t*>(mask.data_i32());
  const std::uint64_t base = static_cast<std::uint64_t>(c.step) << 36;
  if (dev == Device::cuda)
    gpu::dropout_forward(c.dropout_seed, layer, base, p, x.numel(), x.data_f32(), y.data_f32(), m);
  else
    cpu::dropout_forward(c.dropout_seed, layer, base, p, x.numel(), x.f32(), y.f32(), m);
  record(OpKind::dropout, {x}, y,
         [mask, p, n = x.numel(), shape = x.shape(), dev](const Tensor& g) {
           Tensor gx = Tensor::empty_on(dev, shape);
           const auto* mk = reinterpret_cast<const std::uint8_t*>(mask.data_i32());
           if (dev == Device::cuda)
             gpu::dropout_backward(p, n, g.data_f32(), mk, gx.data_f32());
           else
             cpu::dropout_backward(p, n, g.f32(), mk, gx.f32());
           return std::vector<Tensor>{gx};
         });
  return y;
}

}  // namespace detdl::ops
