// 2-D pooling on the CPU, NCHW. Windows are described like convolutions (conv.h): output
// size plus top/left padding; window positions outside the input are padding.
//
// Orders (the determinism contract, docs/determinism.md). Nothing here reduces across
// planes, so every level gives the same bits on any thread count; `Level` is not taken.
// Write ih = oh*stride_h - pad_top + kh, iw = ow*stride_w - pad_left + kw.
//
//   maxpool2d_forward:  y = max over the window, padding counts as -inf; the first maximum
//             in (kh, kw) row-major order wins ties; a NaN in the window wins over numbers
//             (the first NaN), so divergence is not hidden. argmax = ih*W + iw of the winner,
//             -1 (and y = -inf) when the window is all padding.
//   maxpool2d_backward: dx zeroed, then dx[argmax] = dx[argmax] + dy for outputs in
//             (oh, ow) row-major order (argmax -1 is skipped).
//   avgpool2d_forward:  y = (+0.0f + x(kh0,kw0) + x(kh1,kw1) + ...) / count, plain adds over the
//             window's positions inside the input in (kh, kw) row-major order (padding adds
//             nothing; the window is small, so no chunking). count = KH*KW when
//             count_include_pad, else the number of window positions inside the input;
//             a window with count 0 gives y = 0.
//   avgpool2d_backward: dx zeroed, then for outputs in (oh, ow) row-major order,
//             g = dy / count and dx[ih][iw] = dx[ih][iw] + g for each window position inside
//             the input.
//   global_avgpool_forward:  y[n][c] = canonical_sum over the HW values of the plane
//             (chunk 256) / HW.
//   global_avgpool_backward: dx[n][c][i] = dy[n][c] / HW.
#pragma once
#include <cstdint>

#include "kernels/common/impl_choice.h"
#include "kernels/common/pool_scatter.h"
#include "kernels/common/shapes.h"
#include "kernels/cpu/emulated_reduce.h"

namespace detdl::cpu {

// The shapes (Conv2dShape, Pool2dShape and their constructors) are in
// kernels/common/shapes.h, shared with the CUDA kernels.

void maxpool2d_forward(const Pool2dShape& s,
                       const float* x,         // (N, C, H, W)
                       float* y,               // (N, C, OH, OW)
                       std::int32_t* argmax);  // (N, C, OH, OW): ih*W + iw, or -1

void maxpool2d_backward(const Pool2dShape& s,
                        const float* dy,             // (N, C, OH, OW)
                        const std::int32_t* argmax,  // (N, C, OH, OW)
                        float* dx);                  // (N, C, H, W)

// The max pool of relu(x), without writing relu(x) (a relu layer followed by a max pool, as
// in LeNet). Forward: maxpool2d_forward with every candidate v taken as relu(v) = v > 0 ? v
// : +0.0f (padding stays -inf): y and argmax bit for bit maxpool2d_forward's on
// activation_forward(relu, x). Backward: maxpool2d_backward's dx, then dx = x > 0 ? dx :
// +0.0f: bit for bit relu's backward (activation.h) on it. (2x2 / stride 2 windows take that
// mask from y instead, y > 0 exactly where x > 0 at the argmax, without reading x; other
// windows mask each plane by x while it is in cache.)
void relu_maxpool2d_forward(const Pool2dShape& s,
                            const float* x,         // (N, C, H, W), before the relu
                            float* y,               // (N, C, OH, OW)
                            std::int32_t* argmax);  // (N, C, OH, OW)

// relu_maxpool2d_forward of sample n alone (its C planes, on the calling thread): the same
// bits, for a caller that has just computed that sample's x (conv2d_relu_max_pool2d).
void relu_maxpool2d_forward_sample(const Pool2dShape& s, std::int64_t n,
                                   const float* x,         // (N, C, H, W)
                                   float* y,               // (N, C, OH, OW)
                                   std::int32_t* argmax);  // (N, C, OH, OW)

void relu_maxpool2d_backward(const Pool2dShape& s,
                             const float* x,              // (N, C, H, W), before the relu
                             const float* y,              // (N, C, OH, OW): the forward's
                             const float* dy,             // (N, C, OH, OW)
                             const std::int32_t* argmax,  // (N, C, OH, OW)
                             float* dx);                  // (N, C, H, W)

void avgpool2d_forward(const Pool2dShape& s, bool count_include_pad,
                       const float* x,  // (N, C, H, W)
                       float* y);       // (N, C, OH, OW)

void avgpool2d_backward(const Pool2dShape& s, bool count_include_pad,
                        const float* dy,  // (N, C, OH, OW)
                        float* dx);       // (N, C, H, W)

void global_avgpool_forward(std::int64_t N, std::int64_t C, std::int64_t HW,
                            const float* x,  // (N, C, HW)
                            float* y);       // (N, C)

void global_avgpool_backward(std::int64_t N, std::int64_t C, std::int64_t HW,
                             const float* dy,  // (N, C)
                             float* dx);       // (N, C, HW)

// ---- The `emulated` level (kernels/common/impl_choice.h) ----
// ImplFamily::scatter, pooling backward: where windows overlap (stride < kernel in a
// dimension), an input position receives several contributions, and their order matters.
//   canonical: outputs in (oh, ow) row-major order (as above).
//   arrival:   outputs in a per-step drawn order (one Fisher-Yates permutation of the OH*OW
//              outputs, impl_permutation decision 0, shared by every plane): the order in
//              which a CUDA kernel's atomicAdd-s land (PyTorch's max_pool2d backward, a
//              scatter-form avg_pool2d backward). Each dx element still adds its own
//              contributions from +0.0f, only in another order.
// Without overlap every dx element gets at most one contribution, so both orders give the
// same bits and the canonical loop runs. The project's nets never overlap: LeNet's 2x2 /
// stride 2 max pools and ResNet / WRN's 8x8 / stride 8 average pool; this occurs only in
// overlapping pools (e.g. 3x3 / stride 2).
// ImplFamily::reduce, global_avgpool_forward: each plane's sum in the drawn shape
// (emulated_reduce.h; block_atomic's order shared by every plane), then / HW.
// The choice, its draw and the order live in kernels/common/pool_scatter.h (the CUDA kernels
// run the same ones); named here too, as the CPU's callers know them.
using detdl::pool_arrival_order;
using detdl::pool_windows_overlap;
using detdl::scatter_order;
using detdl::ScatterOrder;

void maxpool2d_backward(ScatterOrder order, const ImplDraw& d, const Pool2dShape& s,
                        const float* dy,             // (N, C, OH, OW)
                        const std::int32_t* argmax,  // (N, C, OH, OW)
                        float* dx);                  // (N, C, H, W)

void avgpool2d_backward(ScatterOrder order, const ImplDraw& d, const Pool2dShape& s,
                        bool count_include_pad,
                        const float* dy,  // (N, C, OH, OW)
                        float* dx);       // (N, C, H, W)

void global_avgpool_forward(ReduceShape shape, const ImplDraw& d, std::int64_t N, std::int64_t C,
                            std::int64_t HW,
                            const float* x,  // (N, C, HW)
                            float* y);       // (N, C)

}  // namespace detdl::cpu
