// Convolution op: forward and gradients from kernels/cpu/conv.h (whose header names the
// reduction orders). The weight gradient runs at OpFamily::conv_wgrad's level, the bias
// gradient at bias_grad's, the forward and data gradient at matmul's.
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/conv.h"

namespace detdl::ops {

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  check_ndim(x, 4, "conv2d input (N, C, H, W)");
  check_ndim(w, 4, "conv2d weight (O, C, KH, KW)");
  if (w.dim(1) != x.dim(1))
    throw std::invalid_argument("conv2d: input has " + std::to_string(x.dim(1)) + " channels, weight " +
                                shape_str(w.shape()) + " expects " + std::to_string(w.dim(1)));
  const cpu::Conv2dShape s =
      o.same ? cpu::conv2d_shape_same(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3), o.stride)
             : cpu::conv2d_shape(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3), o.stride, o.pad);
  if (b.defined()) check_shape(b, {s.O}, "conv2d bias");
  Tensor y = Tensor::empty({s.N, s.O, s.OH, s.OW});
  cpu::conv2d_forward(context().level(OpFamily::matmul), s, x.f32(), w.f32(), b.defined() ? b.f32() : nullptr, y.f32());
  record("conv2d", {x, w, b}, y, [x, w, b, s](const Tensor& g) {
    Tensor gx, gw, gb;
    if (x.requires_grad()) {
      gx = Tensor::empty(x.shape());
      cpu::conv2d_backward_data(context().level(OpFamily::matmul), s, g.f32(), w.f32(), gx.f32());
    }
    if (w.requires_grad()) {
      gw = Tensor::empty(w.shape());
      cpu::conv2d_backward_weight(context().level(OpFamily::conv_wgrad), s, x.f32(), g.f32(), gw.f32());
    }
    if (b.defined() && b.requires_grad()) {
      gb = Tensor::empty(b.shape());
      cpu::conv2d_backward_bias(context().level(OpFamily::bias_grad), s, g.f32(), gb.f32());
    }
    return std::vector<Tensor>{gx, gw, gb};
  });
  return y;
}

}  // namespace detdl::ops
