#include "kernels/cuda/arith.h"

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda {
namespace {

__device__ std::int64_t global_index() {
  return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
}

__global__ void binary_kernel(BinaryOp op, std::int64_t n, const float* a, const float* b,
                              float* y) {
  const std::int64_t i = global_index();
  if (i >= n) return;
  switch (op) {
    case BinaryOp::add: y[i] = a[i] + b[i]; break;
    case BinaryOp::sub: y[i] = a[i] - b[i]; break;
    case BinaryOp::mul: y[i] = a[i] * b[i]; break;
  }
}

__global__ void scale_kernel(std::int64_t n, const float* a, float s, float* y) {
  const std::int64_t i = global_index();
  if (i < n) y[i] = a[i] * s;
}

__global__ void add_inplace_kernel(std::int64_t n, float* acc, const float* g) {
  const std::int64_t i = global_index();
  if (i < n) acc[i] = acc[i] + g[i];
}

__global__ void row_bias_kernel(std::int64_t rows, std::int64_t cols, float* y, const float* b) {
  const std::int64_t i = global_index();
  if (i < rows * cols) y[i] = y[i] + b[i % cols];
}

__global__ void fill_kernel(std::int64_t n, float value, float* y) {
  const std::int64_t i = global_index();
  if (i < n) y[i] = value;
}

__global__ void dropout_backward_kernel(std::int64_t n, float scale, const float* dy,
                                        const std::uint8_t* mask, float* dx) {
  const std::int64_t i = global_index();
  if (i < n) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}

}  // namespace

void binary_map(BinaryOp op, std::int64_t n, const float* a, const float* b, float* y,
                cudaStream_t stream) {
  if (n <= 0) return;
  DETDL_LAUNCH(blocks_for(n), kBlock, 0, stream, binary_kernel)(op, n, a, b, y);
  DETDL_CUDA_CHECK_LAUNCH("binary_kernel");
}

void scale(std::int64_t n, const float* a, float s, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  DETDL_LAUNCH(blocks_for(n), kBlock, 0, stream, scale_kernel)(n, a, s, y);
  DETDL_CUDA_CHECK_LAUNCH("scale_kernel");
}

void add_inplace(std::int64_t n, float* acc, const float* g, cudaStream_t stream) {
  if (n <= 0) return;
  DETDL_LAUNCH(blocks_for(n), kBlock, 0, stream, add_inplace_kernel)(n, acc, g);
  DETDL_CUDA_CHECK_LAUNCH("add_inplace_kernel");
}

void add_row_bias(std::int64_t rows, std::int64_t cols, float* y, const float* b,
                  cudaStream_t stream) {
  if (rows * cols <= 0) return;
  DETDL_LAUNCH(blocks_for(rows * cols), kBlock, 0, stream, row_bias_kernel)(rows, cols, y, b);
  DETDL_CUDA_CHECK_LAUNCH("row_bias_kernel");
}

void fill(std::int64_t n, float value, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  DETDL_LAUNCH(blocks_for(n), kBlock, 0, stream, fill_kernel)(n, value, y);
  DETDL_CUDA_CHECK_LAUNCH("fill_kernel");
}

void dropout_backward(float p, std::int64_t n, const float* dy, const std::uint8_t* mask, float* dx,
                      cudaStream_t stream) {
  if (n <= 0) return;
  if (p == 0.0f) {
    DETDL_CUDA_CHECK(cudaMemcpyAsync(dx, dy, static_cast<std::size_t>(n) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, stream));
    return;
  }
  const float scale = 1.0f / (1.0f - p);  // the CPU kernel's rounding of the same expression
  DETDL_LAUNCH(blocks_for(n), kBlock, 0, stream, dropout_backward_kernel)(n, scale, dy, mask, dx);
  DETDL_CUDA_CHECK_LAUNCH("dropout_backward_kernel");
}

void copy_rows(std::int64_t rows, std::size_t width, const void* src, std::size_t src_pitch,
               void* dst, std::size_t dst_pitch, cudaStream_t stream) {
  if (rows <= 0 || width == 0) return;
  DETDL_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width,
                                     static_cast<std::size_t>(rows), cudaMemcpyDeviceToDevice,
                                     stream));
}

}  // namespace detdl::cuda
