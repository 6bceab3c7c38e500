// conv2d then relu_max_pool2d as one pass over the batch (ops.h conv2d_relu_max_pool2d): each
// sample is pooled by the thread that computed its convolution, right after, while its
// outputs are in that thread's cache. Apart, the pool read the whole convolution output back
// from memory (LeNet-5's first: 2.4 MB a step), a twentieth of a one-thread epoch. The
// convolution's output is still written: both nodes recorded here (engine/ops/parts.h) keep
// it for their gradients, which are the two ops' own.
#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/ops.h"
#include "engine/ops/parts.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/pool.h"

namespace detdl::ops {

Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& w, const Tensor& b,
                              const Conv2dOptions& co, const Pool2dOptions& po) {
  Device dev{};
  const Conv2dShape s = parts::conv2d_shape_of(x, w, b, co, &dev);
  // Fused where conv2d would run the direct kernels on the CPU with no draw for its forward
  // (at `emulated` the draw picks another algorithm); elsewhere the two ops in turn.
  if (route_conv2d(dev, s) != Route::cpu || context().emulated(ImplFamily::conv) ||
      !cpu::conv2d_forward_each_sample_applies(s))
    return relu_max_pool2d(conv2d(x, w, b, co), po);
  Tensor yc = Tensor::empty_on(Device::cpu, {s.N, s.O, s.OH, s.OW});
  const Pool2dShape ps = parts::pool_shape(yc, po, "conv2d_relu_max_pool2d's convolution output");
  Tensor y = Tensor::empty_on(Device::cpu, {ps.N, ps.C, ps.OH, ps.OW});
  Tensor argmax = Tensor::empty_on(Device::cpu, {ps.N, ps.C, ps.OH, ps.OW}, DType::i32);
  float* yc_data = yc.f32();
  float* y_data = y.f32();
  std::int32_t* at = argmax.i32();
  cpu::conv2d_forward_each_sample(
      s, x.f32(), w.f32(), b.defined() ? b.f32() : nullptr, yc_data,
      [&](std::int64_t n) { cpu::relu_maxpool2d_forward_sample(ps, n, yc_data, y_data, at); });
  parts::record_conv2d(x, w, b, s, dev, yc);
  parts::record_relu_max_pool2d(ps, yc, y, argmax);
  return y;
}

}  // namespace detdl::ops
