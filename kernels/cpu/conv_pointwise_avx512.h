// The pointwise convolutions' register tiles for AVX-512F (conv_pointwise.h): 16-lane vectors,
// up to 8 rows x 3 vectors of flat positions (24 accumulators of 32 registers), where the
// AVX2 tiles run 6 x 2 of 8 lanes. The same chains in the same order, so the same bits. Compiled
// alone with -mavx512f (CMakeLists.txt); call only where the CPU has AVX-512F.
#pragma once
#include <cstdint>

#include "kernels/common/shapes.h"

namespace detdl::cpu::conv_pointwise {

inline constexpr int kRows512 = 8;  // rows per block of the AVX-512 tiles

// out[r * ldo + p] for r < mr (1..8), p < P: one fmaf chain from +0.0f over k < K of
// a[k * kRows512 + r] * b[k * ldb + p], then + bias[r] where bias is not null, else
// +0.0f + the chain when plus_zero (col2im's add into a zeroed dx), else the chain.
// Loads and stores past P are masked: nothing past b's and out's rows is touched.
void block_avx512(std::int64_t mr,
                  const float* a,  // (K, kRows512)
                  std::int64_t K,
                  const float* b,  // (K, ldb)
                  std::int64_t ldb, std::int64_t P,
                  const float* bias,  // (mr) or nullptr
                  bool plus_zero,
                  float* out,  // (mr, ldo)
                  std::int64_t ldo);

// The forward (block_avx512 with bias or none) of all O channels at horizontal stride 2, OW a
// multiple of 16, x read in place: b[k][p] = x[k * plane + (p / OW) * row_step + 2 * (p % OW)],
// the input's even columns (nothing at or past a row's W read). a holds the O channels'
// weights in blocks of kRows512: a[blk][k][r], zero past O.
void block_s2_avx512(std::int64_t O,
                     const float* a,  // (ceil(O / kRows512), K, kRows512)
                     std::int64_t K,
                     const float* x,  // (K, H, W): plane = H * W, row_step = stride_h * W
                     std::int64_t plane, std::int64_t W, std::int64_t row_step, std::int64_t OH,
                     std::int64_t OW,
                     const float* bias,  // (O) or nullptr
                     float* out,         // (O, ldo)
                     std::int64_t ldo);

// The data gradient (block_avx512 with plus_zero) of all C channels at horizontal stride 2,
// spread in place (conv_pointwise::backward_data_in_place: OW a multiple of 16, or OW 8 with
// W <= 16 and OH even, two output rows per vector; 2 * OW >= W): dx[c][oh * stride_h][2 * ow]
// = +0.0f + the chain of output position (oh, ow), +0.0f at the odd columns of those rows and
// on the stride_h - 1 rows below each (nothing at or past a row's W or the plane's H
// written). Rows past (OH - 1) * stride_h + stride_h - 1 are not touched.
void data_s2_avx512(std::int64_t C,
                    const float* a,  // (ceil(C / kRows512), K, kRows512): K = O
                    std::int64_t K,
                    const float* dy,  // (K, P): P = OH * OW
                    std::int64_t P,
                    float* dx,  // (C, H, W)
                    std::int64_t H, std::int64_t W, std::int64_t stride_h, std::int64_t OH,
                    std::int64_t OW);

// The weight gradient's partial (where conv_pointwise::weight_by_input_lanes) over the flat
// (n, oh, ow) positions [p0, p1) (multiples of 16): part[c * ldp + o] = one fmaf chain from
// +0.0f over them in order of dy[n][o][oh][ow] * x[n][c][oh * stride_h][ow * stride_w], for
// c < C, o < O (conv_direct.h's chunk partial, with lanes over input channels, one or two
// vectors of them: x is transposed, 16 positions at a time, where the channel-lane tiles
// transpose dy, twice as large at the projections' 16 -> 32 and 32 -> 64 channels).
void weight_chunk_avx512(const Conv2dShape& s,
                         const float* x,   // (N, C, H, W)
                         const float* dy,  // (N, O, OH, OW)
                         std::int64_t p0, std::int64_t p1,
                         float* part,  // (C, ldp)
                         std::int64_t ldp);

// dst[j] = src[2 * j] for j < n (a stride-2 row's output columns), reading nothing at or past
// src[avail] (avail > 2 * (n - 1)).
void gather_even_avx512(const float* src,  // (avail)
                        std::int64_t avail, std::int64_t n,
                        float* dst);  // (n)

}  // namespace detdl::cpu::conv_pointwise
