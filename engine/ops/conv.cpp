// Convolution op: forward and gradients from kernels/cpu/conv.h or, for CUDA tensors,
// kernels/cuda/conv.h (the same reduction orders, named in kernels/cpu/conv.h). The weight
// gradient runs at OpFamily::conv_wgrad's level, the bias gradient at bias_grad's, the
// forward and data gradient at matmul's.
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/conv.h"

namespace detdl::ops {

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  check_ndim(x, 4, "conv2d input (N, C, H, W)");
  check_ndim(w, 4, "conv2d weight (O, C, KH, KW)");
  const Device dev = same_device({x, w, b}, "conv2d");
  if (w.dim(1) != x.dim(1))
    throw std::invalid_argument("conv2d: input has " + std::to_string(x.dim(1)) +
                                " channels, weight " + shape_str(w.shape()) + " expects " +
                                std::to_string(w.dim(1)));
  const Conv2dShape s = o.same ? conv2d_shape_same(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0),
                                                   w.dim(2), w.dim(3), o.stride)
                               : conv2d_shape(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0),
                                              w.dim(2), w.dim(3), o.stride, o.pad);
  if (b.defined()) check_shape(b, {s.O}, "conv2d bias");
  Tensor y = Tensor::empty_on(dev, {s.N, s.O, s.OH, s.OW});
  const float* bias = b.defined() ? b.data_f32() : nullptr;
  const Level lv = context().level(OpFamily::matmul);
  switch (route_conv2d(dev, s)) {
    case Route::cpu: cpu::conv2d_forward(lv, s, x.f32(), w.f32(), bias, y.f32()); break;
    case Route::cuda:
      gpu::conv2d_forward(lv, s, x.data_f32(), w.data_f32(), bias, y.data_f32());
      break;
    case Route::vendor:
      gpu::cudnn_conv2d_forward(lv, s, x.data_f32(), w.data_f32(), bias, y.data_f32());
      break;
  }
  record(OpKind::conv2d, {x, w, b}, y, [x, w, b, s, dev](const Tensor& g) {
    Tensor gx, gw, gb;
    if (x.requires_grad()) {
      gx = Tensor::empty_on(dev, x.shape());
      const Level lv = context().level(OpFamily::matmul);
      switch (route_conv2d(dev, s)) {
        case Route::cpu: cpu::conv2d_backward_data(lv, s, g.f32(), w.f32(), gx.f32()); break;
        case Route::cuda:
          gpu::conv2d_backward_data(lv, s, g.data_f32(), w.data_f32(), gx.data_f32());
          break;
        case Route::vendor:
          gpu::cudnn_conv2d_backward_data(lv, s, g.data_f32(), w.data_f32(), gx.data_f32());
          break;
      }
    }
    if (w.requires_grad()) {
      gw = Tensor::empty_on(dev, w.shape());
      const Level lv = context().level(OpFamily::conv_wgrad);
      switch (route_conv2d(dev, s)) {
        case Route::cpu: cpu::conv2d_backward_weight(lv, s, x.f32(), g.f32(), gw.f32()); break;
        case Route::cuda:
          gpu::conv2d_backward_weight(lv, s, x.data_f32(), g.data_f32(), gw.data_f32());
          break;
        case Route::vendor:
          gpu::cudnn_conv2d_backward_weight(lv, s, x.data_f32(), g.data_f32(), gw.data_f32());
          break;
      }
    }
    if (b.defined() && b.requires_grad()) {
      gb = Tensor::empty_on(dev, b.shape());
      const Level lv = context().level(OpFamily::bias_grad);
      switch (route_conv2d(dev, s)) {
        case Route::cpu: cpu::conv2d_backward_bias(lv, s, g.f32(), gb.f32()); break;
        case Route::cuda: gpu::conv2d_backward_bias(lv, s, g.data_f32(), gb.data_f32()); break;
        case Route::vendor: gpu::cudnn_conv2d_backward_bias(s, g.data_f32(), gb.data_f32()); break;
      }
    }
    return std::vector<Tensor>{gx, gw, gb};
  });
  return y;
}

}  // namespace detdl::ops
