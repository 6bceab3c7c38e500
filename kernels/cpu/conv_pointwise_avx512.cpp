// The pointwise convolutions' AVX-512 tiles (conv_pointwise_avx512.h). This file alone is
// compiled with -mavx512f and holds nothing but them (as conv_direct_avx512.cpp).
#include "kernels/cpu/conv_pointwise_avx512.h"

#include <immintrin.h>

namespace detdl::cpu::conv_pointwise {
namespace {

using i64 = std::int64_t;

// MR rows x NV vectors at b; lanes[v] of vector v are real (1..16), the rest masked.
template <int MR, int NV>
__attribute__((always_inline)) inline void tile(const float* __restrict a, i64 K,
                                                const float* __restrict b, i64 ldb,
                                                const __mmask16* m, const float* bias,
                                                bool plus_zero, float* out, i64 ldo) {
  __m512 acc[NV][MR];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[v][r] = _mm512_setzero_ps();
  for (i64 k = 0; k < K; ++k, a += kRows512, b += ldb) {
    __m512 x[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) x[v] = _mm512_maskz_loadu_ps(m[v], b + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 wv = _mm512_set1_ps(a[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[v][r] = _mm512_fmadd_ps(wv, x[v], acc[v][r]);
    }
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
      _mm512_mask_storeu_ps(out + r * ldo + 16 * v, m[v], val);
    }
}

// Flat positions in groups of up to 3 vectors, the last group's vectors as even as they go.
template <int MR>
void block(const float* a, i64 K, const float* b, i64 ldb, i64 P, const float* bias, bool plus_zero,
           float* out, i64 ldo) {
  for (i64 p = 0; p < P; p += 48) {
    const i64 left = P - p, nv = left >= 48 ? 3 : (left + 15) / 16;
    __mmask16 m[3];
    for (i64 v = 0; v < 3; ++v) {
      const i64 n = left - 16 * v;
      m[v] = n >= 16 ? static_cast<__mmask16>(0xFFFF)
             : n > 0 ? static_cast<__mmask16>((1u << n) - 1u)
                     : static_cast<__mmask16>(0);
    }
    if (nv == 3)
      tile<MR, 3>(a, K, b + p, ldb, m, bias, plus_zero, out + p, ldo);
    else if (nv == 2)
      tile<MR, 2>(a, K, b + p, ldb, m, bias, plus_zero, out + p, ldo);
    else
      tile<MR, 1>(a, K, b + p, ldb, m, bias, plus_zero, out + p, ldo);
  }
}

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

}  // namespace detdl::cpu::conv_pointwise
