// The direct convolutions' tiles for AVX2 (8 lanes): conv_direct_tiles.inc over __m256.
#include <immintrin.h>

#include "kernels/cpu/avx2.h"
#include "kernels/cpu/conv_direct_tiles.h"

namespace detdl::cpu::conv_direct {
namespace {

struct V {
  using reg = __m256;
  static constexpr int lanes = 8;
  static constexpr int fwd_rows = 6;  // forward tiles: 6 x 2 accumulators (of 16 registers)
  static constexpr int fwd_vectors = 2;
  static constexpr int weight_acc = 12;  // weight_rows tiles: accumulators (of 16 registers)
  static constexpr int regs = 16;        // vector registers
  static constexpr int weight_vectors = 2;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  // AVX2 has no broadcast inside an FMA: a broadcast, then the FMA (GCC shares it).
  static reg fma_bcast(const float* p, reg b, reg c) { return _mm256_fmadd_ps(bcast(p), b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static void store(float* p, reg v, std::int64_t n) { avx2::store_first(p, v, n); }
  // No paired tiles with 8 lanes; these only let the shared template compile.
  static constexpr bool pairs = false;
  static reg load_pair(const float* p, std::int64_t) { return loadu(p); }
  static void store_pair(float* p, std::int64_t, reg v, std::int64_t n, bool) { store(p, v, n); }
  static reg keep_pair(reg v, std::int64_t lo, std::int64_t hi, bool, bool) {
    return keep(v, lo, hi);
  }
  static reg keep(reg v, std::int64_t lo, std::int64_t hi) {
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i below = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lo)), i);
    const __m256i under = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), i);
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_andnot_si256(below, under)));
  }
};

#include "kernels/cpu/conv_direct_tiles.inc"

}  // namespace

const TileSet& tiles_avx2() {
  static const TileSet t = make_tiles();
  return t;
}

}  // namespace detdl::cpu::conv_direct
