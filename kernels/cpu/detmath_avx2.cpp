// det_logf over eight lanes: detmath.h's det_logf, its branches as masks.
#include "kernels/cpu/detmath_avx2.h"

#include <immintrin.h>

#include "kernels/common/detmath.h"

namespace detdl::cpu {
namespace {

__m256i bits(__m256 x) { return _mm256_castps_si256(x); }
__m256 floats(__m256i x) { return _mm256_castsi256_ps(x); }
__m256i splat(std::uint32_t v) { return _mm256_set1_epi32(static_cast<int>(v)); }

// detmath_detail::log_kernel(k, f, 0).
__m256 log_kernel8(__m256 k, __m256 f) {
  const __m256 s = _mm256_div_ps(f, _mm256_add_ps(_mm256_set1_ps(2.0f), f));
  const __m256 z = _mm256_mul_ps(s, s);
  __m256 q = _mm256_set1_ps(0x1.de0b02p-3f);
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(0x1.245b28p-2f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(0x1.9999eep-2f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(0x1.555556p-1f));
  const __m256 R = _mm256_mul_ps(z, q);
  const __m256 hfsq = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), f), f);
  const __m256 lo =
      _mm256_add_ps(_mm256_fmadd_ps(k, _mm256_set1_ps(detmath_detail::kLn2Lo), _mm256_setzero_ps()),
                    _mm256_mul_ps(s, _mm256_add_ps(hfsq, R)));
  return _mm256_fmadd_ps(k, _mm256_set1_ps(detmath_detail::kLn2Hi),
                         _mm256_sub_ps(f, _mm256_sub_ps(hfsq, lo)));
}

__m256 det_logf8(__m256 x) {
  __m256i ix = bits(x);
  const __m256 is_nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256 is_zero =
      floats(_mm256_cmpeq_epi32(_mm256_and_si256(ix, splat(0x7fffffffu)), _mm256_setzero_si256()));
  const __m256 is_neg = floats(_mm256_srai_epi32(ix, 31));  // sign set (zeros and NaNs aside)
  const __m256 is_inf = floats(_mm256_cmpeq_epi32(ix, splat(0x7f800000u)));
  // Subnormal (positive, below the smallest normal): scaled by 2^23, k starts at -23.
  const __m256i is_sub = _mm256_cmpgt_epi32(splat(0x00800000u), ix);  // ix < 2^23 (ix >= 0 here)
  ix = _mm256_blendv_epi8(ix, bits(_mm256_mul_ps(x, _mm256_set1_ps(0x1p23f))), is_sub);
  const __m256i k0 = _mm256_and_si256(is_sub, _mm256_set1_epi32(-23));
  ix = _mm256_add_epi32(ix, splat(0x3f800000u - 0x3f3504f3u));
  const __m256i k =
      _mm256_add_epi32(k0, _mm256_sub_epi32(_mm256_srli_epi32(ix, 23), _mm256_set1_epi32(127)));
  const __m256 m =
      floats(_mm256_add_epi32(_mm256_and_si256(ix, splat(0x007fffffu)), splat(0x3f3504f3u)));
  __m256 y = log_kernel8(_mm256_cvtepi32_ps(k), _mm256_sub_ps(m, _mm256_set1_ps(1.0f)));
  // The scalar function's early returns, latest first so the earliest wins.
  y = _mm256_blendv_ps(y, x, is_inf);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(det_nan()), is_neg);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(-det_inf()), is_zero);
  y = _mm256_blendv_ps(y, _mm256_add_ps(x, x), is_nan);
  return y;
}

// 2^k as a float for k in [-126, 127] (det_pow2i).
__m256 pow2i8(__m256i k) {
  return floats(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

__m256 det_expf8(__m256 x) {
  using namespace detmath_detail;
  const __m256 is_nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256 is_big = _mm256_cmp_ps(x, _mm256_set1_ps(89.0f), _CMP_GT_OQ);
  const __m256 is_small = _mm256_cmp_ps(x, _mm256_set1_ps(-104.0f), _CMP_LT_OQ);
  // reduce_ln2: k = det_round_small(x * log2e), r = x - k ln2 in two fmaf steps.
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 kf =
      _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), magic), magic);
  const __m256 nk = _mm256_sub_ps(_mm256_setzero_ps(), kf);  // -k (exact)
  __m256 r = _mm256_fmadd_ps(nk, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fmadd_ps(nk, _mm256_set1_ps(kLn2Lo), r);
  // expm1_poly(r)
  __m256 p = _mm256_set1_ps(0x1.a124eep-13f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0x1.6d4320p-10f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0x1.1110e0p-7f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0x1.5554eap-5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0x1.555556p-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r);
  const __m256 v = _mm256_add_ps(_mm256_set1_ps(1.0f), p);
  // scale_pow2(v, k): one factor inside [-126, 127], else two (k1 = k / 2, toward zero).
  const __m256i k = _mm256_cvttps_epi32(kf);
  const __m256i in_range = _mm256_and_si256(_mm256_cmpgt_epi32(k, _mm256_set1_epi32(-127)),
                                            _mm256_cmpgt_epi32(_mm256_set1_epi32(128), k));
  const __m256i k1 = _mm256_srai_epi32(_mm256_sub_epi32(k, _mm256_srai_epi32(k, 31)), 1);
  const __m256 one_step = _mm256_mul_ps(v, pow2i8(k));
  const __m256 two_steps =
      _mm256_mul_ps(_mm256_mul_ps(v, pow2i8(k1)), pow2i8(_mm256_sub_epi32(k, k1)));
  __m256 y = _mm256_blendv_ps(two_steps, one_step, floats(in_range));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), is_small);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(det_inf()), is_big);
  y = _mm256_blendv_ps(y, _mm256_add_ps(x, x), is_nan);
  return y;
}

}  // namespace

void det_expf_n(const float* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, det_expf8(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = det_expf(x[i]);
}

void det_logf_n(const float* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, det_logf8(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = det_logf(x[i]);
}

}  // namespace detdl::cpu
