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
// The wrappers are listed once, with their shapes, in kernels/cuda/vendor_cudnn.def.
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

#define DETDL_CUDNN_ENTRY(name, params) void name params;
#include "kernels/cuda/vendor_cudnn.def"
#undef DETDL_CUDNN_ENTRY

}  // namespace detdl::cuda
