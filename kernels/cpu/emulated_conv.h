// 2-D convolution at the `emulated` level (ImplFamily::conv and, for col2im,
// ImplFamily::scatter; kernels/common/impl_choice.h): the same sums as conv.h, in the order
// of another real convolution implementation drawn from the impl seed. Layouts, padding and
// the meaning of every sum are conv.h's; write T = KH*KW taps and K = C*KH*KW.
//
// The catalogue (every alternative within the float64 bound gamma_n * sum |terms| of the
// canonical order, n the number of products; tests/kernels/test_emulated_conv.cpp):
//   forward, fixed per place (ConvAlgo):
//     im2col_chw: the canonical im2col-GEMM, reduction over (c, kh, kw) (conv.h; Caffe,
//       PyTorch's CPU im2col path).
//     im2col_hwc: one fmaf chain over (kh, kw, c) (NHWC implementations: TensorFlow's CPU
//       default, cuDNN's NHWC kernels): im2col rows and weight columns permuted alike.
//     per_tap: for each tap (kh, kw) a chain over c, the taps' partials added in (kh, kw)
//       order into a zeroed output (implicit GEMM per filter tap, cuDNN IMPLICIT_GEMM).
//     Winograd F(2x2, 3x3) (cuDNN WINOGRAD) is left out: it does not meet the bound. Its
//     transforms round sums of weights and inputs that the direct sum never forms, e.g. in
//     1-D F(2, 3) y0 = m0 + m1 + m2 with m1, m2 = +-d1 * fl((g0 +- g1 + g2) / 2): for
//     d0 = d2 = g2 = 0 and 0 < |g1| < ulp(g0) / 4 it returns 0 for y0 = d1 * g1, an
//     error equal to sum |terms| itself, not gamma_n times it.
//   data gradient: dcols = W^T dY, the reduction over o as a split-K GEMM (emulated_gemm.h:
//     split of o, arrival or tree combine) from the conv draw; then col2im adds the taps'
//     contributions into a zeroed dx in (kh, kw) row-major order (canonical) or, from the
//     scatter draw, in a per-step drawn permutation of the taps (GPU atomics landing in
//     arrival order; one permutation per call, shared by every pixel).
//   weight gradient: the batch is cut into g contiguous groups of samples (g in {1, 2, 4, 8},
//     capped at N); each group's partial is one fmaf chain over its (n, oh, ow); the
//     partials are combined in a per-step drawn arrival order (cuDNN's non-deterministic
//     backward-filter algorithms, atomics over batch slices) or as a pairwise tree (a
//     deterministic split-reduce). g = 1 is one chain over the whole batch.
//   bias gradient: emulated_plane_sums (emulated_reduce.h), drawn from ImplFamily::reduce.
//
// Where the direct convolutions apply (conv_direct.h), every order above runs on their
// register tiles (forward_ordered, backward_data_ordered, backward_weight_ranges) without
// im2col, col2im or packing; elsewhere on im2col + emulated_sgemm / chain_sgemm. Both paths
// give the same bits (tests/kernels/test_emulated_conv.cpp).
//
// All outputs are overwritten; every element is computed by one task in a fixed order, so
// the bits never depend on the thread count or the scratch budget.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/common/conv_plan.h"
#include "kernels/common/impl_choice.h"
#include "kernels/common/shapes.h"
#include "kernels/cpu/emulated_gemm.h"

namespace detdl::cpu {

// The plans and their draws live in kernels/common/conv_plan.h (the CUDA convolution runs
// the same ones); named here too, as the CPU's callers know them.
using detdl::conv_data_plan;
using detdl::conv_forward_algo;
using detdl::conv_weight_plan;
using detdl::ConvAlgo;
using detdl::kConvAlgoCount;
using detdl::kWeightGroupCount;
using detdl::kWeightGroups;
using detdl::scatter_tap_order;
using detdl::weight_grad_plan;
using detdl::WeightGradPlan;

void emulated_conv2d_forward(ConvAlgo algo, const Conv2dShape& s,
                             const float* x,     // (N, C, H, W)
                             const float* w,     // (O, C, KH, KW)
                             const float* bias,  // (O) or nullptr
                             float* y);          // (N, O, OH, OW)

// plan == nullptr: the canonical GEMM (conv.h); tap_order == nullptr: (kh, kw) row-major.
// Both null gives conv2d_backward_data's bits.
void emulated_conv2d_backward_data(const Conv2dShape& s, const EmulatedGemmPlan* plan,
                                   const std::int32_t* tap_order,  // (KH*KW) or nullptr
                                   const float* dy,                // (N, O, OH, OW)
                                   const float* w,                 // (O, C, KH, KW)
                                   float* dx);                     // (N, C, H, W)

void emulated_conv2d_backward_weight(const WeightGradPlan& plan, const Conv2dShape& s,
                                     const float* x,   // (N, C, H, W)
                                     const float* dy,  // (N, O, OH, OW)
                                     float* dw);       // (O, C, KH, KW)

}  // namespace detdl::cpu
