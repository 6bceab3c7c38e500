// Batch normalisation op over kernels/cpu/batchnorm.h (whose header names the order).
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/batchnorm.h"

namespace detdl::ops {

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                  Tensor& running_var, bool training, float momentum, float eps, bool unbiased) {
  if (x.ndim() != 2 && x.ndim() != 4)
    throw std::invalid_argument("batch_norm: expected (N, C) or (N, C, H, W), got " + shape_str(x.shape()));
  const std::int64_t N = x.dim(0), C = x.dim(1), HW = x.ndim() == 4 ? x.dim(2) * x.dim(3) : 1;
  check_shape(gamma, {C}, "batch_norm gamma");
  check_shape(beta, {C}, "batch_norm beta");
  check_shape(running_mean, {C}, "batch_norm running_mean");
  check_shape(running_var, {C}, "batch_norm running_var");
  Tensor y = Tensor::empty(x.shape());
  if (!training) {
    cpu::batchnorm_forward_eval(N, C, HW, x.f32(), gamma.f32(), beta.f32(), running_mean.f32(), running_var.f32(),
                                eps, y.f32());
    record("batch_norm", {x, gamma, beta}, y, [](const Tensor&) -> std::vector<Tensor> {
      throw std::logic_error("batch_norm: backward through eval mode is not supported");
    });
    return y;
  }
  if (N * HW < 2) throw std::invalid_argument("batch_norm: training needs more than one value per channel, got " + shape_str(x.shape()));
  const Level lv = context().level(OpFamily::norm_stats);
  Tensor mean = Tensor::empty({C}), inv_std = Tensor::empty({C}), var = Tensor::empty({C});
  cpu::batchnorm_forward_train(lv, N, C, HW, x.f32(), gamma.f32(), beta.f32(), eps, y.f32(), mean.f32(),
                               inv_std.f32(), var.f32());
  cpu::batchnorm_update_running(C, N * HW, momentum, mean.f32(), var.f32(), running_mean.f32(), running_var.f32(),
                                  unbiased);
  record("batch_norm", {x, gamma, beta}, y, [x, gamma, mean, inv_std, N, C, HW](const Tensor& g) {
    Tensor gx = Tensor::empty(x.shape()), gg = Tensor::empty({C}), gb = Tensor::empty({C});
    cpu::batchnorm_backward(context().level(OpFamily::norm_stats), N, C, HW, x.f32(), g.f32(), gamma.f32(),
                            mean.f32(), inv_std.f32(), gx.f32(), gg.f32(), gb.f32());
    return std::vector<Tensor>{gx, gg, gb};
  });
  return y;
}

}  // namespace detdl::ops
