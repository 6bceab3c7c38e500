// The convolution's data gradient fused into one implicit GEMM (conv_data_grad.cu), used by
// conv2d_backward_data (conv.h) when each tap's dot over o is a single chunk (O <= 4096).
#pragma once
#include <cuda_runtime.h>

#include "kernels/common/shapes.h"

namespace detdl::cuda::detail {

// dx (N, C, H, W) from dy (N, O, OH, OW) and w (O, C, KH, KW): per pixel, +0.0f plus, for
// the taps (kh, kw) in row-major order that reach it, the tap's dot over o (one fmaf chain
// in o order from +0.0f): the CPU's canonical order, bit for bit. Returns false, having
// done nothing, when O > 4096 or the grid cannot hold the problem.
bool conv2d_backward_data_fused(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                                cudaStream_t stream);

}  // namespace detdl::cuda::detail
