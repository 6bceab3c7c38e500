// CUDA optimizer updates with the CPU's parameter structs (kernels/common/optim_params.h): every
// variant the CPU has (SGD and Adam in PyTorch's and Keras's forms, RMSprop in both), one
// thread per element calling the same DETDL_HD formula of kernels/common/optim_formulas.h,
// so every element is bit for bit the CPU's at every level (no reductions, no Level).
// Host scalars (Keras's lr_t) are computed on the host as the CPU does.
// Pointers are device pointers. Throws std::runtime_error on a CUDA error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/optim_formulas.h"
#include "kernels/common/optim_params.h"

namespace detdl::cuda {

void sgd_update(std::int64_t n,
                float* p,        // (n) parameters, updated
                const float* g,  // (n) gradients
                float* buf,      // (n) momentum buffer / Keras velocity
                const SgdParams& s, cudaStream_t stream);

void adam_update(std::int64_t n,
                 float* p,        // (n) parameters, updated
                 const float* g,  // (n) gradients
                 float* m,        // (n) first moment
                 float* v,        // (n) second moment
                 const AdamParams& a, cudaStream_t stream);

void rmsprop_update(std::int64_t n,
                    float* p,        // (n) parameters, updated
                    const float* g,  // (n) gradients
                    float* v,        // (n) square average
                    float* buf,      // (n) momentum buffer
                    const RmspropParams& r, cudaStream_t stream);

// The `emulated` level's variants, as kernels/cpu/optim.h's: `fuse` fuses the formula's
// contraction sites (kernels/common/optim_formulas.h), Adam takes `form` (a.keras ignored),
// sgd and rmsprop their params' keras flag. Bit for bit the CPU's variants.
void sgd_update(std::int64_t n, float* p /*(n)*/, const float* g /*(n)*/, float* buf /*(n)*/,
                const SgdParams& s, std::uint32_t fuse, cudaStream_t stream);
void adam_update(std::int64_t n, float* p /*(n)*/, const float* g /*(n)*/, float* m /*(n)*/,
                 float* v /*(n)*/, const AdamParams& a, AdamForm form, std::uint32_t fuse,
                 cudaStream_t stream);
void rmsprop_update(std::int64_t n, float* p /*(n)*/, const float* g /*(n)*/, float* v /*(n)*/,
                    float* buf /*(n)*/, const RmspropParams& r, std::uint32_t fuse,
                    cudaStream_t stream);

}  // namespace detdl::cuda
