// Small AVX-512F helpers shared by the *_avx512.cpp kernel files: a lane mask and a 16 x 16
// transpose. Include only from files compiled with -mavx512f (CMakeLists.txt), and from all
// of them alike: an inline function's copies must all be AVX-512 ones (avx2.h, the converse).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace detdl::cpu::avx512 {

// Lanes [0, n) set, n clamped to [0, 16].
inline __mmask16 first_lanes(std::int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF)
         : n > 0 ? static_cast<__mmask16>((1u << n) - 1u)
                 : static_cast<__mmask16>(0);
}

// c + *p * b, the broadcast inside the FMA (its {1to16} memory form). Where a broadcast is
// a register of its own (vbroadcastss, which GCC emits for _mm512_set1_ps of a load even when
// one FMA uses it), Zen 4 runs it on an FP pipe beside the FMAs; here the load unit does it.
inline __m512 fma_bcast(const float* p, __m512 b, __m512 c) {
  asm("vfmadd231ps %[m]%{1to16%}, %[b], %[c]" : [c] "+v"(c) : [b] "v"(b), [m] "m"(*p));
  return c;
}

// r[k][l] -> r[l][k]: 16 x 16 floats in four rounds of shuffles (the maskz forms with every
// lane kept: GCC 12 warns on the plain forms).
inline void transpose16(__m512 r[16]) {
  constexpr __mmask16 kAll = 0xFFFF;
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(kAll, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(kAll, r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_maskz_shuffle_ps(kAll, t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_maskz_shuffle_ps(kAll, t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_maskz_shuffle_ps(kAll, t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_maskz_shuffle_ps(kAll, t[i + 1], t[i + 3], 0xEE);
  }
  for (int h = 0; h < 16; h += 8)
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_maskz_shuffle_f32x4(kAll, r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_maskz_shuffle_f32x4(kAll, r[h + i], r[h + i + 4], 0xDD);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_maskz_shuffle_f32x4(kAll, t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_maskz_shuffle_f32x4(kAll, t[i], t[i + 8], 0xDD);
  }
}

}  // namespace detdl::cpu::avx512
