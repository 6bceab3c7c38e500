// cuDNN convolution, pooling and batch normalisation with the shapes of the own kernels
// (kernels/cpu/conv.h, pool.h, kernels/cuda/batchnorm.h), for comparison only: cuDNN's
// reduction orders are its own (undocumented, per GPU and version), so nothing here is ever
// `portable`. NCHW float, cross-correlation (the engine's convolution). Math mode: below
// `fast` CUDNN_FMA_MATH (plain FP32), because cuDNN's CUDNN_DEFAULT_MATH already permits
// TF32 tensor cores for FP32 on Ampere and later; at `fast` whatever the heuristic chose.
//
// Algorithm choice: `portable` and `repeatable` use algorithms cuDNN documents as
// deterministic (forward IMPLICIT_GEMM / IMPLICIT_PRECOMP_GEMM, backward data ALGO_1,
// backward filter ALGO_1); `fast` takes cuDNN's fastest by cudnnGet*_v7 heuristics,
// nondeterministic ones (atomics) allowed, and TF32 tensor ops allowed. Pooling and batch
// normalisation are deterministic in cuDNN at every level.
//
// cuDNN has only symmetric padding: cudnn_conv2d_supported / cudnn_pool2d_supported say
// whether a shape (e.g. Keras 'same' with an odd total padding, pad_bottom = pad_top + 1)
// gives cuDNN's output size; callers fall back to the own kernels when not.
//
// Built without cuDNN (DETDL_HAVE_CUDNN undefined) every function throws
// std::runtime_error("... built without cuDNN"), and cudnn_available() is false.
// Handles: one per (device, thread), created on first use. Workspaces come from
// device_allocator(). Every cuDNN call is checked (DETDL_CUDNN_CHECK: file:line and
// cudnnGetErrorString).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/level.h"
#include "kernels/common/shapes.h"

namespace detdl::cuda {

bool cudnn_available();  // built with cuDNN (does not check for a device)

// True when cuDNN's symmetric padding gives exactly s.OH x s.OW.
bool cudnn_conv2d_supported(const Conv2dShape& s);
bool cudnn_pool2d_supported(const Pool2dShape& s);

void cudnn_conv2d_forward(Level level, const Conv2dShape& s,
                          const float* x,     // (N, C, H, W)
                          const float* w,     // (O, C, KH, KW)
                          const float* bias,  // (O) or nullptr
                          float* y,           // (N, O, OH, OW)
                          cudaStream_t stream);
void cudnn_conv2d_backward_data(Level level, const Conv2dShape& s,
                                const float* dy,  // (N, O, OH, OW)
                                const float* w,   // (O, C, KH, KW)
                                float* dx,        // (N, C, H, W), overwritten
                                cudaStream_t stream);
void cudnn_conv2d_backward_weight(Level level, const Conv2dShape& s,
                                  const float* x,   // (N, C, H, W)
                                  const float* dy,  // (N, O, OH, OW)
                                  float* dw,        // (O, C, KH, KW), overwritten
                                  cudaStream_t stream);
void cudnn_conv2d_backward_bias(const Conv2dShape& s,
                                const float* dy,  // (N, O, OH, OW)
                                float* db,        // (O), overwritten
                                cudaStream_t stream);

// Max pooling (padding never wins) and average pooling (count_include_pad as the own
// kernels). cuDNN's backward needs x and y instead of an argmax.
void cudnn_pool2d_forward(bool max, bool count_include_pad, const Pool2dShape& s,
                          const float* x,  // (N, C, H, W)
                          float* y,        // (N, C, OH, OW)
                          cudaStream_t stream);
void cudnn_pool2d_backward(bool max, bool count_include_pad, const Pool2dShape& s,
                           const float* x,   // (N, C, H, W)
                           const float* y,   // (N, C, OH, OW)
                           const float* dy,  // (N, C, OH, OW)
                           float* dx,        // (N, C, H, W), overwritten
                           cudaStream_t stream);

// Spatial batch normalisation. eps must be > 0 and >= CUDNN_BN_MIN_EPSILON (0 in cuDNN 9).
// momentum is PyTorch's (running = (1 - momentum) * running + momentum * batch), which is
// cuDNN's exponentialAverageFactor. cuDNN's running variance is always the UNBIASED batch
// variance (count / (count - 1)); for the engine's biased convention pass nullptr running
// buffers and update them with the own batchnorm_update_running. save_inv_std is
// 1 / sqrt(biased var + eps), as the own kernel's.
void cudnn_batchnorm_forward_train(std::int64_t N, std::int64_t C, std::int64_t HW,
                                   const float* x,      // (N, C, HW)
                                   const float* gamma,  // (C)
                                   const float* beta,   // (C)
                                   float eps, float momentum,
                                   float* y,             // (N, C, HW)
                                   float* running_mean,  // (C) or nullptr
                                   float* running_var,   // (C) or nullptr (unbiased)
                                   float* save_mean,     // (C)
                                   float* save_inv_std,  // (C)
                                   cudaStream_t stream);
void cudnn_batchnorm_forward_eval(std::int64_t N, std::int64_t C, std::int64_t HW,
                                  const float* x,             // (N, C, HW)
                                  const float* gamma,         // (C)
                                  const float* beta,          // (C)
                                  const float* running_mean,  // (C)
                                  const float* running_var,   // (C)
                                  float eps,
                                  float* y,  // (N, C, HW)
                                  cudaStream_t stream);
void cudnn_batchnorm_backward(std::int64_t N, std::int64_t C, std::int64_t HW,
                              const float* x,             // (N, C, HW)
                              const float* dy,            // (N, C, HW)
                              const float* gamma,         // (C)
                              const float* save_mean,     // (C)
                              const float* save_inv_std,  // (C)
                              float eps,
                              float* dx,      // (N, C, HW), overwritten
                              float* dgamma,  // (C), overwritten
                              float* dbeta,   // (C), overwritten
                              cudaStream_t stream);

}  // namespace detdl::cuda
