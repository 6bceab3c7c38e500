// The pointwise convolutions' AVX-512 tiles (conv_pointwise_avx512.h). This file alone is
// compiled with -mavx512f and holds nothing but them (as conv_direct_avx512.cpp).
#include "kernels/cpu/conv_pointwise_avx512.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "kernels/cpu/avx512.h"

namespace detdl::cpu::conv_pointwise {
namespace {

using i64 = std::int64_t;

// The tiles' one step: acc[v][r] = fmaf(a[r], x[v], acc[v][r]) for every row and vector (a[r]
// broadcast once for its row's vectors).
template <int MR, int NV>
__attribute__((always_inline)) inline void step(const float* a, const __m512 (&x)[NV],
                                                __m512 (&acc)[NV][MR]) {
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const __m512 wv = _mm512_set1_ps(a[r]);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[v][r] = _mm512_fmadd_ps(wv, x[v], acc[v][r]);
  }
}

// Every accumulator +0.0f.
template <int MR, int NV>
__attribute__((always_inline)) inline void zero(__m512 (&acc)[NV][MR]) {
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[v][r] = _mm512_setzero_ps();
}

// How many of `left` vectors the next tile takes when tiles of at most 3 share them as evenly
// as they go (16: 3 3 3 3 2 2, where 3 x 5 + 1 left a lone vector whose tile is all
// broadcasts).
inline i64 next_group(i64 left) {
  const i64 groups = (left + 2) / 3;
  return (left + groups - 1) / groups;
}

// MR rows x NV vectors at b; lanes[v] of vector v are real (1..16), the rest masked. FULL:
// every mask is whole, and plain loads and stores run (the masks then stay out of the loop,
// where GCC had reloaded them from the stack every step).
template <int MR, int NV, bool FULL>
__attribute__((always_inline)) inline void tile(const float* __restrict a, i64 K,
                                                const float* __restrict b, i64 ldb,
                                                const __mmask16* m, const float* bias,
                                                bool plus_zero, float* out, i64 ldo) {
  __m512 acc[NV][MR];
  zero<MR, NV>(acc);
  for (i64 k = 0; k < K; ++k, a += kRows512, b += ldb) {
    __m512 x[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      x[v] = FULL ? _mm512_loadu_ps(b + 16 * v) : _mm512_maskz_loadu_ps(m[v], b + 16 * v);
    step<MR, NV>(a, x, acc);
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      __m512 val = acc[v][r];
      if (bias)
        val = _mm512_add_ps(val, _mm512_set1_ps(bias[r]));
      else if (plus_zero)
        val = _mm512_add_ps(_mm512_setzero_ps(), val);
      if (FULL)
        _mm512_storeu_ps(out + r * ldo + 16 * v, val);
      else
        _mm512_mask_storeu_ps(out + r * ldo + 16 * v, m[v], val);
    }
}

// Flat positions in groups of up to 3 vectors, as even as they go (next_group).
template <int MR>
void block(const float* a, i64 K, const float* b, i64 ldb, i64 P, const float* bias, bool plus_zero,
           float* out, i64 ldo) {
  for (i64 p = 0; p < P;) {
    const i64 left = P - p, nv = next_group((left + 15) / 16);
    __mmask16 m[3];
    for (i64 v = 0; v < 3; ++v) m[v] = avx512::first_lanes(left - 16 * v);
    const bool full = left >= 16 * nv;
    if (nv == 3)
      full ? tile<MR, 3, true>(a, K, b + p, ldb, m, bias, plus_zero, out + p, ldo)
           : tile<MR, 3, false>(a, K, b + p, ldb, m, bias, plus_zero, out + p, ldo);
    else if (nv == 2)
      full ? tile<MR, 2, true>(a, K, b + p, ldb, m, bias, plus_zero, out + p, ldo)
           : tile<MR, 2, false>(a, K, b + p, ldb, m, bias, plus_zero, out + p, ldo);
    else
      full ? tile<MR, 1, true>(a, K, b + p, ldb, m, bias, plus_zero, out + p, ldo)
           : tile<MR, 1, false>(a, K, b + p, ldb, m, bias, plus_zero, out + p, ldo);
    p += 16 * nv;
  }
}

// Stride 2 read in place: vector v's 16 positions are 16 consecutive output columns of one
// output row, whose inputs are the even floats of the 32 at in[v] (the second 16 masked to
// hi[v]); input channel k's are at in[v] + k * plane. The same chains as tile's.
template <int MR, int NV>
__attribute__((always_inline)) inline void tile_s2(const float* __restrict a, i64 K,
                                                   const float* const* in, i64 plane,
                                                   const __mmask16* hi, const float* bias,
                                                   float* out, i64 ldo) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  __m512 acc[NV][MR];
  zero<MR, NV>(acc);
  const float* p[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) p[v] = in[v];
  for (i64 k = 0; k < K; ++k, a += kRows512) {
    __m512 x[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      x[v] = _mm512_permutex2var_ps(_mm512_loadu_ps(p[v]), even,
                                    _mm512_maskz_loadu_ps(hi[v], p[v] + 16));
      p[v] += plane;
    }
    step<MR, NV>(a, x, acc);
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      _mm512_storeu_ps(out + r * ldo + 16 * v,
                       bias ? _mm512_add_ps(acc[v][r], _mm512_set1_ps(bias[r])) : acc[v][r]);
}

// The data gradient at stride 2: tile's chains over the flat dy positions at b (16 per
// vector: one output row's 16 columns, or two rows of 8), each result +0.0f + the chain,
// spread onto the even columns of the 16 floats at out[v] (lanes 0..7, masked to m1[v]) and
// of the 16 at out[v] + second (lanes 8..15, masked to m2[v]), +0.0f between; gaps1[v] and
// gaps2[v] rows below each of the two (gap floats apart) written +0.0f (the rows no output
// row maps to). Channel r's at out[v] + r * ldo.
template <int MR, int NV>
__attribute__((always_inline)) inline void tile_spread(const float* __restrict a, i64 K,
                                                       const float* __restrict b, i64 ldb,
                                                       float* const* out, i64 second,
                                                       const __mmask16* m1, const __mmask16* m2,
                                                       i64 ldo, i64 gap, const i64* gaps1,
                                                       const i64* gaps2) {
  __m512 acc[NV][MR];
  zero<MR, NV>(acc);
  for (i64 k = 0; k < K; ++k, a += kRows512, b += ldb) {
    __m512 x[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) x[v] = _mm512_loadu_ps(b + 16 * v);
    step<MR, NV>(a, x, acc);
  }
  // Lane j of the chain goes to column 2j: lanes 0..7 into the first 16 floats, 8..15 into
  // the second, a zero (index 16: the second source's lane 0) after each.
  const __m512i lo = _mm512_set_epi32(16, 7, 16, 6, 16, 5, 16, 4, 16, 3, 16, 2, 16, 1, 16, 0);
  const __m512i up = _mm512_set_epi32(16, 15, 16, 14, 16, 13, 16, 12, 16, 11, 16, 10, 16, 9, 16, 8);
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m512 t = _mm512_add_ps(zero, acc[v][r]);
      float* o = out[v] + r * ldo;
      _mm512_mask_storeu_ps(o, m1[v], _mm512_permutex2var_ps(t, lo, zero));
      _mm512_mask_storeu_ps(o + second, m2[v], _mm512_permutex2var_ps(t, up, zero));
      for (i64 g = 1; g <= gaps1[v]; ++g) _mm512_mask_storeu_ps(o + g * gap, m1[v], zero);
      for (i64 g = 1; g <= gaps2[v]; ++g) _mm512_mask_storeu_ps(o + second + g * gap, m2[v], zero);
    }
}

template <int NV>
void group_spread(i64 mr, const float* a, i64 K, const float* b, i64 ldb, float* const* out,
                  i64 second, const __mmask16* m1, const __mmask16* m2, i64 ldo, i64 gap,
                  const i64* gaps1, const i64* gaps2) {
  switch (mr) {
    case 1: return tile_spread<1, NV>(a, K, b, ldb, out, second, m1, m2, ldo, gap, gaps1, gaps2);
    case 2: return tile_spread<2, NV>(a, K, b, ldb, out, second, m1, m2, ldo, gap, gaps1, gaps2);
    case 3: return tile_spread<3, NV>(a, K, b, ldb, out, second, m1, m2, ldo, gap, gaps1, gaps2);
    case 4: return tile_spread<4, NV>(a, K, b, ldb, out, second, m1, m2, ldo, gap, gaps1, gaps2);
    case 5: return tile_spread<5, NV>(a, K, b, ldb, out, second, m1, m2, ldo, gap, gaps1, gaps2);
    case 6: return tile_spread<6, NV>(a, K, b, ldb, out, second, m1, m2, ldo, gap, gaps1, gaps2);
    case 7: return tile_spread<7, NV>(a, K, b, ldb, out, second, m1, m2, ldo, gap, gaps1, gaps2);
    default: return tile_spread<8, NV>(a, K, b, ldb, out, second, m1, m2, ldo, gap, gaps1, gaps2);
  }
}

// Runs tile_s2 over one group of nv vectors for a block of mr (1..8) channels.
template <int NV>
void group_s2(i64 mr, const float* a, i64 K, const float* const* in, i64 plane, const __mmask16* hi,
              const float* bias, float* out, i64 ldo) {
  switch (mr) {
    case 1: return tile_s2<1, NV>(a, K, in, plane, hi, bias, out, ldo);
    case 2: return tile_s2<2, NV>(a, K, in, plane, hi, bias, out, ldo);
    case 3: return tile_s2<3, NV>(a, K, in, plane, hi, bias, out, ldo);
    case 4: return tile_s2<4, NV>(a, K, in, plane, hi, bias, out, ldo);
    case 5: return tile_s2<5, NV>(a, K, in, plane, hi, bias, out, ldo);
    case 6: return tile_s2<6, NV>(a, K, in, plane, hi, bias, out, ldo);
    case 7: return tile_s2<7, NV>(a, K, in, plane, hi, bias, out, ldo);
    default: return tile_s2<8, NV>(a, K, in, plane, hi, bias, out, ldo);
  }
}

// Where vector u of a stride-2 in-place pass (flat output positions [16u, 16u + 16)) lies in
// a (H, W) plane of x or dx: the 16 floats at `at` (masked to m1) and the 16 at at + second
// (masked to m2), whose even columns are the vector's lanes 0..7 and 8..15; out1 and out2
// the output rows of the two halves. Output rows of 16k: 32 consecutive floats of one input
// row. Output rows of 8 (W 15 or 16): two output rows, one input row each.
struct S2Vector {
  i64 at, second;
  __mmask16 m1, m2;
  i64 out1, out2;
};
S2Vector s2_vector(i64 u, i64 W, i64 row_step, i64 OW) {
  if (OW % 16 == 0) {
    const i64 per_row = OW / 16, row = u / per_row, col = u % per_row * 16;
    return {row * row_step + 2 * col, 16, 0xFFFF, avx512::first_lanes(W - 2 * col - 16), row, row};
  }
  const __mmask16 m = avx512::first_lanes(W);  // OW == 8: rows 2u and 2u + 1
  return {2 * u * row_step, row_step, m, m, 2 * u, 2 * u + 1};
}

// The weight gradient's positions per step: xt (kWeightStep x 16 or 32) stays in L1 for every
// block of output channels.
constexpr i64 kWeightStep = 256;

// acc[o][cv] (lanes: input channels cv * 16 ..) += dy[o * ldd + j] * xt[j][cv] for j < len in
// order, for NO output channels and CV vectors of input channels: one fmaf chain per (o, c)
// in position order, as the canonical one. dy is read in place (FMAs with an embedded
// broadcast, one per vector: a broadcast register shared by two FMAs runs on an FP pipe
// beside them on Zen 4; a copy of the step's dy rows, for constant displacements, cost more
// than the address registers GCC then keeps on the stack).
template <int NO, int CV>
void weight_tile(const float* __restrict xt, i64 len, const float* __restrict dy, i64 ldd,
                 float* acc_io) {
  __m512 acc[NO][CV];
#pragma GCC unroll 24
  for (int o = 0; o < NO; ++o)
#pragma GCC unroll 2
    for (int cv = 0; cv < CV; ++cv) acc[o][cv] = _mm512_loadu_ps(acc_io + 16 * (o * CV + cv));
  for (i64 j = 0; j < len; ++j, xt += 16 * CV, ++dy) {
    __m512 xv[CV];
#pragma GCC unroll 2
    for (int cv = 0; cv < CV; ++cv) xv[cv] = _mm512_load_ps(xt + 16 * cv);
#pragma GCC unroll 24
    for (int o = 0; o < NO; ++o)
#pragma GCC unroll 2
      for (int cv = 0; cv < CV; ++cv)
        acc[o][cv] = CV == 1 ? _mm512_fmadd_ps(_mm512_set1_ps(dy[o * ldd]), xv[cv], acc[o][cv])
                             : avx512::fma_bcast(dy + o * ldd, xv[cv], acc[o][cv]);
  }
#pragma GCC unroll 24
  for (int o = 0; o < NO; ++o)
#pragma GCC unroll 2
    for (int cv = 0; cv < CV; ++cv) _mm512_storeu_ps(acc_io + 16 * (o * CV + cv), acc[o][cv]);
}

using WeightTile = void (*)(const float*, i64, const float*, i64, float*);
template <int CV, int... I>
constexpr auto weight_tiles(std::integer_sequence<int, I...>) {
  return std::array<WeightTile, sizeof...(I)>{weight_tile<I + 1, CV>...};
}
// NO * CV accumulators and CV input vectors: up to 25 or 26 of 32 registers.
constexpr i64 kWeightAcc = 24;
constexpr auto kWeightTiles1 = weight_tiles<1>(std::make_integer_sequence<int, kWeightAcc>{});
constexpr auto kWeightTiles2 = weight_tiles<2>(std::make_integer_sequence<int, kWeightAcc / 2>{});

}  // namespace

void block_avx512(i64 mr, const float* a, i64 K, const float* b, i64 ldb, i64 P, const float* bias,
                  bool plus_zero, float* out, i64 ldo) {
  switch (mr) {
    case 1: return block<1>(a, K, b, ldb, P, bias, plus_zero, out, ldo);
    case 2: return block<2>(a, K, b, ldb, P, bias, plus_zero, out, ldo);
    case 3: return block<3>(a, K, b, ldb, P, bias, plus_zero, out, ldo);
    case 4: return block<4>(a, K, b, ldb, P, bias, plus_zero, out, ldo);
    case 5: return block<5>(a, K, b, ldb, P, bias, plus_zero, out, ldo);
    case 6: return block<6>(a, K, b, ldb, P, bias, plus_zero, out, ldo);
    case 7: return block<7>(a, K, b, ldb, P, bias, plus_zero, out, ldo);
    default: return block<8>(a, K, b, ldb, P, bias, plus_zero, out, ldo);
  }
}

// Groups of up to 3 vectors (as even as they go), each run for every channel block before
// the next: a group's inputs (K rows of 32 floats per vector) are read from memory once and
// from L1 for the other blocks.
void block_s2_avx512(i64 O, const float* a, i64 K, const float* x, i64 plane, i64 W, i64 row_step,
                     i64 OH, i64 OW, const float* bias, float* out, i64 ldo) {
  const i64 per_row = OW / 16, vectors = OH * per_row;
  for (i64 g = 0; g < vectors;) {
    const i64 nv = next_group(vectors - g);
    const float* in[3];
    __mmask16 hi[3];
    for (i64 v = 0; v < nv; ++v) {
      const i64 row = (g + v) / per_row, col = (g + v) % per_row * 16;
      in[v] = x + row * row_step + 2 * col;
      hi[v] = avx512::first_lanes(W - 2 * col - 16);
    }
    for (i64 o0 = 0; o0 < O; o0 += kRows512) {
      const i64 mr = std::min<i64>(kRows512, O - o0);
      const float* ab = a + o0 * K;
      const float* bb = bias ? bias + o0 : nullptr;
      float* o = out + o0 * ldo + g * 16;
      if (nv == 3)
        group_s2<3>(mr, ab, K, in, plane, hi, bb, o, ldo);
      else if (nv == 2)
        group_s2<2>(mr, ab, K, in, plane, hi, bb, o, ldo);
      else
        group_s2<1>(mr, ab, K, in, plane, hi, bb, o, ldo);
    }
    g += nv;
  }
}

// As block_s2_avx512: groups of up to 3 vectors, every channel block per group.
void data_s2_avx512(i64 C, const float* a, i64 K, const float* dy, i64 P, float* dx, i64 H, i64 W,
                    i64 stride_h, i64 OH, i64 OW) {
  const i64 plane = H * W, row_step = stride_h * W;
  const i64 vectors = OH * OW / 16;
  for (i64 g = 0; g < vectors;) {
    const i64 nv = next_group(vectors - g);
    float* out[3];
    __mmask16 m1[3], m2[3];
    i64 gaps1[3], gaps2[3], second = 0;
    for (i64 v = 0; v < nv; ++v) {
      const S2Vector sv = s2_vector(g + v, W, row_step, OW);
      out[v] = dx + sv.at, second = sv.second, m1[v] = sv.m1, m2[v] = sv.m2;
      gaps1[v] = std::min(stride_h - 1, H - 1 - sv.out1 * stride_h);
      gaps2[v] = std::min(stride_h - 1, H - 1 - sv.out2 * stride_h);
    }
    for (i64 c0 = 0; c0 < C; c0 += kRows512) {
      const i64 mr = std::min<i64>(kRows512, C - c0);
      const float* ab = a + c0 * K;
      float* ob[3];
      for (i64 v = 0; v < nv; ++v) ob[v] = out[v] + c0 * plane;
      if (nv == 3)
        group_spread<3>(mr, ab, K, dy + g * 16, P, ob, second, m1, m2, plane, W, gaps1, gaps2);
      else if (nv == 2)
        group_spread<2>(mr, ab, K, dy + g * 16, P, ob, second, m1, m2, plane, W, gaps1, gaps2);
      else
        group_spread<1>(mr, ab, K, dy + g * 16, P, ob, second, m1, m2, plane, W, gaps1, gaps2);
    }
    g += nv;
  }
}

// Steps of up to kWeightStep positions inside one sample: the inputs at the step's positions
// transposed 16 x 16 into xt (position rows of 16 or 32 channel lanes, zero past C), then
// every block of output channels (as even as they go, up to 24 / CV) runs its chains on.
// 16 positions are 16 columns of one output row, or two rows of 8 (conv_pointwise.cpp's
// row_pairs_of_8: each the even columns of one input row of W <= 16 floats).
namespace {
template <int CV>
void weight_chunk(const Conv2dShape& s, const float* x, const float* dy, i64 p0, i64 p1,
                  float* part, i64 ldp) {
  const i64 OHW = s.OH * s.OW, HW = s.H * s.W, S = s.stride_w;
  const bool pairs = s.OW % 16 != 0;  // OW == 8
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  alignas(64) float xt[kWeightStep * 16 * CV];
  thread_local std::vector<float> acc;
  acc.assign(static_cast<std::size_t>(s.O * 16 * CV), 0.0f);
  const i64 most = kWeightAcc / CV, nblocks = (s.O + most - 1) / most;
  const i64 per_block = (s.O + nblocks - 1) / nblocks;
  for (i64 q = p0; q < p1;) {
    const i64 n = q / OHW, j0 = q % OHW;
    const i64 len = std::min({kWeightStep, OHW - j0, p1 - q});
    for (i64 jb = 0; jb < len; jb += 16) {
      const i64 oh = (j0 + jb) / s.OW, ow = (j0 + jb) % s.OW;
      const float* base = x + (n * s.C * s.H + oh * s.stride_h) * s.W + ow * S;
      // The 16 floats whose even columns are the second 8 positions, and the masks.
      const i64 second = pairs ? s.stride_h * s.W : 16;
      const __mmask16 m1 = pairs ? avx512::first_lanes(s.W) : static_cast<__mmask16>(0xFFFF);
      const __mmask16 m2 = avx512::first_lanes(pairs ? s.W : s.W - ow * S - 16);
      for (i64 cv = 0; cv < CV; ++cv) {
        __m512 r[16];
        for (i64 c = 0; c < 16; ++c) {
          const float* row = base + (cv * 16 + c) * HW;
          r[c] = cv * 16 + c >= s.C ? _mm512_setzero_ps()
                 : S == 1           ? _mm512_loadu_ps(row)
                 : !pairs           ? _mm512_permutex2var_ps(_mm512_loadu_ps(row), even,
                                                             _mm512_maskz_loadu_ps(m2, row + 16))
                                    : _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m1, row), even,
                                                             _mm512_maskz_loadu_ps(m2, row + second));
        }
        avx512::transpose16(r);  // r[c][k] -> r[k][c]
        for (i64 k = 0; k < 16; ++k) _mm512_store_ps(xt + ((jb + k) * CV + cv) * 16, r[k]);
      }
    }
    for (i64 o0 = 0; o0 < s.O; o0 += per_block) {
      const i64 no = std::min(per_block, s.O - o0);
      const WeightTile* tiles = CV == 1 ? kWeightTiles1.data() : kWeightTiles2.data();
      tiles[no - 1](xt, len, dy + (n * s.O + o0) * OHW + j0, OHW, acc.data() + o0 * 16 * CV);
    }
    q += len;
  }
  for (i64 c = 0; c < s.C; ++c)
    for (i64 o = 0; o < s.O; ++o)
      part[c * ldp + o] = acc[static_cast<std::size_t>((o * CV + c / 16) * 16 + c % 16)];
}
}  // namespace

void weight_chunk_avx512(const Conv2dShape& s, const float* x, const float* dy, i64 p0, i64 p1,
                         float* part, i64 ldp) {
  if (s.C <= 16)
    weight_chunk<1>(s, x, dy, p0, p1, part, ldp);
  else
    weight_chunk<2>(s, x, dy, p0, p1, part, ldp);
}

// Even columns by 16 through one two-source permute; loads masked to the `avail` floats.
void gather_even_avx512(const float* src, i64 avail, i64 n, float* dst) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const auto first = avx512::first_lanes;
  for (i64 j = 0; j < n; j += 16) {
    const i64 q = 2 * j;
    const __m512 lo = avail - q >= 16 ? _mm512_loadu_ps(src + q)
                                      : _mm512_maskz_loadu_ps(first(avail - q), src + q);
    const __m512 hi = avail - q >= 32 ? _mm512_loadu_ps(src + q + 16)
                                      : _mm512_maskz_loadu_ps(first(avail - q - 16), src + q + 16);
    const __m512 v = _mm512_permutex2var_ps(lo, even, hi);
    if (n - j >= 16)
      _mm512_storeu_ps(dst + j, v);
    else
      _mm512_mask_storeu_ps(dst + j, first(n - j), v);
  }
}

}  // namespace detdl::cpu::conv_pointwise
