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

}  // namespace

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
