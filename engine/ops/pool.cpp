// Pooling ops over kernels/cpu/pool.h (whose header names the summation orders) or, for
// CUDA tensors, kernels/cuda/pool.h (the same orders).
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/ops.h"
#include "engine/ops/parts.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/pool.h"

namespace detdl::ops {
namespace parts {

Pool2dShape pool_shape(const Tensor& x, const Pool2dOptions& o, const char* what) {
  check_ndim(x, 4, what);
  check_dtype(x, DType::f32, what);
  return o.same ? pool2d_shape_same(x.dim(0), x.dim(1), x.dim(2), x.dim(3), o.kernel, o.kernel,
                                    o.stride)
                : pool2d_shape(x.dim(0), x.dim(1), x.dim(2), x.dim(3), o.kernel, o.kernel, o.stride,
                               o.pad);
}

void record_relu_max_pool2d(const Pool2dShape& s, const Tensor& x, const Tensor& y,
                            const Tensor& argmax) {
  // The relu draws nothing; the pool's backward draws its scatter order as max_pool2d's does,
  // so the two ops in turn and this one draw the same.
  record(OpKind::relu_max_pool2d, {x}, y, [s, x, y, argmax](const Tensor& g) {
    Tensor gx = Tensor::empty_on(Device::cpu, {s.N, s.C, s.H, s.W});
    if (const auto d = context().impl_draw(ImplFamily::scatter)) {
      cpu::maxpool2d_backward(scatter_order(*d), *d, s, g.f32(), argmax.i32(), gx.f32());
      // relu's backward in place (element by element; relu reads x, not its output)
      cpu::activation_backward(Activation::relu, 0.0f, x.f32(), x.f32(), gx.f32(), gx.f32(),
                               x.numel());
    } else {
      cpu::relu_maxpool2d_backward(s, x.f32(), y.f32(), g.f32(), argmax.i32(), gx.f32());
    }
    return std::vector<Tensor>{gx};
  });
}

}  // namespace parts

using parts::pool_shape;

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o) {
  const Pool2dShape s = pool_shape(x, o, "max_pool2d input (N, C, H, W)");
  const Device dev = x.device();
  Tensor y = Tensor::empty_on(dev, {s.N, s.C, s.OH, s.OW});
  Tensor argmax = Tensor::empty_on(dev, {s.N, s.C, s.OH, s.OW}, DType::i32);
  if (dev == Device::cuda)
    gpu::maxpool2d_forward(s, x.data_f32(), y.data_f32(), argmax.data_i32());
  else
    cpu::maxpool2d_forward(s, x.f32(), y.f32(), argmax.i32());
  record(OpKind::max_pool2d, {x}, y, [s, argmax, dev](const Tensor& g) {
    Tensor gx = Tensor::empty_on(dev, {s.N, s.C, s.H, s.W});
    const auto d = context().impl_draw(ImplFamily::scatter);  // one draw on either device
    if (dev == Device::cuda && d)
      gpu::maxpool2d_backward(scatter_order(*d), *d, s, g.data_f32(), argmax.data_i32(),
                              gx.data_f32());
    else if (dev == Device::cuda)
      gpu::maxpool2d_backward(s, g.data_f32(), argmax.data_i32(), gx.data_f32());
    else if (d)
      cpu::maxpool2d_backward(scatter_order(*d), *d, s, g.f32(), argmax.i32(), gx.f32());
    else
      cpu::maxpool2d_backward(s, g.f32(), argmax.i32(), gx.f32());
    return std::vector<Tensor>{gx};
  });
  return y;
}

Tensor relu_max_pool2d(const Tensor& x, const Pool2dOptions& o) {
  if (x.device() == Device::cuda) return max_pool2d(relu(x), o);
  const Pool2dShape s = pool_shape(x, o, "relu_max_pool2d input (N, C, H, W)");
  Tensor y = Tensor::empty_on(Device::cpu, {s.N, s.C, s.OH, s.OW});
  Tensor argmax = Tensor::empty_on(Device::cpu, {s.N, s.C, s.OH, s.OW}, DType::i32);
  cpu::relu_maxpool2d_forward(s, x.f32(), y.f32(), argmax.i32());
  parts::record_relu_max_pool2d(s, x, y, argmax);
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o) {
  const Pool2dShape s = pool_shape(x, o, "avg_pool2d input (N, C, H, W)");
  const Device dev = x.device();
  Tensor y = Tensor::empty_on(dev, {s.N, s.C, s.OH, s.OW});
  if (dev == Device::cuda)
    gpu::avgpool2d_forward(s, o.count_include_pad, x.data_f32(), y.data_f32());
  else
    cpu::avgpool2d_forward(s, o.count_include_pad, x.f32(), y.f32());
  record(OpKind::avg_pool2d, {x}, y, [s, inc = o.count_include_pad, dev](const Tensor& g) {
    Tensor gx = Tensor::empty_on(dev, {s.N, s.C, s.H, s.W});
    const auto d = context().impl_draw(ImplFamily::scatter);  // one draw on either device
    if (dev == Device::cuda && d)
      gpu::avgpool2d_backward(scatter_order(*d), *d, s, inc, g.data_f32(), gx.data_f32());
    else if (dev == Device::cuda)
      gpu::avgpool2d_backward(s, inc, g.data_f32(), gx.data_f32());
    else if (d)
      cpu::avgpool2d_backward(scatter_order(*d), *d, s, inc, g.f32(), gx.f32());
    else
      cpu::avgpool2d_backward(s, inc, g.f32(), gx.f32());
    return std::vector<Tensor>{gx};
  });
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_ndim(x, 4, "global_avg_pool2d input (N, C, H, W)");
  const std::int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
  check_dtype(x, DType::f32, "global_avg_pool2d input");
  const Device dev = x.device();
  Tensor y = Tensor::empty_on(dev, {N, C});
  if (dev == Device::cuda)
    gpu::global_avgpool_forward(
        SumOrder::of(Level::portable, context().impl_draw(ImplFamily::reduce)), N, C, HW,
        x.data_f32(), y.data_f32());
  else if (const auto d = context().impl_draw(ImplFamily::reduce))
    cpu::global_avgpool_forward(cpu::reduce_shape(*d), *d, N, C, HW, x.f32(), y.f32());
  else
    cpu::global_avgpool_forward(N, C, HW, x.f32(), y.f32());
  record(OpKind::global_avg_pool2d, {x}, y, [shape = x.shape(), N, C, HW, dev](const Tensor& g) {
    Tensor gx = Tensor::empty_on(dev, shape);
    if (dev == Device::cuda)
      gpu::global_avgpool_backward(N, C, HW, g.data_f32(), gx.data_f32());
    else
      cpu::global_avgpool_backward(N, C, HW, g.f32(), gx.f32());
    return std::vector<Tensor>{gx};
  });
  return y;
}

}  // namespace detdl::ops
