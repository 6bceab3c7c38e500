#include "kernels/common/optim_formulas.h"
#include "kernels/common/philox.h"
#include "kernels/cuda/elementwise.h"

namespace detdl::cuda {
namespace {

constexpr int kBlock = 256;
unsigned blocks_for(std::int64_t n) { return static_cast<unsigned>((n + kBlock - 1) / kBlock); }

__global__ void act_fwd_kernel(Activation a, float alpha, const float* x, float* y, std::int64_t n) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) y[i] = act_forward(a, x[i], alpha);
}

__global__ void act_bwd_kernel(Activation a, float alpha, const float* x, const float* y, const float* dy, float* dx,
                               std::int64_t n) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) dx[i] = act_backward(a, x[i], y[i], dy[i], alpha);
}

__global__ void sgd_kernel(std::int64_t n, float* p, const float* g, float* buf, float lr, float momentum, float wd,
                           bool nesterov, bool first) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) sgd_element(p[i], g[i], buf[i], lr, momentum, wd, nesterov, first);
}

__global__ void adam_kernel(std::int64_t n, float* p, const float* g, float* m, float* v, float lr, float b1,
                            float b2, float eps, float bc1, float bc2, float wd, bool decoupled) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) adam_element(p[i], g[i], m[i], v[i], lr, b1, b2, eps, bc1, bc2, wd, decoupled);
}

__global__ void dropout_kernel(std::uint64_t seed, std::uint32_t sub, std::uint64_t base, float p, float scale,
                               std::int64_t n, const float* x, float* y, std::uint8_t* mask) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const bool keep = philox_uniform(seed, RandomStream::dropout, sub, base + static_cast<std::uint64_t>(i)) >= p;
  mask[i] = keep ? 1 : 0;
  y[i] = keep ? x[i] * scale : 0.0f;
}

}  // namespace

cudaError_t activation_forward(Activation a, float alpha, const float* x, float* y, std::int64_t n,
                               cudaStream_t stream) {
  if (n > 0) act_fwd_kernel<<<blocks_for(n), kBlock, 0, stream>>>(a, alpha, x, y, n);
  return cudaGetLastError();
}

cudaError_t activation_backward(Activation a, float alpha, const float* x, const float* y, const float* dy, float* dx,
                                std::int64_t n, cudaStream_t stream) {
  if (n > 0) act_bwd_kernel<<<blocks_for(n), kBlock, 0, stream>>>(a, alpha, x, y, dy, dx, n);
  return cudaGetLastError();
}

cudaError_t sgd_update(std::int64_t n, float* p, const float* g, float* buf, float lr, float momentum, float wd,
                       bool nesterov, bool first, cudaStream_t stream) {
  if (n > 0) sgd_kernel<<<blocks_for(n), kBlock, 0, stream>>>(n, p, g, buf, lr, momentum, wd, nesterov, first);
  return cudaGetLastError();
}

cudaError_t adam_update(std::int64_t n, float* p, const float* g, float* m, float* v, float lr, float b1, float b2,
                        float eps, float bc1, float bc2, float wd, bool decoupled, cudaStream_t stream) {
  if (n > 0) adam_kernel<<<blocks_for(n), kBlock, 0, stream>>>(n, p, g, m, v, lr, b1, b2, eps, bc1, bc2, wd, decoupled);
  return cudaGetLastError();
}

cudaError_t dropout_forward(std::uint64_t seed, std::uint32_t sub, std::uint64_t index_base, float p, std::int64_t n,
                            const float* x, float* y, std::uint8_t* mask, cudaStream_t stream) {
  if (!(p >= 0.0f && p < 1.0f)) return cudaErrorInvalidValue;
  const float scale = 1.0f / (1.0f - p);  // the CPU kernel's rounding of the same expression
  if (n > 0) dropout_kernel<<<blocks_for(n), kBlock, 0, stream>>>(seed, sub, index_base, p, scale, n, x, y, mask);
  return cudaGetLastError();
}

}  // namespace detdl::cuda
