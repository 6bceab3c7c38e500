#include "kernels/common/philox.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda {
namespace {

__global__ void act_fwd_kernel(Activation a, float alpha, const float* x, float* y, std::int64_t n,
                               ActImpl impl) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) y[i] = act_forward_impl(a, x[i], alpha, impl.alt_math);
}

__global__ void act_bwd_kernel(Activation a, float alpha, const float* x, const float* y,
                               const float* dy, float* dx, std::int64_t n, ActImpl impl) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) dx[i] = act_backward_impl(a, x[i], y[i], dy[i], alpha, impl.alt_math, impl.fuse);
}

__global__ void dropout_kernel(std::uint64_t seed, std::uint32_t sub, std::uint64_t base, float p,
                               float scale, std::int64_t n, const float* x, float* y,
                               std::uint8_t* mask) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const bool keep =
      philox_uniform(seed, RandomStream::dropout, sub, base + static_cast<std::uint64_t>(i)) >= p;
  mask[i] = keep ? 1 : 0;
  y[i] = keep ? x[i] * scale : 0.0f;
}

}  // namespace

void activation_forward(Activation a, float alpha, const float* x, float* y, std::int64_t n,
                        const ActImpl& impl, cudaStream_t stream) {
  if (n > 0)
    DETDL_LAUNCH(blocks_for(n), kBlock, 0, stream, act_fwd_kernel)(a, alpha, x, y, n, impl);
  DETDL_CUDA_CHECK_LAUNCH("act_fwd_kernel");
}

void activation_backward(Activation a, float alpha, const float* x, const float* y, const float* dy,
                         float* dx, std::int64_t n, const ActImpl& impl, cudaStream_t stream) {
  if (n > 0)
    DETDL_LAUNCH(blocks_for(n), kBlock, 0, stream, act_bwd_kernel)(a, alpha, x, y, dy, dx, n, impl);
  DETDL_CUDA_CHECK_LAUNCH("act_bwd_kernel");
}

void dropout_forward(std::uint64_t seed, std::uint32_t sub, std::uint64_t index_base, float p,
                     std::int64_t n, const float* x, float* y, std::uint8_t* mask,
                     cudaStream_t stream) {
  if (!(p >= 0.0f && p < 1.0f))
    check_cuda(cudaErrorInvalidValue, "dropout_forward (p in [0, 1))", __FILE__, __LINE__);
  const float scale = 1.0f / (1.0f - p);  // the CPU kernel's rounding of the same expression
  if (n > 0) {
    DETDL_LAUNCH(blocks_for(n), kBlock, 0, stream, dropout_kernel)
    (seed, sub, index_base, p, scale, n, x, y, mask);
  }
  DETDL_CUDA_CHECK_LAUNCH("dropout_kernel");
}

}  // namespace detdl::cuda
