// Batch normalisation op over kernels/cpu/batchnorm.h (whose header names the order) or,
// for CUDA tensors, kernels/cuda/batchnorm.h (the same order).
#include <optional>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/batchnorm.h"

namespace detdl::ops {
namespace {

// The `emulated` level's implementation of this CPU batch-norm kernel call
// (kernels/cpu/batchnorm.h), or nullopt when neither family is emulated. One draw per
// family per kernel call; with_sums = false for the evaluation forward (no reduction).
std::optional<cpu::BatchnormImpl> emulated_batchnorm(bool with_sums) {
  RunContext& ctx = context();
  const auto r = with_sums ? ctx.impl_draw(ImplFamily::reduce) : std::nullopt;
  const auto c = ctx.impl_draw(ImplFamily::contraction);
  if (!r && !c) return std::nullopt;
  return cpu::batchnorm_impl(r ? &*r : nullptr, c ? &*c : nullptr);
}

// The same draws for a CUDA kernel call (the draws, in the same order, keep every later
// call's place in its family the CPU run's): its channel sums' order and contraction choices.
struct CudaBatchnorm {
  SumOrder order;
  BatchnormFma fma;
};
CudaBatchnorm cuda_batchnorm(Level lv, bool with_sums) {
  const auto e = emulated_batchnorm(with_sums);
  if (!e) return {lv, {}};
  const BatchnormFma fma{e->fma_affine, e->fma_count_dy, e->fma_xhat_dgamma};
  if (e->reduce != cpu::ReduceShape::canonical) return {SumOrder(lv, e->reduce_draw), fma};
  return {lv, fma};
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                  Tensor& running_var, bool training, float momentum, float eps, bool unbiased,
                  KerasMovingStats* keras) {
  if (x.ndim() != 2 && x.ndim() != 4)
    throw std::invalid_argument("batch_norm: expected (N, C) or (N, C, H, W), got " +
                                shape_str(x.shape()));
  const std::int64_t N = x.dim(0), C = x.dim(1), HW = x.ndim() == 4 ? x.dim(2) * x.dim(3) : 1;
  check_shape(gamma, {C}, "batch_norm gamma");
  check_shape(beta, {C}, "batch_norm beta");
  check_shape(running_mean, {C}, "batch_norm running_mean");
  check_shape(running_var, {C}, "batch_norm running_var");
  check_dtype(x, DType::f32, "batch_norm input");
  const Device dev = same_device({x, gamma, beta, running_mean, running_var}, "batch_norm");
  Tensor y = Tensor::empty_on(dev, x.shape());
  if (!training) {
    switch (route_batchnorm(dev, eps, /*unbiased=*/true)) {
      case Route::cpu:
        if (const auto e = emulated_batchnorm(false))
          cpu::batchnorm_forward_eval(*e, N, C, HW, x.f32(), gamma.f32(), beta.f32(),
                                      running_mean.f32(), running_var.f32(), eps, y.f32());
        else
          cpu::batchnorm_forward_eval(N, C, HW, x.f32(), gamma.f32(), beta.f32(),
                                      running_mean.f32(), running_var.f32(), eps, y.f32());
        break;
      case Route::cuda:
        gpu::batchnorm_forward_eval(N, C, HW, x.data_f32(), gamma.data_f32(), beta.data_f32(),
                                    running_mean.data_f32(), running_var.data_f32(), eps,
                                    y.data_f32(), cuda_batchnorm(Level::portable, false).fma);
        break;
      case Route::vendor:
        gpu::cudnn_batchnorm_forward_eval(N, C, HW, x.data_f32(), gamma.data_f32(), beta.data_f32(),
                                          running_mean.data_f32(), running_var.data_f32(), eps,
                                          y.data_f32());
        break;
    }
    // The running statistics are constants here. The backward runs on the host (its one
    // user is the training monitor's probe, once per checked epoch): CUDA tensors are copied.
    const Tensor mean_now = running_mean.to(Device::cpu).clone(),
                 var_now = running_var.to(Device::cpu).clone();
    record(OpKind::batch_norm, {x, gamma, beta}, y,
           [x, gamma, mean_now, var_now, eps, N, C, HW, dev](const Tensor& g) {
             const Tensor xh = x.to(Device::cpu), gh = g.to(Device::cpu),
                          gam = gamma.to(Device::cpu);
             Tensor dx = Tensor::empty(x.shape()), dgamma = Tensor::empty({C}),
                    dbeta = Tensor::empty({C});
             cpu::batchnorm_backward_eval(N, C, HW, xh.f32(), gh.f32(), gam.f32(), mean_now.f32(),
                                          var_now.f32(), eps, dx.f32(), dgamma.f32(), dbeta.f32());
             return std::vector<Tensor>{dx.to(dev), dgamma.to(dev), dbeta.to(dev)};
           });
    return y;
  }
  if (N * HW < 2)
    throw std::invalid_argument("batch_norm: training needs more than one value per channel, got " +
                                shape_str(x.shape()));
  const Level lv = context().level(OpFamily::norm_stats);
  Tensor mean = Tensor::empty_on(dev, {C}), inv_std = Tensor::empty_on(dev, {C}),
         var = Tensor::empty_on(dev, {C});
  // The backward takes the forward's route: cuDNN's saved statistics go back to cuDNN.
  // Keras's moving statistics are detdl's kernels' (cuDNN updates PyTorch's kind).
  const Route fwd = route_batchnorm(dev, eps, keras ? false : unbiased);
  const bool vendor = fwd == Route::vendor;
  switch (fwd) {
    case Route::cpu:
      if (const auto e = emulated_batchnorm(true))
        cpu::batchnorm_forward_train(*e, N, C, HW, x.f32(), gamma.f32(), beta.f32(), eps, y.f32(),
                                     mean.f32(), inv_std.f32(), var.f32());
      else
        cpu::batchnorm_forward_train(lv, N, C, HW, x.f32(), gamma.f32(), beta.f32(), eps, y.f32(),
                                     mean.f32(), inv_std.f32(), var.f32());
      if (keras)
        cpu::batchnorm_update_running_keras(
            C, N * HW, momentum, eps, mean.f32(), var.f32(), keras->biased_mean.f32(),
            keras->biased_var.f32(), keras->steps.f32(), running_mean.f32(), running_var.f32());
      else
        cpu::batchnorm_update_running(C, N * HW, momentum, mean.f32(), var.f32(),
                                      running_mean.f32(), running_var.f32(), unbiased);
      break;
    case Route::cuda: {
      const CudaBatchnorm b = cuda_batchnorm(lv, true);
      gpu::batchnorm_forward_train(b.order, N, C, HW, x.data_f32(), gamma.data_f32(),
                                   beta.data_f32(), eps, y.data_f32(), mean.data_f32(),
                                   inv_std.data_f32(), var.data_f32(), b.fma);
      if (keras)
        gpu::batchnorm_update_running_keras(C, N * HW, momentum, eps, mean.data_f32(),
                                            var.data_f32(), keras->biased_mean.data_f32(),
                                            keras->biased_var.data_f32(), keras->steps.data_f32(),
                                            running_mean.data_f32(), running_var.data_f32());
      else
        gpu::batchnorm_update_running(C, N * HW, momentum, mean.data_f32(), var.data_f32(),
                                      running_mean.data_f32(), running_var.data_f32(), unbiased);
      break;
    }
    case Route::vendor:  // cuDNN also updates the running statistics (unbiased, as routed)
      gpu::cudnn_batchnorm_forward_train(
          N, C, HW, x.data_f32(), gamma.data_f32(), beta.data_f32(), eps, momentum, y.data_f32(),
          running_mean.data_f32(), running_var.data_f32(), mean.data_f32(), inv_std.data_f32());
      break;
  }
  record(OpKind::batch_norm, {x, gamma, beta}, y,
         [x, gamma, mean, inv_std, N, C, HW, dev, vendor, eps](const Tensor& g) {
           Tensor gx = Tensor::empty_on(dev, x.shape()), gg = Tensor::empty_on(dev, {C}),
                  gb = Tensor::empty_on(dev, {C});
           const Level lv = context().level(OpFamily::norm_stats);
           switch (vendor ? Route::vendor : route(dev)) {
             case Route::cpu:
               if (const auto e = emulated_batchnorm(true))
                 cpu::batchnorm_backward(*e, N, C, HW, x.f32(), g.f32(), gamma.f32(), mean.f32(),
                                         inv_std.f32(), gx.f32(), gg.f32(), gb.f32());
               else
                 cpu::batchnorm_backward(lv, N, C, HW, x.f32(), g.f32(), gamma.f32(), mean.f32(),
                                         inv_std.f32(), gx.f32(), gg.f32(), gb.f32());
               break;
             case Route::cuda: {
               const CudaBatchnorm b = cuda_batchnorm(lv, true);
               gpu::batchnorm_backward(b.order, N, C, HW, x.data_f32(), g.data_f32(),
                                       gamma.data_f32(), mean.data_f32(), inv_std.data_f32(),
                                       gx.data_f32(), gg.data_f32(), gb.data_f32(), b.fma);
               break;
             }
             case Route::vendor:
               gpu::cudnn_batchnorm_backward(N, C, HW, x.data_f32(), g.data_f32(), gamma.data_f32(),
                                             mean.data_f32(), inv_std.data_f32(), eps,
                                             gx.data_f32(), gg.data_f32(), gb.data_f32());
               break;
           }
           return std::vector<Tensor>{gx, gg, gb};
         });
  return y;
}

}  // namespace detdl::ops
