// A second implementation of the transcendentals, for the `emulated` level's math family
// (kernels/common/impl_choice.h): another libm or GPU intrinsic gives other bits for the
// same exp / log / tanh, each within a few ulp of the exact value. Like detmath.h it uses
// only +, -, *, fmaf, IEEE division, comparisons and bit manipulation, so g++ and nvcc
// give the same bits; but its range reductions and polynomials are its own (the classic
// fdlibm/Cephes-style choices where detmath.h uses Chebyshev fits):
//   exp:   k = trunc(x log2e +- 1/2), r = x - k ln2 with ln2 split 15 + 24 bits (the high
//          product exact, no fmaf), e^r = 1 + (r + r^2 Q(r)) with Q the Taylor series to r^5
//          (degree 7 in all), scaled by 2^k in at most two exact-range factors.
//   expm1: |x| <= ln2/2: doubling, expm1(x) = u (u + 2) with u = expm1(x/2) from the same
//          Taylor polynomial; else 2^k (1 + expm1(r)) - 1 as fmaf(2^k, u, 2^k - 1).
//   log:   x = 2^k m, m in [sqrt(1/2), sqrt(2)) from the exponent field; log m = 2 atanh(s),
//          s = (m - 1) / (m + 1) carried as a float pair (exact residuals), the atanh Taylor
//          series to s^11; k ln2 (ln2 split 16 + 24 bits) added by Fast2Sum.
//   log1p: the same kernel on f = x itself near 0, else on 1 + x with its rounding error.
//   tanh:  |x| < 0.55: the odd Taylor series to x^21; then 1 - 2 / (t + 2) with
//          t = expm1(2|x|); +-1 beyond 9.02.
// Measured maximum error against float64 libm (tests/kernels/test_detmath_alt.cpp: every
// 97th float of the useful range plus a dense [-20, 20] sweep): exp 1.02 ulp, expm1 1.62,
// log 0.53, log1p 0.53, tanh 1.42. Special values follow C99 Annex F as detmath.h does.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/detmath.h"
#include "kernels/common/hd.h"

namespace detdl {
namespace detmath_alt_detail {

// ln 2 = kExpLn2Hi + kExpLn2Lo: kExpLn2Hi has 15 significant bits, so k * kExpLn2Hi is
// exact for |k| < 2^9 and x - k * kExpLn2Hi is exact near the reduced range.
inline constexpr float kExpLn2Hi = 0x1.62e400p-1f;
inline constexpr float kExpLn2Lo = 0x1.7f7d1cp-20f;
// ln 2 = kLogLn2Hi + kLogLn2Lo: 16 significant bits, k * kLogLn2Hi exact for |k| < 2^8.
inline constexpr float kLogLn2Hi = 0x1.62e300p-1f;
inline constexpr float kLogLn2Lo = 0x1.2fefa4p-17f;
inline constexpr float kLog2e = 0x1.715476p+0f;

// expm1(r) = r + r^2 (1/2 + r/6 + r^2/24 + r^3/120 + r^4/720 + r^5/5040) (Taylor, degree
// 7); truncation r^8/8! < 5.2e-9 on |r| <= ln2/2, far less on the doubling's |r| <= ln2/4.
DETDL_HD float em1_taylor(float r) {
  float q = 0x1.a01a02p-13f;
  q = fmaf(q, r, 0x1.6c16c2p-10f);
  q = fmaf(q, r, 0x1.111112p-7f);
  q = fmaf(q, r, 0x1.555556p-5f);
  q = fmaf(q, r, 0x1.555556p-3f);
  q = fmaf(q, r, 0.5f);
  return fmaf(r * r, q, r);
}

// x = k ln2 + r with k = trunc(x log2e +- 1/2) (|x| < 2^22 / log2e).
DETDL_HD float reduce(float x, int& k) {
  const float t = x * kLog2e;
  k = static_cast<int>(t + (t < 0.0f ? -0.5f : 0.5f));
  const float kf = static_cast<float>(k);
  const float hi = x - kf * kExpLn2Hi;  // both operations exact
  return hi - kf * kExpLn2Lo;
}

// p * 2^k for k in [-152, 129]: one rounding, into the subnormals or to inf.
DETDL_HD float scale(float p, int k) {
  if (k > 127) return (p * 2.0f) * det_pow2i(k - 1);
  if (k < -125) return (p * det_pow2i(k + 64)) * det_pow2i(-64);
  return p * det_pow2i(k);
}

// k ln2 + log(1 + f) + c for 1 + f in [sqrt(1/2), sqrt(2)], f exact, c a small correction.
// log(1 + f) = 2 atanh(s), s = f / (2 + f) = s + sl as a float pair:
// d + de = 2 + f exactly (Fast2Sum), s = f / d rounded, fmaf(-s, d, f) its exact remainder.
DETDL_HD float log_kernel(float k, float f, float c) {
  const float d = 2.0f + f;
  const float de = (2.0f - d) + f;
  const float s = f / d;
  const float sl = (fmaf(-s, d, f) - s * de) / d;
  const float z = s * s;
  // 2 atanh(s) - 2s = s z (2/3 + 2z/5 + 2z^2/7 + 2z^3/9 + 2z^4/11) (Taylor, z <= 0.0295;
  // truncation 2 z^5/13 < 2e-9 relative to the series' sum).
  float p = 0x1.745d18p-3f;
  p = fmaf(p, z, 0x1.c71c72p-3f);
  p = fmaf(p, z, 0x1.24924ap-2f);
  p = fmaf(p, z, 0x1.99999ap-2f);
  p = fmaf(p, z, 0x1.555556p-1f);
  const float tail = fmaf(s * z, p, 2.0f * sl);
  const float lo = fmaf(k, kLogLn2Lo, c) + tail;
  // k ln2_hi + 2s exactly as hi + err (both terms exact; |k ln2_hi| >= |2s| unless k = 0).
  const float a = k * kLogLn2Hi, b = 2.0f * s;
  const float hi = a + b;
  const float err = b - (hi - a);
  return hi + (err + lo);
}

// u = 2^k m with m in [sqrt(1/2), sqrt(2)) for a positive normal u; returns m - 1 (exact).
DETDL_HD float split_mantissa(std::uint32_t iu, int& k) {
  k += static_cast<int>(iu >> 23) - 127;
  float m = det_bits_float((iu & 0x007fffffu) | 0x3f800000u);  // [1, 2)
  if (m > 0x1.6a09e6p+0f) {
    m = 0.5f * m;
    k += 1;
  }
  return m - 1.0f;
}

// tanh x - x = x z T(z), z = x^2: the odd Taylor series to x^21 (|x| < 0.55; the series
// alternates, so the truncation is below the first omitted term, 7.7e-11 relative).
DETDL_HD float tanh_small(float x) {
  const float z = x * x;
  float p = 0x1.967e18p-14f;
  p = fmaf(p, z, -0x1.f57d78p-13f);
  p = fmaf(p, z, 0x1.355824p-11f);
  p = fmaf(p, z, -0x1.7da364p-10f);
  p = fmaf(p, z, 0x1.d6d3d0p-9f);
  p = fmaf(p, z, -0x1.226e36p-7f);
  p = fmaf(p, z, 0x1.664f48p-6f);
  p = fmaf(p, z, -0x1.ba1ba2p-5f);
  p = fmaf(p, z, 0x1.111112p-3f);
  p = fmaf(p, z, -0x1.555556p-2f);
  return fmaf(x * z, p, x);
}

}  // namespace detmath_alt_detail

DETDL_HD float alt_expf(float x) {
  using namespace detmath_alt_detail;
  if (det_isnan(x)) return x + x;
  if (x > 88.8f) return det_inf();
  if (x < -104.0f) return 0.0f;
  int k;
  const float r = reduce(x, k);
  return scale(1.0f + em1_taylor(r), k);
}

DETDL_HD float alt_expm1f(float x) {
  using namespace detmath_alt_detail;
  if (det_isnan(x)) return x + x;
  const float ax = det_fabsf(x);
  if (ax < 0x1p-25f) return x;  // rounds to x; keeps -0 and subnormals
  if (ax <= 0.34657359f) {
    const float u = em1_taylor(0.5f * x);
    return fmaf(u, u, 2.0f * u);  // e^x - 1 = u (u + 2), one rounding
  }
  // Beyond these, 2^k - 1 is not exact (|k| > 24); the -1 is below an ulp or exact.
  if (x > 16.5f || x < -16.6f) return alt_expf(x) - 1.0f;
  int k;
  const float r = reduce(x, k);
  const float s = det_pow2i(k);
  return fmaf(s, em1_taylor(r), s - 1.0f);
}

DETDL_HD float alt_logf(float x) {
  using namespace detmath_alt_detail;
  std::uint32_t ix = det_float_bits(x);
  if (det_isnan(x)) return x + x;
  if ((ix & 0x7fffffffu) == 0) return -det_inf();
  if (ix >> 31) return det_nan();
  if (ix == 0x7f800000u) return x;
  int k = 0;
  if (ix < 0x00800000u) {  // subnormal: scale into the normal range
    ix = det_float_bits(x * 0x1p25f);
    k = -25;
  }
  const float f = split_mantissa(ix, k);
  return log_kernel(static_cast<float>(k), f, 0.0f);
}

DETDL_HD float alt_log1pf(float x) {
  using namespace detmath_alt_detail;
  if (det_isnan(x)) return x + x;
  if (x == -1.0f) return -det_inf();
  if (x < -1.0f) return det_nan();
  if (x == det_inf()) return x;
  const float ax = det_fabsf(x);
  if (ax < 0x1p-25f) return x;
  if (x > -0.29289322f && x < 0.41421357f) return log_kernel(0.0f, x, 0.0f);
  const float u = 1.0f + x;
  const float c = ax <= 1.0f ? x - (u - 1.0f) : 1.0f - (u - x);  // (1 + x) - u exactly
  int k = 0;
  const float f = split_mantissa(det_float_bits(u), k);
  return log_kernel(static_cast<float>(k), f, c / u);
}

DETDL_HD float alt_tanhf(float x) {
  using namespace detmath_alt_detail;
  const float ax = det_fabsf(x);
  if (ax < 0x1p-12f) return x;  // the cubic term is below half an ulp; keeps -0
  if (ax < 0.55f) return tanh_small(x);
  if (ax > 9.02f) return det_copysignf(1.0f, x);
  const float t = alt_expm1f(2.0f * ax);  // >= 2: 2 / (t + 2) <= 1/2 and damps t's error
  return det_copysignf(1.0f - 2.0f / (t + 2.0f), x);  // NaN stays NaN
}

// The engine's own function (alt = false) or the second implementation (alt = true).
DETDL_HD float impl_expf(bool alt, float x) { return alt ? alt_expf(x) : det_expf(x); }
DETDL_HD float impl_expm1f(bool alt, float x) { return alt ? alt_expm1f(x) : det_expm1f(x); }
DETDL_HD float impl_logf(bool alt, float x) { return alt ? alt_logf(x) : det_logf(x); }
DETDL_HD float impl_log1pf(bool alt, float x) { return alt ? alt_log1pf(x) : det_log1pf(x); }
DETDL_HD float impl_tanhf(bool alt, float x) { return alt ? alt_tanhf(x) : det_tanhf(x); }

}  // namespace detdl
