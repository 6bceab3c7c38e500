// CUDA element-wise kernels over the shared host/device formulas of kernels/common/
// (activations, dropout draws): the same functions the CPU kernels call, compiled with
// --fmad=false, so each element is bit-identical to the CPU's. (The optimizer updates are
// in optim.h.) All pointers are device pointers; launches are asynchronous on `stream`.
// Throws std::runtime_error on a CUDA error, as every kernel in kernels/cuda/.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/activation.h"

namespace detdl::cuda {

// impl: the `emulated` level's math and contraction choices (kernels/common/activation.h);
// ActImpl{} is the canonical formula.
void activation_forward(Activation a, float alpha, const float* x /*(n)*/, float* y /*(n)*/,
                        std::int64_t n, const ActImpl& impl, cudaStream_t stream);
void activation_backward(Activation a, float alpha, const float* x /*(n)*/, const float* y /*(n)*/,
                         const float* dy /*(n)*/, float* dx /*(n)*/, std::int64_t n,
                         const ActImpl& impl, cudaStream_t stream);

// Inverted dropout with the CPU's keying (kernels/cpu/dropout.h). p outside [0, 1) throws
// (as cudaErrorInvalidValue, the error it has always reported).
void dropout_forward(std::uint64_t seed, std::uint32_t sub, std::uint64_t index_base, float p,
                     std::int64_t n, const float* x /*(n)*/, float* y /*(n)*/,
                     std::uint8_t* mask /*(n)*/, cudaStream_t stream);

}  // namespace detdl::cuda
