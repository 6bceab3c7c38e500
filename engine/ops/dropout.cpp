// Dropout op over kernels/cpu/dropout.h, keyed from the RunContext: Philox sub-stream =
// layer (counting dropout calls within the step), index = (step << 36) + element. So the
// mask of a given layer at a given step is the same on every run, thread count and device
// (2^36 elements per layer and 2^28 steps before indices could collide).
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/dropout.h"

namespace detdl::ops {

Tensor dropout(const Tensor& x, float p) {
  if (!(p >= 0.0f && p < 1.0f)) throw std::invalid_argument("dropout: rate must be in [0, 1), got " + std::to_string(p));
  RunContext& c = context();
  if (!c.training || p == 0.0f) return x;
  const std::uint32_t layer = c.dropout_layer++;
  Tensor y = Tensor::empty(x.shape());
  Tensor mask = Tensor::empty({(x.numel() + 3) / 4}, DType::i32);  // bytes, in i32 storage
  auto* m = static_cast<std::uint8_t*>(mask.impl().storage->data);
  cpu::dropout_forward(c.dropout_seed, layer, static_cast<std::uint64_t>(c.step) << 36, p, x.numel(), x.f32(), y.f32(), m);
  record("dropout", {x}, y, [mask, p, n = x.numel(), shape = x.shape()](const Tensor& g) {
    Tensor gx = Tensor::empty(shape);
    cpu::dropout_backward(p, n, g.f32(), static_cast<const std::uint8_t*>(mask.impl().storage->data), gx.f32());
    return std::vector<Tensor>{gx};
  });
  return y;
}

}  // namespace detdl::ops
