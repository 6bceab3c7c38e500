// Small AVX2 helpers shared by the CPU kernels: a lane mask and an 8 x 8 transpose.
// Include only from files compiled for AVX2 alone (every kernel file but the *_avx512.cpp
// ones): an inline function compiled with -mavx512f in one file could be the copy the
// linker keeps for all of them.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace detdl::cpu::avx2 {

// Lanes [0, n) set, n in [0, 8] (for maskload / maskstore).
inline __m256i first_lanes(std::int64_t n) {
  alignas(32) static const std::int32_t kLanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                      0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLanes + 8 - n));
}

// The first n floats at p (n in [0, 8]), zeros after, reading nothing past them: a plain
// load where n is 8. (A masked load, vmaskmovps, costs more than a plain one on AMD Zen 4
// even with every lane set: the 2x2 max pool's rows, whose full steps took it, ran 11-13%
// faster on plain loads; bench/RESULTS.md.)
inline __m256 load_first(const float* p, std::int64_t n) {
  return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_lanes(n));
}
inline __m256i load_first(const std::int32_t* p, std::int64_t n) {
  return n >= 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                : _mm256_maskload_epi32(p, first_lanes(n));
}

// Stores the first n lanes of v at p (n in [1, 8]), touching nothing past them: 16-, 8-
// and 4-byte stores. A masked store (vmaskmovps) does the same in one instruction, but
// costs about 5x a plain store on AMD Zen 3 (measured: 4.4-6.3 ns against 1.0), and the
// edges of narrow tiles store one per row.
inline void store_first(float* p, __m256 v, std::int64_t n) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
    return;
  }
  __m128 h = _mm256_castps256_ps128(v);
  if (n >= 4) {
    _mm_storeu_ps(p, h);
    h = _mm256_extractf128_ps(v, 1);
    p += 4, n -= 4;
  }
  if (n >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), h);
    h = _mm_movehl_ps(h, h);
    p += 2, n -= 2;
  }
  if (n >= 1) _mm_store_ss(p, h);
}
inline void store_first(std::int32_t* p, __m256i v, std::int64_t n) {
  store_first(reinterpret_cast<float*>(p), _mm256_castsi256_ps(v), n);
}

// Transposes an 8x8 block: rows r[0..7] (8 floats each) become columns.
inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

}  // namespace detdl::cpu::avx2
