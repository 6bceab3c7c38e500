// Convolution op: forward and gradients from kernels/cpu/conv.h or, for CUDA tensors,
// kernels/cuda/conv.h (the same reduction orders, named in kernels/cpu/conv.h). The weight
// gradient runs at OpFamily::conv_wgrad's level, the bias gradient at bias_grad's, the
// forward and data gradient at matmul's.
// At `emulated` (kernels/common/impl_choice.h), convolutions take their algorithm, the data
// gradient's split over o and the weight gradient's batch split from ImplFamily::conv,
// col2im's tap order from ImplFamily::scatter (kernels/common/conv_plan.h), and the bias
// gradient's tree from ImplFamily::reduce; one draw per family per kernel call, taken here
// in the same order for either device (the CPU's and the CUDA kernels give the same bits).
#include <optional>
#include <stdexcept>
#include <vector>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/ops.h"
#include "engine/ops/parts.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/emulated_conv.h"
#include "kernels/cpu/emulated_reduce.h"

namespace detdl::ops {
namespace {

// The CPU kernels, or the emulated ones where a family draws (one draw per family per call).
// x (N, C, H, W), w (O, C, KH, KW), bias (O) or nullptr -> y (N, O, OH, OW).
void cpu_forward(Level lv, const Conv2dShape& s, const float* x, const float* w, const float* bias,
                 float* y) {
  if (auto d = context().impl_draw(ImplFamily::conv))
    cpu::emulated_conv2d_forward(cpu::conv_forward_algo(*d, s), s, x, w, bias, y);
  else
    cpu::conv2d_forward(lv, s, x, w, bias, y);
}

// The data gradient's draws: the reduction over o (conv) and col2im's tap order (scatter).
struct DataDraws {
  std::optional<EmulatedGemmPlan> plan;
  std::vector<std::int32_t> taps;  // (KH*KW), or empty
  const EmulatedGemmPlan* plan_or_null() const { return plan ? &*plan : nullptr; }
  const std::int32_t* taps_or_null() const { return taps.empty() ? nullptr : taps.data(); }
};
DataDraws data_draws(const Conv2dShape& s) {
  DataDraws r;
  if (auto d = context().impl_draw(ImplFamily::conv)) r.plan = conv_data_plan(*d, s);
  if (auto d = context().impl_draw(ImplFamily::scatter)) r.taps = scatter_tap_order(*d, s);
  return r;
}

// dy (N, O, OH, OW), w (O, C, KH, KW) -> dx (N, C, H, W).
void cpu_backward_data(Level lv, const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const DataDraws e = data_draws(s);
  if (!e.plan && e.taps.empty())
    cpu::conv2d_backward_data(lv, s, dy, w, dx);
  else
    cpu::emulated_conv2d_backward_data(s, e.plan_or_null(), e.taps_or_null(), dy, w, dx);
}

// x (N, C, H, W), dy (N, O, OH, OW) -> dw (O, C, KH, KW).
void cpu_backward_weight(Level lv, const Conv2dShape& s, const float* x, const float* dy,
                         float* dw) {
  if (auto d = context().impl_draw(ImplFamily::conv))
    cpu::emulated_conv2d_backward_weight(cpu::conv_weight_plan(*d, s), s, x, dy, dw);
  else
    cpu::conv2d_backward_weight(lv, s, x, dy, dw);
}

// The same on the CUDA kernels, with the same draws.
void cuda_forward(Level lv, const Conv2dShape& s, const float* x, const float* w, const float* bias,
                  float* y) {
  if (auto d = context().impl_draw(ImplFamily::conv))
    gpu::conv2d_forward(conv_forward_algo(*d, s), s, x, w, bias, y);
  else
    gpu::conv2d_forward(lv, s, x, w, bias, y);
}
void cuda_backward_data(Level lv, const Conv2dShape& s, const float* dy, const float* w,
                        float* dx) {
  const DataDraws e = data_draws(s);
  if (!e.plan && e.taps.empty())
    gpu::conv2d_backward_data(lv, s, dy, w, dx);
  else
    gpu::conv2d_backward_data(e.plan_or_null(), e.taps_or_null(), s, dy, w, dx);
}
void cuda_backward_weight(Level lv, const Conv2dShape& s, const float* x, const float* dy,
                          float* dw) {
  if (auto d = context().impl_draw(ImplFamily::conv))
    gpu::conv2d_backward_weight(conv_weight_plan(*d, s), s, x, dy, dw);
  else
    gpu::conv2d_backward_weight(lv, s, x, dy, dw);
}

// dy (N, O, OH, OW) -> db (O).
void cpu_backward_bias(Level lv, const Conv2dShape& s, const float* dy, float* db) {
  if (auto d = context().impl_draw(ImplFamily::reduce))
    cpu::emulated_plane_sums(*d, s.N, s.O, s.OH * s.OW, dy, db);  // dy (N, O, OH*OW) -> db (O)
  else
    cpu::conv2d_backward_bias(lv, s, dy, db);
}

}  // namespace

namespace parts {

Conv2dShape conv2d_shape_of(const Tensor& x, const Tensor& w, const Tensor& b,
                            const Conv2dOptions& o, Device* dev) {
  check_ndim(x, 4, "conv2d input (N, C, H, W)");
  check_ndim(w, 4, "conv2d weight (O, C, KH, KW)");
  *dev = same_device({x, w, b}, "conv2d");
  if (w.dim(1) != x.dim(1))
    throw std::invalid_argument("conv2d: input has " + std::to_string(x.dim(1)) +
                                " channels, weight " + shape_str(w.shape()) + " expects " +
                                std::to_string(w.dim(1)));
  const Conv2dShape s = o.same ? conv2d_shape_same(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0),
                                                   w.dim(2), w.dim(3), o.stride)
                               : conv2d_shape(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0),
                                              w.dim(2), w.dim(3), o.stride, o.pad);
  if (b.defined()) check_shape(b, {s.O}, "conv2d bias");
  return s;
}

void record_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dShape& s,
                   Device dev, const Tensor& y) {
  record(OpKind::conv2d, {x, w, b}, y, [x, w, b, s, dev](const Tensor& g) {
    Tensor gx, gw, gb;
    if (x.requires_grad()) {
      gx = Tensor::empty_on(dev, x.shape());
      const Level lv = context().level(OpFamily::matmul);
      switch (route_conv2d(dev, s)) {
        case Route::cpu: cpu_backward_data(lv, s, g.f32(), w.f32(), gx.f32()); break;
        case Route::cuda:
          cuda_backward_data(lv, s, g.data_f32(), w.data_f32(), gx.data_f32());
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
        case Route::cpu: cpu_backward_weight(lv, s, x.f32(), g.f32(), gw.f32()); break;
        case Route::cuda:
          cuda_backward_weight(lv, s, x.data_f32(), g.data_f32(), gw.data_f32());
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
        case Route::cpu: cpu_backward_bias(lv, s, g.f32(), gb.f32()); break;
        case Route::cuda:
          gpu::conv2d_backward_bias(SumOrder::of(lv, context().impl_draw(ImplFamily::reduce)), s,
                                    g.data_f32(), gb.data_f32());
          break;
        case Route::vendor: gpu::cudnn_conv2d_backward_bias(s, g.data_f32(), gb.data_f32()); break;
      }
    }
    return std::vector<Tensor>{gx, gw, gb};
  });
}

}  // namespace parts

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  Device dev{};
  const Conv2dShape s = parts::conv2d_shape_of(x, w, b, o, &dev);
  Tensor y = Tensor::empty_on(dev, {s.N, s.O, s.OH, s.OW});
  const float* bias = b.defined() ? b.data_f32() : nullptr;
  const Level lv = context().level(OpFamily::matmul);
  switch (route_conv2d(dev, s)) {
    case Route::cpu: cpu_forward(lv, s, x.f32(), w.f32(), bias, y.f32()); break;
    case Route::cuda: cuda_forward(lv, s, x.data_f32(), w.data_f32(), bias, y.data_f32()); break;
    case Route::vendor:
      gpu::cudnn_conv2d_forward(lv, s, x.data_f32(), w.data_f32(), bias, y.data_f32());
      break;
  }
  parts::record_conv2d(x, w, b, s, dev, y);
  return y;
}

}  // namespace detdl::ops
