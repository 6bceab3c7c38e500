// CUDA batch normalisation with the CPU's formulas and orders (kernels/cpu/batchnorm.h).
// x is (N, C, HW); per-channel statistics over count = N*HW values at k = n*HW + hw.
// `portable` = `repeatable`: each per-channel sum is the canonical sum of values (thread
// (c, chunk) adds its chunk of 256 values in k order from +0.0f, a second kernel folds the
// chunk partials of each channel with ChunkTree; reduce.h value_reduce), so the statistics,
// y, dx, dgamma and dbeta are bit for bit the CPU's. The per-channel scalars (mean, var,
// inv_std, k) and the element-wise formulas are the CPU's expressions, evaluated on the
// device with IEEE division and sqrtf.
// `fast` (OpFamily::norm_stats): the chunk partials are atomicAdd-ed per channel in arrival
// order, so the statistics may change in the last bits from run to run.
// Pointers are device pointers; throws std::runtime_error on a CUDA error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/batchnorm_fma.h"
#include "kernels/common/level.h"
#include "kernels/common/reduce_shape.h"

namespace detdl::cuda {

void batchnorm_forward_train(Level level, std::int64_t N, std::int64_t C, std::int64_t HW,
                             const float* x,      // (N, C, HW)
                             const float* gamma,  // (C)
                             const float* beta,   // (C)
                             float eps,
                             float* y,             // (N, C, HW)
                             float* save_mean,     // (C)
                             float* save_inv_std,  // (C)
                             float* batch_var,     // (C) or nullptr
                             cudaStream_t stream);

// As cpu::batchnorm_update_running_keras (kernels/common/batchnorm_keras.h). The step count
// lives on the device: a one-thread kernel bumps steps[0], then one thread per channel
// reads it (same stream, so in that order) and updates the channel.
void batchnorm_update_running_keras(std::int64_t C, std::int64_t count, float momentum, float eps,
                                    const float* batch_mean,  // (C)
                                    const float* batch_var,   // (C) biased
                                    float* biased_mean,       // (C) updated in place
                                    float* biased_var,        // (C) updated in place
                                    float* steps,             // (1) updated in place
                                    float* running_mean,      // (C) updated in place
                                    float* running_var,       // (C) updated in place
                                    cudaStream_t stream);

// As cpu::batchnorm_update_running: (1 - momentum) and the unbiased factor are computed
// once on the host in float, as the CPU does.
void batchnorm_update_running(std::int64_t C, std::int64_t count, float momentum,
                              const float* batch_mean,  // (C)
                              const float* batch_var,   // (C) biased
                              float* running_mean,      // (C) updated in place
                              float* running_var,       // (C) updated in place
                              bool unbiased, cudaStream_t stream);

void batchnorm_forward_eval(std::int64_t N, std::int64_t C, std::int64_t HW,
                            const float* x,             // (N, C, HW)
                            const float* gamma,         // (C)
                            const float* beta,          // (C)
                            const float* running_mean,  // (C)
                            const float* running_var,   // (C)
                            float eps,
                            float* y,  // (N, C, HW)
                            cudaStream_t stream);

void batchnorm_backward(Level level, std::int64_t N, std::int64_t C, std::int64_t HW,
                        const float* x,             // (N, C, HW)
                        const float* dy,            // (N, C, HW)
                        const float* gamma,         // (C)
                        const float* save_mean,     // (C)
                        const float* save_inv_std,  // (C)
                        float* dx,                  // (N, C, HW)
                        float* dgamma,              // (C) or nullptr
                        float* dbeta,               // (C) or nullptr
                        cudaStream_t stream);

// The `emulated` level (the CPU's BatchnormImpl, bit for bit its emulated kernels): the
// contraction choices (kernels/common/batchnorm_fma.h) and the channel sums' order (a level,
// or the reduce family's drawn shape: sum 0 and 1 of the call as the CPU numbers them, S1
// then S2 forward, dbeta then dgamma backward). The functions above are these with their
// level and BatchnormFma{}.
void batchnorm_forward_train(const SumOrder& order, std::int64_t N, std::int64_t C, std::int64_t HW,
                             const float* x /*(N, C, HW)*/, const float* gamma /*(C)*/,
                             const float* beta /*(C)*/, float eps, float* y /*(N, C, HW)*/,
                             float* save_mean /*(C)*/, float* save_inv_std /*(C)*/,
                             float* batch_var /*(C) or nullptr*/, const BatchnormFma& fma,
                             cudaStream_t stream);
void batchnorm_forward_eval(std::int64_t N, std::int64_t C, std::int64_t HW,
                            const float* x /*(N, C, HW)*/, const float* gamma /*(C)*/,
                            const float* beta /*(C)*/, const float* running_mean /*(C)*/,
                            const float* running_var /*(C)*/, float eps, float* y /*(N, C, HW)*/,
                            const BatchnormFma& fma, cudaStream_t stream);
void batchnorm_backward(const SumOrder& order, std::int64_t N, std::int64_t C, std::int64_t HW,
                        const float* x /*(N, C, HW)*/, const float* dy /*(N, C, HW)*/,
                        const float* gamma /*(C)*/, const float* save_mean /*(C)*/,
                        const float* save_inv_std /*(C)*/, float* dx /*(N, C, HW)*/,
                        float* dgamma /*(C) or nullptr*/, float* dbeta /*(C) or nullptr*/,
                        const BatchnormFma& fma, cudaStream_t stream);

}  // namespace detdl::cuda
