// Where an op's kernels run: the one place that reads a tensor's device and --impl
// (RunContext::implementation) and picks the CPU kernel (kernels/cpu/), the own CUDA
// kernel (gpu:: entries of engine/cuda_door.def) or the vendor library's (the gpu::cublas_ /
// gpu::cudnn_ entries). An op calls route*() once per kernel call and switches on the answer;
// the door itself (engine/cuda/backend.cpp) only forwards and never chooses.
//
// --impl vendor: matmul goes to cuBLAS, convolution and batch norm to cuDNN. A convolution
// cuDNN cannot express (asymmetric Keras 'same' padding), batch norm with eps 0 or the Keras
// (biased) running variance, and pooling (the engine's max-pool backward takes an argmax,
// cuDNN's wants x and y) stay on the own kernels; docs/gpu.md.
#pragma once
#include <cstdint>
#include <stdexcept>

#include "engine/allocator.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"

namespace detdl::ops {

enum class Route : std::uint8_t { cpu, cuda, vendor };

// CPU or own CUDA kernel: ops with no vendor path.
inline Route route(Device dev) { return dev == Device::cuda ? Route::cuda : Route::cpu; }

namespace dispatch_detail {
inline bool vendor_requested(Device dev) {
  return dev == Device::cuda && context().implementation == Implementation::vendor;
}
// Throws when --impl vendor asks for cuDNN that this build lacks.
inline bool cudnn_requested(Device dev) {
  if (!vendor_requested(dev)) return false;
  if (!gpu::cudnn_available())
    throw std::runtime_error("--impl vendor: detdl was built without cuDNN");
  return true;
}
}  // namespace dispatch_detail

// Matrix products: cuBLAS takes every shape.
inline Route route_gemm(Device dev) {
  return dispatch_detail::vendor_requested(dev) ? Route::vendor : route(dev);
}

// Convolution: cuDNN when its symmetric padding gives the shape's output size.
inline Route route_conv2d(Device dev, const Conv2dShape& s) {
  return dispatch_detail::cudnn_requested(dev) && gpu::cudnn_conv2d_supported(s) ? Route::vendor
                                                                                 : route(dev);
}

// Batch norm: cuDNN needs eps > 0 (CUDNN_BN_MIN_EPSILON). Its training forward updates the
// running statistics itself with the unbiased variance, so the training forward passes
// `unbiased` and the Keras convention (false) stays on the own kernels; the eval forward and
// the backward have no convention to match (true).
inline Route route_batchnorm(Device dev, float eps, bool unbiased) {
  return dispatch_detail::cudnn_requested(dev) && eps > 0.0f && unbiased ? Route::vendor
                                                                         : route(dev);
}

}  // namespace detdl::ops
