// The direct convolutions' tiles for AVX-512F (16 lanes): conv_direct_tiles.inc over __m512.
// This file alone is compiled with -mavx512f (CMakeLists.txt) and holds nothing else, so no
// AVX-512 code can end up where a CPU without it runs (conv_direct_tiles.h).
#include <immintrin.h>

#include "kernels/cpu/avx512.h"
#include "kernels/cpu/conv_direct_tiles.h"

namespace detdl::cpu::conv_direct {
namespace {

struct V {
  using reg = __m512;
  static constexpr int lanes = 16;
  static constexpr int fwd_rows = 8;  // forward tiles: 8 x 3 accumulators (of 32 registers)
  static constexpr int fwd_vectors = 3;
  static constexpr int weight_acc = 24;  // weight_rows tiles: accumulators (of 32 registers)
  static constexpr int regs = 32;        // vector registers
  static constexpr int weight_vectors = 4;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  // c + *p * b with the broadcast inside the FMA (its {1to16} memory form), where GCC loads a
  // broadcast that two FMAs share into a register first: a load and a shuffle more per
  // broadcast, which measured 3-6% of the channel-lane forward (bench/RESULTS.md, 2026-12-06).
  static reg fma_bcast(const float* p, reg b, reg c) { return avx512::fma_bcast(p, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static void store(float* p, reg v, std::int64_t n) {
    if (n >= lanes)
      _mm512_storeu_ps(p, v);
    else
      _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
  }
  // Paired tiles: a vector is two half vectors of 8 lanes (conv_direct_tiles.h's PairSteps).
  // AVX-512F only: the 256-bit halves move as 64-bit groups.
  static constexpr bool pairs = true;
  static reg load_pair(const float* p, std::int64_t step) {
    const __m512d lo = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(p)));
    const __m256d hi = _mm256_castps_pd(_mm256_loadu_ps(p + step));
    return _mm512_castpd_ps(_mm512_maskz_insertf64x4(0xFF, lo, hi, 1));  // maskz: GCC 12 warns
                                                                         // on the plain form
  }
  // Lanes [0, n) of each half (n <= 8); the second half only when `second`.
  static void store_pair(float* p, std::int64_t step, reg v, std::int64_t n, bool second) {
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    if (second && step == 8 && n == 8) {  // the two rows are adjacent in memory
      _mm512_storeu_ps(p, v);
      return;
    }
    _mm512_mask_storeu_ps(p, m, v);
    if (second)  // lanes 8..15 down to 0..7
      _mm512_mask_storeu_ps(p + step, m,
                            _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // keep() per half, lane index i mod 8; a half whose row is out (first / second false) is
  // +0.0f throughout.
  static reg keep_pair(reg v, std::int64_t lo, std::int64_t hi, bool first, bool second) {
    const __m512i i = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
    const __mmask16 in =
        _mm512_cmp_epi32_mask(_mm512_set1_epi32(static_cast<int>(lo)), i, _MM_CMPINT_LE) &
        _mm512_cmp_epi32_mask(i, _mm512_set1_epi32(static_cast<int>(hi)), _MM_CMPINT_LT);
    const unsigned rows = (first ? 0x00FFu : 0u) | (second ? 0xFF00u : 0u);
    return _mm512_maskz_mov_ps(static_cast<__mmask16>(in & rows), v);
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

// conv_direct_tiles.h's ChanOut: 16 columns q at a time, each column's channel vector loaded
// from its phase row, transposed, and stored as 16 floats of each channel's row (masked past n).
void chan_out16(const float* src, i64 S, i64 phase_ld, i64 ld, i64 cn, i64 n, float* dst, i64 ldd) {
  for (i64 q0 = 0; q0 < n; q0 += 16) {
    const i64 m = n - q0 < 16 ? n - q0 : 16;
    __m512 r[16];
    i64 f = q0 % S, j = q0 / S;  // column q0 + k's phase and place in it
    for (i64 k = 0; k < 16; ++k) {
      r[k] = k < m ? _mm512_loadu_ps(src + f * phase_ld + j * ld) : _mm512_setzero_ps();
      if (++f == S) f = 0, ++j;
    }
    avx512::transpose16(r);
    const __mmask16 keep = static_cast<__mmask16>((1u << m) - 1u);
    for (i64 c = 0; c < cn; ++c) _mm512_mask_storeu_ps(dst + c * ldd + q0, keep, r[c]);
  }
}

}  // namespace

const TileSet& tiles_avx512() {
  static const TileSet t = [] {
    TileSet s = make_tiles();
    s.chan_out = chan_out16;
    return s;
  }();
  return t;
}

}  // namespace detdl::cpu::conv_direct
