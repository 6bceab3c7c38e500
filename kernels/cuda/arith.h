// CUDA element-wise arithmetic the engine needs around the kernel families: the binary
// maps of engine/ops/arith.cpp, the gradient accumulation of engine/autograd.cpp, the
// linear layer's bias add, the dropout backward and concatenation's block copies. Each
// output element is one IEEE operation (or a copy), the same expression the CPU evaluates,
// so every result is bit for bit the CPU's (no reductions, no Level).
// Pointers are device pointers; launches are asynchronous on `stream`. Throws
// std::runtime_error on a CUDA error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/binary_op.h"

namespace detdl::cuda {

// y[i] = a[i] op b[i].
void binary_map(BinaryOp op, std::int64_t n, const float* a /*(n)*/, const float* b /*(n)*/,
                float* y /*(n)*/, cudaStream_t stream);
// y[i] = a[i] * s.
void scale(std::int64_t n, const float* a /*(n)*/, float s, float* y /*(n)*/, cudaStream_t stream);
// acc[i] = acc[i] + g[i] (the autograd accumulation rule).
void add_inplace(std::int64_t n, float* acc /*(n)*/, const float* g /*(n)*/, cudaStream_t stream);
// y[r][c] = y[r][c] + b[c] (the bias add after the linear layer's sgemm).
void add_row_bias(std::int64_t rows, std::int64_t cols, float* y /*(rows, cols)*/,
                  const float* b /*(cols)*/, cudaStream_t stream);
// y[i] = value.
void fill(std::int64_t n, float value, float* y /*(n)*/, cudaStream_t stream);
// dx = mask ? dy * scale : +0.0f with scale = 1.0f / (1.0f - p) (p == 0: dx = dy), as
// cpu::dropout_backward.
void dropout_backward(float p, std::int64_t n, const float* dy /*(n)*/,
                      const std::uint8_t* mask /*(n)*/, float* dx /*(n)*/, cudaStream_t stream);
// `rows` rows of `width` bytes from src (row pitch src_pitch) to dst (row pitch dst_pitch):
// concatenation's block copies, device to device.
void copy_rows(std::int64_t rows, std::size_t width, const void* src, std::size_t src_pitch,
               void* dst, std::size_t dst_pitch, cudaStream_t stream);

}  // namespace detdl::cuda
