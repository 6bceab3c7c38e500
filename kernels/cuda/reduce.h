// CUDA canonical reductions; see kernels/common/reduction.h for the order.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace detdl::cuda {

// x: (n) device; partials: device scratch of ceil(n / kChunkValues) floats; out: device.
cudaError_t canonical_sum(const float* x, std::int64_t n, float* partials, float* out,
                          cudaStream_t stream);
// a, b: (n) device; partials: ceil(n / kChunkProducts) floats; out: device.
cudaError_t canonical_dot(const float* a, const float* b, std::int64_t n, float* partials,
                          float* out, cudaStream_t stream);

}  // namespace detdl::cuda
