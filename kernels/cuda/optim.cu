#include "kernels/cuda/optim.h"

#include <algorithm>

#include "kernels/common/optim_formulas.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda {
namespace {

using i64 = std::int64_t;

__global__ void sgd_kernel(i64 n, float* p, const float* g, float* buf, SgdParams s) {
  DETDL_GRID_STRIDE(i, n) {
    if (s.keras)
      sgd_element_keras(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov);
    else
      sgd_element(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov, s.first);
  }
}

__global__ void adam_kernel(i64 n, float* p, const float* g, float* m, float* v, AdamParams a,
                            float lr_t) {
  DETDL_GRID_STRIDE(i, n) {
    adam_element_configured(a.keras, p[i], g[i], m[i], v[i], lr_t, a.lr, a.beta1, a.beta2, a.eps,
                            a.bc1, a.bc2, a.weight_decay, a.decoupled);
  }
}

__global__ void rmsprop_kernel(i64 n, float* p, const float* g, float* v, float* buf,
                               RmspropParams r) {
  DETDL_GRID_STRIDE(i, n) {
    if (r.keras)
      rmsprop_element_keras(p[i], g[i], v[i], buf[i], r.lr, r.alpha, r.eps, r.momentum,
                            r.weight_decay);
    else
      rmsprop_element(p[i], g[i], v[i], buf[i], r.lr, r.alpha, r.eps, r.momentum, r.weight_decay);
  }
}

// The `emulated` level's variants, as the CPU's (kernels/cpu/optim.h): the formula sites
// in `fuse` fused, Adam in `form`.
__global__ void sgd_c_kernel(i64 n, float* p, const float* g, float* buf, SgdParams s,
                             std::uint32_t fuse) {
  DETDL_GRID_STRIDE(i, n) {
    if (s.keras)
      sgd_element_keras_c(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov, fuse);
    else
      sgd_element_c(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov, s.first,
                    fuse);
  }
}

__global__ void adam_c_kernel(i64 n, float* p, const float* g, float* m, float* v, AdamParams a,
                              AdamForm form, float lr_t, AdamTorchScalars t, std::uint32_t fuse) {
  DETDL_GRID_STRIDE(i, n) {
    switch (form) {
      case AdamForm::keras:
        adam_element_keras_c(p[i], g[i], m[i], v[i], lr_t, a.lr, a.beta1, a.beta2, a.eps,
                             a.weight_decay, a.decoupled, fuse);
        break;
      case AdamForm::torch:
        adam_element_torch_c(p[i], g[i], m[i], v[i], t.step_size, t.bc2_sqrt, t.decay_mul, a.beta1,
                             a.beta2, a.eps, a.weight_decay, a.decoupled, fuse);
        break;
      case AdamForm::textbook:
        adam_element_c(p[i], g[i], m[i], v[i], a.lr, a.beta1, a.beta2, a.eps, a.bc1, a.bc2,
                       a.weight_decay, a.decoupled, fuse);
        break;
    }
  }
}

__global__ void rmsprop_c_kernel(i64 n, float* p, const float* g, float* v, float* buf,
                                 RmspropParams r, std::uint32_t fuse) {
  DETDL_GRID_STRIDE(i, n) {
    if (r.keras)
      rmsprop_element_keras_c(p[i], g[i], v[i], buf[i], r.lr, r.alpha, r.eps, r.momentum,
                              r.weight_decay, fuse);
    else
      rmsprop_element_c(p[i], g[i], v[i], buf[i], r.lr, r.alpha, r.eps, r.momentum, r.weight_decay,
                        fuse);
  }
}

}  // namespace

void sgd_update(i64 n, float* p, const float* g, float* buf, const SgdParams& s, std::uint32_t fuse,
                cudaStream_t stream) {
  if (n <= 0) return;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, sgd_c_kernel)(n, p, g, buf, s, fuse);
  DETDL_CUDA_CHECK_LAUNCH("sgd_c_kernel");
}

void adam_update(i64 n, float* p, const float* g, float* m, float* v, const AdamParams& a,
                 AdamForm form, std::uint32_t fuse, cudaStream_t stream) {
  if (n <= 0) return;
  // Host scalars, once, as the CPU computes them.
  const float lr_t = form == AdamForm::keras ? adam_keras_lr(a.lr, a.bc1, a.bc2) : 0.0f;
  const AdamTorchScalars t = adam_torch_scalars(a.lr, a.bc1, a.bc2, a.weight_decay);
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, adam_c_kernel)
  (n, p, g, m, v, a, form, lr_t, t, fuse);
  DETDL_CUDA_CHECK_LAUNCH("adam_c_kernel");
}

void rmsprop_update(i64 n, float* p, const float* g, float* v, float* buf, const RmspropParams& r,
                    std::uint32_t fuse, cudaStream_t stream) {
  if (n <= 0) return;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, rmsprop_c_kernel)(n, p, g, v, buf, r, fuse);
  DETDL_CUDA_CHECK_LAUNCH("rmsprop_c_kernel");
}

void sgd_update(i64 n, float* p, const float* g, float* buf, const SgdParams& s,
                cudaStream_t stream) {
  if (n <= 0) return;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, sgd_kernel)(n, p, g, buf, s);
  DETDL_CUDA_CHECK_LAUNCH("sgd_kernel");
}

void adam_update(i64 n, float* p, const float* g, float* m, float* v, const AdamParams& a,
                 cudaStream_t stream) {
  if (n <= 0) return;
  const float lr_t = a.keras ? adam_keras_lr(a.lr, a.bc1, a.bc2) : 0.0f;  // host, once, as the CPU
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, adam_kernel)(n, p, g, m, v, a, lr_t);
  DETDL_CUDA_CHECK_LAUNCH("adam_kernel");
}

void rmsprop_update(i64 n, float* p, const float* g, float* v, float* buf, const RmspropParams& r,
                    cudaStream_t stream) {
  if (n <= 0) return;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, rmsprop_kernel)(n, p, g, v, buf, r);
  DETDL_CUDA_CHECK_LAUNCH("rmsprop_kernel");
}

}  // namespace detdl::cuda
