// CUDA 2-D convolution with the CPU's shapes, layouts and orders (kernels/cpu/conv.h:
// NCHW activations, (O, C, KH, KW) weights, output size + top/left padding, Keras 'same'
// through conv2d_shape_same). Implicit GEMM on the tile kernel of gemm_tiles.h: the im2col
// matrix (taps x positions) and dY as an (O, positions) matrix are read from x and dy as the
// tiles need them, never written out; every sum of products is one canonical reduction:
//   forward:          y (O, N*OH*OW) = W (O, C*KH*KW) * cols, canonical dot over (c, kh, kw),
//                     + bias[o] after the root, stored straight into NCHW; more than 4096
//                     taps: chunk partials per panel of positions (scratch budget), folded.
//   backward_data:    per dx pixel, +0.0f + t(kh0, kw0) + t(kh1, kw1) + ... over the taps
//                     that reach it, in (kh, kw) row-major order, t the tap's canonical dot
//                     over o (the CPU's col2im adds into a zeroed dx in the same order). One
//                     fused implicit GEMM (conv_data_grad.h) when O <= 4096; beyond, per
//                     tile of samples dcols (C*KH*KW, P) = W^T * dY with the chunk tree over
//                     o, then a gather of the taps.
//   backward_weight:  dw (O, C*KH*KW) = dY (O, N*OH*OW) * cols^T: one reduction over the
//                     flattened (n, oh, ow), one chunk per blockIdx.z, the partials folded
//                     with ChunkTree; when they do not fit the scratch budget, aligned groups
//                     of 2^g chunks (subtrees) are folded to their roots, then the roots in
//                     group order: the canonical root, as the CPU's tiling gives it.
//   backward_bias:    canonical sum of values over (n, oh, ow) per o (reduce.h value_reduce),
//                     or at `emulated` the reduce family's drawn shape (SumOrder).
// Levels: `portable` = `repeatable` = the orders above, bit for bit the CPU's. `fast`: one
// chain over K per output, the weight gradient split into pieces of positions added by
// atomics when its tiles are too few for the GPU, and the bias gradient's chunk partials
// combined by atomics, so the weight and bias gradients may vary run to run.
// Outputs are overwritten. Pointers are device pointers. Throws std::invalid_argument on a
// bad shape (check_conv2d_shape) and std::runtime_error on a CUDA error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/conv_plan.h"
#include "kernels/common/level.h"
#include "kernels/common/reduce_shape.h"
#include "kernels/common/shapes.h"

namespace detdl::cuda {

void conv2d_forward(Level level, const Conv2dShape& s,
                    const float* x,     // (N, C, H, W)
                    const float* w,     // (O, C, KH, KW)
                    const float* bias,  // (O) or nullptr
                    float* y,           // (N, O, OH, OW)
                    cudaStream_t stream);

void conv2d_backward_data(Level level, const Conv2dShape& s,
                          const float* dy,  // (N, O, OH, OW)
                          const float* w,   // (O, C, KH, KW)
                          float* dx,        // (N, C, H, W)
                          cudaStream_t stream);

void conv2d_backward_weight(Level level, const Conv2dShape& s,
                            const float* x,   // (N, C, H, W)
                            const float* dy,  // (N, O, OH, OW)
                            float* dw,        // (O, C, KH, KW)
                            cudaStream_t stream);

void conv2d_backward_bias(const SumOrder& order, const Conv2dShape& s,
                          const float* dy,  // (N, O, OH, OW)
                          float* db,        // (O)
                          cudaStream_t stream);

// The `emulated` level's conv and scatter families (kernels/common/conv_plan.h), bit for bit
// the CPU's emulated_conv.h on the same tiles:
//   forward: im2col_chw is the `portable` kernel; im2col_hwc one fmaf chain over
//     (kh, kw, c), the operands read through a (kh, kw, c) -> (c, kh, kw) index map;
//     per_tap each tap's chain over c (the map's slice [t C, (t+1) C)) into scratch, the
//     taps added in (kh, kw) order from +0.0f, then + bias.
//   backward_data: dcols (taps, positions) = W^T dY with the reduction over o cut into
//     the plan's slices (one tile launch each) and combined (null plan: the canonical
//     chunks and tree), then each dx pixel gathers its taps in tap_order (host (KH*KW);
//     null: (kh, kw) row-major) from +0.0f.
//   backward_weight: group g of samples is one chain over its positions (one tile launch
//     each); the groups combined in arrival order or by the tree (one group: into dw).
void conv2d_forward(ConvAlgo algo, const Conv2dShape& s,
                    const float* x,     // (N, C, H, W)
                    const float* w,     // (O, C, KH, KW)
                    const float* bias,  // (O) or nullptr
                    float* y,           // (N, O, OH, OW)
                    cudaStream_t stream);
void conv2d_backward_data(const EmulatedGemmPlan* plan, const std::int32_t* tap_order,
                          const Conv2dShape& s,
                          const float* dy,  // (N, O, OH, OW)
                          const float* w,   // (O, C, KH, KW)
                          float* dx,        // (N, C, H, W)
                          cudaStream_t stream);
void conv2d_backward_weight(const WeightGradPlan& plan, const Conv2dShape& s,
                            const float* x,   // (N, C, H, W)
                            const float* dy,  // (N, O, OH, OW)
                            float* dw,        // (O, C, KH, KW)
                            cudaStream_t stream);

// Upper bound, in floats, on the scratch of one call (a single sample's tile, or one chunk
// of 4096 positions of the weight gradient, may exceed it). Results never depend on it;
// tests lower it to force tiling. Default 64 Mi floats (256 MiB). Throws for floats < 1.
void set_conv_scratch_budget(std::int64_t floats);
std::int64_t conv_scratch_budget();

}  // namespace detdl::cuda
