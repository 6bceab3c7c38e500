// CUDA batch normalisation; the orders are in batchnorm.h (and kernels/cpu/batchnorm.h).
#include "kernels/cuda/batchnorm.h"

#include <algorithm>
#include <cmath>

#include "kernels/common/batchnorm_keras.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.h"

namespace detdl::cuda {
namespace {

using i64 = std::int64_t;

// The flat indices ((n * C + c) * HW + hw) of values k = n * HW + hw of channel c, walked
// from k0 without a division per value (reduce.h PlaneWalk).
__device__ detail::PlaneWalk walk(i64 c, i64 k0, i64 C, i64 HW) {
  return detail::PlaneWalk(c, k0, HW, HW, C * HW);
}

struct XTerm {
  const float* x;
  i64 C, HW;
  struct Walk {
    const float* x;
    detail::PlaneWalk w;
    __device__ float next() { return x[w.next()]; }
  };
  __device__ Walk chunk(i64 c, i64 k0) const { return Walk{x, walk(c, k0, C, HW)}; }
};
struct SquaredDeviationTerm {  // (x - mean)^2, the difference rounded, then squared
  const float* x;
  const float* mean;
  i64 C, HW;
  struct Walk {
    const float* x;
    float mean;
    detail::PlaneWalk w;
    __device__ float next() {
      const float d = x[w.next()] - mean;
      return d * d;
    }
  };
  __device__ Walk chunk(i64 c, i64 k0) const { return Walk{x, mean[c], walk(c, k0, C, HW)}; }
};
struct DyXhatTerm {  // dy * ((x - mean) * inv_std)
  const float* x;
  const float* dy;
  const float* mean;
  const float* inv_std;
  i64 C, HW;
  struct Walk {
    const float* x;
    const float* dy;
    float mean, inv_std;
    detail::PlaneWalk w;
    __device__ float next() {
      const i64 i = w.next();
      return dy[i] * ((x[i] - mean) * inv_std);
    }
  };
  __device__ Walk chunk(i64 c, i64 k0) const {
    return Walk{x, dy, mean[c], inv_std[c], walk(c, k0, C, HW)};
  }
};
struct StoreMean {
  float* mean;
  float count;
  __device__ void operator()(i64 c, float s) const { mean[c] = s / count; }
};
struct StoreVar {
  float* var;  // may be null
  float* inv_std;
  float count, eps;
  __device__ void operator()(i64 c, float s) const {
    const float v = s / count;
    if (var) var[c] = v;
    inv_std[c] = 1.0f / sqrtf(v + eps);
  }
};

// y = (((x - shift) * scale) * gamma) + beta; scale is inv_std, or computed from the
// running variance (1 / sqrtf(var + eps)) when eval_var is given.
__global__ void normalize_kernel(i64 N, i64 C, i64 HW, const float* x, const float* shift,
                                 const float* scale, const float* eval_var, float eps,
                                 const float* gamma, const float* beta, float* y, bool fused) {
  DETDL_GRID_STRIDE(i, N * C * HW) {
    const i64 c = (i / HW) % C;
    const float s = eval_var ? 1.0f / sqrtf(eval_var[c] + eps) : scale[c];
    const float xhat = (x[i] - shift[c]) * s;
    y[i] = fused ? fmaf(xhat, gamma[c], beta[c]) : xhat * gamma[c] + beta[c];
  }
}

__global__ void update_running_kernel(i64 C, float momentum, float keep, float correction,
                                      const float* mean, const float* var, float* running_mean,
                                      float* running_var) {
  DETDL_GRID_STRIDE(c, C) {
    running_mean[c] = running_mean[c] * keep + mean[c] * momentum;
    running_var[c] = running_var[c] * keep + (var[c] * correction) * momentum;
  }
}

__global__ void bn_backward_kernel(i64 N, i64 C, i64 HW, float count, const float* x,
                                   const float* dy, const float* gamma, const float* mean,
                                   const float* inv_std, const float* db, const float* dg,
                                   float* dx, BatchnormFma fma) {
  DETDL_GRID_STRIDE(i, N * C * HW) {
    const i64 c = (i / HW) % C;
    const float kc = (gamma[c] * inv_std[c]) / count;  // the CPU's per-channel k, same expression
    const float xhat = (x[i] - mean[c]) * inv_std[c];
    const float t = fma.count_dy ? fmaf(count, dy[i], -db[c]) : count * dy[i] - db[c];
    dx[i] = kc * (fma.xhat_dgamma ? fmaf(-xhat, dg[c], t) : t - xhat * dg[c]);
  }
}

}  // namespace

void batchnorm_forward_train(Level level, i64 N, i64 C, i64 HW, const float* x, const float* gamma,
                             const float* beta, float eps, float* y, float* save_mean,
                             float* save_inv_std, float* batch_var, cudaStream_t stream) {
  batchnorm_forward_train(level, N, C, HW, x, gamma, beta, eps, y, save_mean, save_inv_std,
                          batch_var, BatchnormFma{}, stream);
}

void batchnorm_forward_train(const SumOrder& order, i64 N, i64 C, i64 HW, const float* x,
                             const float* gamma, const float* beta, float eps, float* y,
                             float* save_mean, float* save_inv_std, float* batch_var,
                             const BatchnormFma& fma, cudaStream_t stream) {
  if (C <= 0) return;
  const float count = static_cast<float>(N * HW);
  detail::value_reduce(order, C, N * HW, XTerm{x, C, HW}, StoreMean{save_mean, count}, stream, 0);
  detail::value_reduce(order, C, N * HW, SquaredDeviationTerm{x, save_mean, C, HW},
                       StoreVar{batch_var, save_inv_std, count, eps}, stream, 1);
  if (N * HW == 0) return;
  DETDL_LAUNCH(grid_for(N * C * HW), kBlock, 0, stream, normalize_kernel)
  (N, C, HW, x, save_mean, save_inv_std, nullptr, eps, gamma, beta, y, fma.affine);
  DETDL_CUDA_CHECK_LAUNCH("normalize_kernel");
}

namespace {

__global__ void bump_steps_kernel(float* steps) { steps[0] = steps[0] + 1.0f; }

__global__ void keras_running_kernel(i64 C, float momentum, float factor, const float* steps,
                                     const float* batch_mean, const float* batch_var,
                                     float* biased_mean, float* biased_var, float* running_mean,
                                     float* running_var) {
  const float debias = keras_debias_factor(1.0f - momentum, static_cast<std::int64_t>(steps[0]));
  DETDL_GRID_STRIDE(c, C) {
    keras_moving_update(momentum, factor, debias, batch_mean[c], batch_var[c], biased_mean[c],
                        biased_var[c], running_mean[c], running_var[c]);
  }
}

}  // namespace

void batchnorm_update_running_keras(i64 C, i64 count, float momentum, float eps,
                                    const float* batch_mean, const float* batch_var,
                                    float* biased_mean, float* biased_var, float* steps,
                                    float* running_mean, float* running_var, cudaStream_t stream) {
  if (C <= 0) return;
  DETDL_LAUNCH(1, 1, 0, stream, bump_steps_kernel)(steps);
  DETDL_CUDA_CHECK_LAUNCH("bump_steps_kernel");
  DETDL_LAUNCH(grid_for(C), kBlock, 0, stream, keras_running_kernel)
  (C, momentum, keras_variance_factor(count, eps), steps, batch_mean, batch_var, biased_mean,
   biased_var, running_mean, running_var);
  DETDL_CUDA_CHECK_LAUNCH("keras_running_kernel");
}

void batchnorm_update_running(i64 C, i64 count, float momentum, const float* batch_mean,
                              const float* batch_var, float* running_mean, float* running_var,
                              bool unbiased, cudaStream_t stream) {
  if (C <= 0) return;
  const float keep = 1.0f - momentum;
  const float correction =
      unbiased && count > 1 ? static_cast<float>(count) / static_cast<float>(count - 1) : 1.0f;
  DETDL_LAUNCH(grid_for(C), kBlock, 0, stream, update_running_kernel)
  (C, momentum, keep, correction, batch_mean, batch_var, running_mean, running_var);
  DETDL_CUDA_CHECK_LAUNCH("update_running_kernel");
}

void batchnorm_forward_eval(i64 N, i64 C, i64 HW, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, cudaStream_t stream) {
  batchnorm_forward_eval(N, C, HW, x, gamma, beta, running_mean, running_var, eps, y,
                         BatchnormFma{}, stream);
}

void batchnorm_forward_eval(i64 N, i64 C, i64 HW, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, const BatchnormFma& fma, cudaStream_t stream) {
  if (N * C * HW <= 0) return;
  DETDL_LAUNCH(grid_for(N * C * HW), kBlock, 0, stream, normalize_kernel)
  (N, C, HW, x, running_mean, nullptr, running_var, eps, gamma, beta, y, fma.affine);
  DETDL_CUDA_CHECK_LAUNCH("normalize_kernel");
}

void batchnorm_backward(Level level, i64 N, i64 C, i64 HW, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_inv_std,
                        float* dx, float* dgamma, float* dbeta, cudaStream_t stream) {
  batchnorm_backward(level, N, C, HW, x, dy, gamma, save_mean, save_inv_std, dx, dgamma, dbeta,
                     BatchnormFma{}, stream);
}

void batchnorm_backward(const SumOrder& order, i64 N, i64 C, i64 HW, const float* x,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_inv_std, float* dx, float* dgamma, float* dbeta,
                        const BatchnormFma& fma, cudaStream_t stream) {
  if (C <= 0) return;
  const float count = static_cast<float>(N * HW);
  DeviceBuffer<float> db(static_cast<std::size_t>(C), stream),
      dg(static_cast<std::size_t>(C), stream);
  detail::value_reduce(order, C, N * HW, XTerm{dy, C, HW}, detail::StoreSum{db.get()}, stream, 0);
  detail::value_reduce(order, C, N * HW, DyXhatTerm{x, dy, save_mean, save_inv_std, C, HW},
                       detail::StoreSum{dg.get()}, stream, 1);
  const std::size_t bytes = static_cast<std::size_t>(C) * sizeof(float);
  if (dbeta)
    DETDL_CUDA_CHECK(cudaMemcpyAsync(dbeta, db.get(), bytes, cudaMemcpyDeviceToDevice, stream));
  if (dgamma)
    DETDL_CUDA_CHECK(cudaMemcpyAsync(dgamma, dg.get(), bytes, cudaMemcpyDeviceToDevice, stream));
  if (N * HW == 0) return;
  DETDL_LAUNCH(grid_for(N * C * HW), kBlock, 0, stream, bn_backward_kernel)
  (N, C, HW, count, x, dy, gamma, save_mean, save_inv_std, db.get(), dg.get(), dx, fma);
  DETDL_CUDA_CHECK_LAUNCH("bn_backward_kernel");
}

}  // namespace detdl::cuda
