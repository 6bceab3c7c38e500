// CUDA pooling with the CPU's shapes and orders (kernels/cpu/pool.h). Nothing here reduces
// across planes, so every result is bit for bit the CPU's and there is no Level:
//   max / avg forward: one thread per output, the window in (kh, kw) row-major order with
//     the CPU's rules (first maximum wins, a first NaN wins; padding is skipped; count as
//     count_include_pad says; sum / count).
//   max / avg backward: one thread per input pixel gathers, in (oh, ow) row-major order,
//     the outputs whose window holds it (max: whose argmax is it) and adds their dy (avg:
//     dy / count) to +0.0f: the same adds in the same order as the CPU's scatter into a
//     zeroed dx (at `emulated`, the scatter family may draw another order of the outputs).
//   global average: y = canonical sum of the plane (chunk 256, reduce.h value_reduce) / HW
//     (at `emulated`, the reduce family's drawn shape: SumOrder); backward dx = dy / HW.
// Pointers are device pointers. Throws std::invalid_argument on a bad shape
// (check_pool2d_shape) and std::runtime_error on a CUDA error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/pool_scatter.h"
#include "kernels/common/reduce_shape.h"
#include "kernels/common/shapes.h"

namespace detdl::cuda {

void maxpool2d_forward(const Pool2dShape& s,
                       const float* x,        // (N, C, H, W)
                       float* y,              // (N, C, OH, OW)
                       std::int32_t* argmax,  // (N, C, OH, OW): ih*W + iw, or -1
                       cudaStream_t stream);

void maxpool2d_backward(const Pool2dShape& s,
                        const float* dy,             // (N, C, OH, OW)
                        const std::int32_t* argmax,  // (N, C, OH, OW)
                        float* dx,                   // (N, C, H, W)
                        cudaStream_t stream);

void avgpool2d_forward(const Pool2dShape& s, bool count_include_pad,
                       const float* x,  // (N, C, H, W)
                       float* y,        // (N, C, OH, OW)
                       cudaStream_t stream);

void avgpool2d_backward(const Pool2dShape& s, bool count_include_pad,
                        const float* dy,  // (N, C, OH, OW)
                        float* dx,        // (N, C, H, W)
                        cudaStream_t stream);

// The `emulated` level's scatter family (kernels/common/pool_scatter.h): where windows
// overlap and the draw says arrival, each input adds its outputs' contributions from +0.0f
// in the drawn order of the outputs (the CPU's scatter in that order), else as above.
void maxpool2d_backward(ScatterOrder order, const ImplDraw& d, const Pool2dShape& s,
                        const float* dy,             // (N, C, OH, OW)
                        const std::int32_t* argmax,  // (N, C, OH, OW)
                        float* dx,                   // (N, C, H, W)
                        cudaStream_t stream);
void avgpool2d_backward(ScatterOrder order, const ImplDraw& d, const Pool2dShape& s,
                        bool count_include_pad,
                        const float* dy,  // (N, C, OH, OW)
                        float* dx,        // (N, C, H, W)
                        cudaStream_t stream);

void global_avgpool_forward(std::int64_t N, std::int64_t C, std::int64_t HW,
                            const float* x,  // (N, C, HW)
                            float* y,        // (N, C)
                            cudaStream_t stream);
// The same with each plane's sum in order's order (the CPU's overload with a ReduceShape).
void global_avgpool_forward(const SumOrder& order, std::int64_t N, std::int64_t C, std::int64_t HW,
                            const float* x,  // (N, C, HW)
                            float* y,        // (N, C)
                            cudaStream_t stream);

void global_avgpool_backward(std::int64_t N, std::int64_t C, std::int64_t HW,
                             const float* dy,  // (N, C)
                             float* dx,        // (N, C, HW)
                             cudaStream_t stream);

}  // namespace detdl::cuda
