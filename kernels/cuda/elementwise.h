// CUDA element-wise kernels over the shared host/device formulas of kernels/common/
// (activations, optimizer updates, dropout draws): the same functions the CPU kernels
// call, compiled with --fmad=false, so each element is bit-identical to the CPU's.
// All pointers are device pointers; launches are asynchronous on `stream`.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/activation.h"

namespace detdl::cuda {

cudaError_t activation_forward(Activation a, float alpha, const float* x /*(n)*/, float* y /*(n)*/,
                               std::int64_t n, cudaStream_t stream);
cudaError_t activation_backward(Activation a, float alpha, const float* x /*(n)*/, const float* y /*(n)*/,
                                const float* dy /*(n)*/, float* dx /*(n)*/, std::int64_t n, cudaStream_t stream);

// torch.optim.SGD semantics; see kernels/common/optim_formulas.h.
cudaError_t sgd_update(std::int64_t n, float* p /*(n)*/, const float* g /*(n)*/, float* buf /*(n)*/, float lr,
                       float momentum, float wd, bool nesterov, bool first, cudaStream_t stream);
// torch.optim.Adam semantics; bc1, bc2 computed once on the host (cpu::adam_bias_corrections).
cudaError_t adam_update(std::int64_t n, float* p /*(n)*/, const float* g /*(n)*/, float* m /*(n)*/, float* v /*(n)*/,
                        float lr, float b1, float b2, float eps, float bc1, float bc2, float wd, bool decoupled,
                        cudaStream_t stream);

// Inverted dropout with the CPU's keying (kernels/cpu/dropout.h).
cudaError_t dropout_forward(std::uint64_t seed, std::uint32_t sub, std::uint64_t index_base, float p,
                            std::int64_t n, const float* x /*(n)*/, float* y /*(n)*/, std::uint8_t* mask /*(n)*/,
                            cudaStream_t stream);

}  // namespace detdl::cuda
