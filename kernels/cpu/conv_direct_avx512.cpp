// The direct convolutions' tiles for AVX-512F (16 lanes): conv_direct_tiles.inc over __m512.
// This file alone is compiled with -mavx512f (CMakeLists.txt) and holds nothing else, so no
// AVX-512 code can end up where a CPU without it runs (conv_direct_tiles.h).
#include <immintrin.h>

#include "kernels/cpu/conv_direct_tiles.h"

namespace detdl::cpu::conv_direct {
namespace {

struct V {
  using reg = __m512;
  static constexpr int lanes = 16;
  static constexpr int fwd_rows = 8;  // forward tiles: 16 (of 32) registers
  static reg zero() { return _mm512_setzero_ps(); }
  static reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static void store(float* p, reg v, std::int64_t n) {
    if (n >= lanes)
      _mm512_storeu_ps(p, v);
    else
      _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
  }
  static reg keep(reg v, std::int64_t lo, std::int64_t hi) {
    const __m512i i = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __mmask16 in =
        _mm512_cmp_epi32_mask(_mm512_set1_epi32(static_cast<int>(lo)), i, _MM_CMPINT_LE) &
        _mm512_cmp_epi32_mask(i, _mm512_set1_epi32(static_cast<int>(hi)), _MM_CMPINT_LT);
    return _mm512_maskz_mov_ps(in, v);
  }
};

#include "kernels/cpu/conv_direct_tiles.inc"

}  // namespace

const TileSet& tiles_avx512() {
  static const TileSet t = make_tiles();
  return t;
}

}  // namespace detdl::cpu::conv_direct
