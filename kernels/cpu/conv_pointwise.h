// Pointwise convolutions: 1x1 kernels without padding (ResNet's projection shortcuts, at
// stride 2), forward and data gradient. Without a window, a sample's forward is the product
// of the weights (O, C) with its input at the output positions, (C, OH*OW) — the input
// itself at stride 1, its strided columns gathered once at stride 2 or more — and the data
// gradient is the product of the weights' transpose with dy, spread back onto the strided
// pixels. Register tiles of 6 channels x 2 vectors of 8 lanes (AVX2), or 8 channels x 3
// vectors of 16 where the CPU has AVX-512 (conv_pointwise_avx512.h), run over the flat
// positions, so rows shorter than a vector waste no lanes, and no padded copy or phase split
// is made. With AVX-512 at horizontal stride 2 on output rows of 16k positions, the forward
// reads x itself (a two-source permute takes the even columns of 32 floats) and the data
// gradient writes dx itself (the same permute interleaves each result vector with zeros; the
// rows between written as zeros by the same tiles): no gathered or spread copy. The data
// gradient does so on output rows of 8 too, two rows per vector.
//
// The bits are conv.h's canonical ones (only the canonical order; the `emulated` orders
// keep conv_direct's tiles):
//   forward: one fmaf chain from +0.0f over c per output, then + bias[o] (the canonical dot
//     when C <= kChunkProducts: one chunk).
//   data gradient: a pixel the one tap reaches gets +0.0f + t, t one fmaf chain from +0.0f
//     over o (O <= kChunkProducts); every other pixel +0.0f. (+0.0f + t turns -0.0f into
//     +0.0f, as col2im's add into a zeroed dx does.)
// Work is split by whole samples, so the thread count changes nothing.
#pragma once
#include "kernels/common/shapes.h"

namespace detdl::cpu::conv_pointwise {

// conv2d_forward can run here: KH = KW = 1, no padding, every output position's pixel inside
// the input, C <= kChunkProducts, and conv_direct::enabled() (the tests' switch to im2col).
bool forward_applies(const Conv2dShape& s);
void forward(const Conv2dShape& s,
             const float* x,     // (N, C, H, W)
             const float* w,     // (O, C, 1, 1)
             const float* bias,  // (O) or nullptr
             float* y);          // (N, O, OH, OW)

// forward reads x in place (AVX-512, stride_w 2, OW a multiple of 16: each vector of 16
// positions the even columns of 32 input floats, split in registers).
bool forward_in_place(const Conv2dShape& s);

// backward_data writes dx in place (AVX-512, stride_w 2, every column covered: 2 * OW >= W):
// on output rows of 16k (each vector's results interleaved with zeros into 32 floats of one
// dx row), or on rows of 8 with W <= 16 and OH even (two output rows per vector, each to one
// dx row); the rows between written as zeros by the same tiles.
bool backward_data_in_place(const Conv2dShape& s);

// conv_direct's weight gradient runs its chunk partials on conv_pointwise_avx512.h's
// weight_chunk_avx512: AVX-512, 1x1, unpadded, the input channels as the lanes (C <= 16, one
// vector; or C <= 32, two, where that is no more FMAs than lanes over output channels: O * 2
// <= C * ceil(O / 16)), every output position's pixel inside x, and horizontal stride 1 or 2
// on output rows of 16k, or stride 2 on rows of 8 (W <= 16, OH even: two rows per vector).
bool weight_by_input_lanes(const Conv2dShape& s);

// conv2d_backward_data can run here: as forward_applies, with O <= kChunkProducts.
bool backward_data_applies(const Conv2dShape& s);
void backward_data(const Conv2dShape& s,
                   const float* dy,  // (N, O, OH, OW)
                   const float* w,   // (O, C, 1, 1)
                   float* dx);       // (N, C, H, W)

}  // namespace detdl::cpu::conv_pointwise
