// The engine's own transcendental functions (docs/determinism.md, "Element-wise
// arithmetic"): the same source gives the same bits under g++ and nvcc because it uses
// only +, -, *, fmaf, IEEE division and sqrtf, comparisons and integer bit manipulation.
// No libm call and no approximate instruction, so no vendor library decides a result.
//
// Accuracy against a float64 reference (tests/kernels/test_detmath.cpp measures it over
// millions of inputs): exp, log within 2 ulp; log1p, expm1, tanh, sin, cos within 4 ulp;
// sin and cos reduce any finite argument exactly (Payne-Hanek beyond 2^17).
// Special values follow C99 Annex F: NaN -> NaN, exp(-inf) = 0, log(0) = -inf,
// log(negative) = NaN, tanh(+-inf) = +-1, sin(inf) = NaN, and signed zeros are kept.
//
// Polynomial coefficients: Chebyshev fits (mpmath.chebyfit) on the reduced range,
// rounded to float; each comment names the function and the range.
#pragma once
#include <cmath>  // fmaf, sqrtf: correctly rounded on both sides (a vfmadd on x86 with -mfma)
#include <cstdint>
#include <cstring>

#include "kernels/common/hd.h"

namespace detdl {

// ---- bits ----
DETDL_HD std::uint32_t det_float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

DETDL_HD float det_bits_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

DETDL_HD float det_inf() { return det_bits_float(0x7f800000u); }
DETDL_HD float det_nan() { return det_bits_float(0x7fc00000u); }
DETDL_HD float det_fabsf(float x) { return det_bits_float(det_float_bits(x) & 0x7fffffffu); }
DETDL_HD float det_copysignf(float mag, float sign) {
  return det_bits_float((det_float_bits(mag) & 0x7fffffffu) | (det_float_bits(sign) & 0x80000000u));
}
DETDL_HD bool det_isnan(float x) { return (det_float_bits(x) & 0x7fffffffu) > 0x7f800000u; }

// 2^k for k in [-126, 127], built from its exponent field.
DETDL_HD float det_pow2i(int k) {
  return det_bits_float(static_cast<std::uint32_t>(k + 127) << 23);
}

// Nearest integer of |t| < 2^22 (ties to even), as a float: adding 1.5 * 2^23 pushes the
// fraction bits out of the significand. Exact because the build never contracts or
// reassociates (-ffp-contract=off, --fmad=false, no fast-math).
DETDL_HD float det_round_small(float t) {
  const float magic = 12582912.0f;  // 1.5 * 2^23
  return (t + magic) - magic;
}

namespace detmath_detail {

// ln 2 = kLn2Hi + kLn2Lo (+ 2^-54): kLn2Hi is ln 2 rounded to float.
inline constexpr float kLn2Hi = 0x1.62e430p-1f;
inline constexpr float kLn2Lo = -0x1.05c610p-29f;
inline constexpr float kLog2e = 0x1.715476p+0f;

// expm1(r) - r ~= r^2 * P(r) on |r| <= ln2 / 2 (degree 5, error 4e-9 in P).
DETDL_HD float expm1_poly(float r) {
  float p = 0x1.a124eep-13f;
  p = fmaf(p, r, 0x1.6d4320p-10f);
  p = fmaf(p, r, 0x1.1110e0p-7f);
  p = fmaf(p, r, 0x1.5554eap-5f);
  p = fmaf(p, r, 0x1.555556p-3f);
  p = fmaf(p, r, 0.5f);
  return fmaf(r * r, p, r);  // r + r^2 P(r): one rounding on the small correction
}

// x = k ln2 + r, |r| <= ln2/2 (a little more where k*log2e rounds): Cody-Waite with fmaf.
// The first fmaf is exact (x - k*kLn2Hi is a multiple of 2^-25 below 1/2 in size), so r
// carries one rounding only.
DETDL_HD float reduce_ln2(float x, float& k) {
  k = det_round_small(x * kLog2e);
  const float r = fmaf(-k, kLn2Hi, x);
  return fmaf(-k, kLn2Lo, r);
}

// p * 2^k for k in [-252, 254]: two exact-range factors so overflow rounds to inf and
// underflow rounds once into the subnormals (p * 2^k1 stays normal).
DETDL_HD float scale_pow2(float p, int k) {
  if (k >= -126 && k <= 127) return p * det_pow2i(k);
  const int k1 = k / 2;
  return (p * det_pow2i(k1)) * det_pow2i(k - k1);
}

// log(2^k (1 + f)) + c for f in [sqrt(1/2) - 1, sqrt(2) - 1] and a small correction c:
// log(1 + f) = f - (hfsq - s (hfsq + R(s^2))) with s = f / (2 + f), hfsq = f^2 / 2 and
// R(z) ~= 2z/3 + 2z^2/5 + ... (the fdlibm arrangement: the large term f is exact and
// only the small correction carries rounding).
DETDL_HD float log_kernel(float k, float f, float c) {
  const float s = f / (2.0f + f);
  const float z = s * s;
  // R(z) / z on z in [0, 0.0297] (degree 3, error 2e-8 in R/z, 1e-10 in log).
  float q = 0x1.de0b02p-3f;
  q = fmaf(q, z, 0x1.245b28p-2f);
  q = fmaf(q, z, 0x1.9999eep-2f);
  q = fmaf(q, z, 0x1.555556p-1f);
  const float R = z * q;
  const float hfsq = 0.5f * f * f;
  const float lo = fmaf(k, kLn2Lo, c) + s * (hfsq + R);
  return fmaf(k, kLn2Hi, f - (hfsq - lo));
}

// sin(r), cos(r) on |r| <= pi/4 (+ a little).
// S(z), z = r^2: sin r = r + r z S(z) (degree 3, error 5e-9 in S).
DETDL_HD float sin_poly(float r) {
  const float z = r * r;
  float p = 0x1.6d87dep-19f;
  p = fmaf(p, z, -0x1.a012fcp-13f);
  p = fmaf(p, z, 0x1.11110ep-7f);
  p = fmaf(p, z, -0x1.555556p-3f);
  return fmaf(r * z, p, r);
}
// C(z): cos r = 1 - z/2 + z^2 C(z) (degree 2, error 2.5e-9 in C). The rounding of
// w = 1 - z/2 is recovered exactly ((1 - w) - z/2 is exact) and added back with the tail.
DETDL_HD float cos_poly(float r) {
  const float z = r * r;
  float p = 0x1.9ba0bap-16f;
  p = fmaf(p, z, -0x1.6c1268p-10f);
  p = fmaf(p, z, 0x1.555554p-5f);
  const float hz = 0.5f * z;
  const float w = 1.0f - hz;
  return w + (((1.0f - w) - hz) + (z * z) * p);
}

// Bits of 2/pi, 32 per word, after a leading zero word: word j holds bits 32(j-1)+1 ..
// 32j of the binary fraction 2/pi = 0.101000101111...
DETDL_HD std::uint32_t two_over_pi_word(int j) {
  switch (j) {
    case 1: return 0xa2f9836eu;
    case 2: return 0x4e441529u;
    case 3: return 0xfc2757d1u;
    case 4: return 0xf534ddc0u;
    case 5: return 0xdb629599u;
    case 6: return 0x3c439041u;
    case 7: return 0xfe5163abu;
    case 8: return 0xdebbc561u;
    default: return 0u;
  }
}

// pi/2 = kPio2A + kPio2B + kPio2C (+ 2^-75): three float parts for Cody-Waite.
inline constexpr float kPio2A = 0x1.921fb6p+0f;
inline constexpr float kPio2B = -0x1.777a5cp-25f;
inline constexpr float kPio2C = -0x1.ee59dap-50f;
inline constexpr float kInvPio2 = 0x1.45f306p-1f;

// x = q pi/2 + r with |r| <= pi/4 (+ a little); returns r, q mod 4 in `quadrant`.
// |x| < 2^17: Cody-Waite, k = nearest(x 2/pi); the first fmaf is exact (x - k kPio2A is a
//   multiple of 2^-24 below 2), the others each round once, so r is within ~1 ulp.
// larger finite |x| (Payne-Hanek): x = M 2^e with integer M < 2^24, e >= -6; x 2/pi mod 4
//   needs only the bits of 2/pi from position e - 1 on (earlier bits give multiples of 4).
//   96 of them times M give x 2/pi mod 4 as a 2.62 fixed-point number (error < 2^-66).
DETDL_HD float reduce_pio2(float x, int& quadrant) {
  const float ax = det_fabsf(x);
  if (ax < 131072.0f) {
    const float k = det_round_small(x * kInvPio2);
    float r = fmaf(-k, kPio2A, x);
    r = fmaf(-k, kPio2B, r);
    r = fmaf(-k, kPio2C, r);
    quadrant = static_cast<int>(k) & 3;
    return r;
  }
  const std::uint32_t ux = det_float_bits(ax);
  const std::uint32_t mant = (ux & 0x7fffffu) | 0x800000u;
  const int e = static_cast<int>(ux >> 23) - 150;  // ax = mant * 2^e, e >= -6 here
  // Bit i of 2/pi (i >= 1; bits i <= 0 are 0) sits at position g = i + 31 of the padded
  // table. The window starts at bit i = e - 1.
  const int g = e + 30;
  const int wi = g >> 5, sh = g & 31;
  std::uint32_t w[3];
  for (int j = 0; j < 3; ++j) {
    const std::uint32_t a = two_over_pi_word(wi + j), b = two_over_pi_word(wi + j + 1);
    w[j] = sh == 0 ? a : (a << sh) | (b >> (32 - sh));
  }
  // mant * (w0 w1 w2) as a 120-bit integer; keep bits 32..95 (higher bits are multiples
  // of 4 and vanish mod 4). x 2/pi mod 4 = F / 2^62.
  const std::uint64_t p2 = static_cast<std::uint64_t>(mant) * w[2];
  const std::uint64_t p1 = static_cast<std::uint64_t>(mant) * w[1] + (p2 >> 32);
  const std::uint64_t p0 = static_cast<std::uint64_t>(mant) * w[0] + (p1 >> 32);
  const std::uint64_t F = (p0 << 32) | (p1 & 0xffffffffu);
  const std::uint64_t q = (F + (std::uint64_t{1} << 61)) >> 62;        // nearest quarter turn
  const std::int64_t frac = static_cast<std::int64_t>(F - (q << 62));  // in [-2^61, 2^61)
  // r = frac 2^-62 pi/2 with frac split into two floats (hi exact, lo its remainder).
  const float hi = static_cast<float>(frac);
  const float lo = static_cast<float>(frac - static_cast<std::int64_t>(hi));
  const float c_hi = kPio2A * 0x1p-62f, c_lo = kPio2B * 0x1p-62f;
  float r = fmaf(hi, c_hi, fmaf(hi, c_lo, lo * c_hi));
  int quad = static_cast<int>(q & 3u);
  if (x < 0.0f) {
    r = -r;
    quad = (4 - quad) & 3;
  }
  quadrant = quad;
  return r;
}

}  // namespace detmath_detail

// ---- exp family ----

// e^x: x = k ln2 + r, e^r = 1 + expm1_poly(r), times 2^k.
DETDL_HD float det_expf(float x) {
  using namespace detmath_detail;
  if (det_isnan(x)) return x + x;
  if (x > 89.0f) return det_inf();
  if (x < -104.0f) return 0.0f;  // below half the smallest subnormal
  float k;
  const float r = reduce_ln2(x, k);
  return scale_pow2(1.0f + expm1_poly(r), static_cast<int>(k));
}

// e^x - 1, accurate near 0: the polynomial alone for |x| <= ln2/2, else
// 2^k (1 + p) - 1 = fmaf(2^k, p, 2^k - 1) where 2^k - 1 is exact for |k| <= 24.
DETDL_HD float det_expm1f(float x) {
  using namespace detmath_detail;
  if (det_isnan(x)) return x + x;
  const float ax = det_fabsf(x);
  if (ax < 0x1p-25f) return x;  // expm1(x) rounds to x; keeps -0
  if (ax <= 0.34657359f) return expm1_poly(x);
  if (x > 16.0f) return det_expf(x) - 1.0f;  // the -1 is below half an ulp or nearly
  if (x < -17.0f) return -1.0f + det_expf(x);
  float k;
  const float r = reduce_ln2(x, k);
  const float s = det_pow2i(static_cast<int>(k));
  return fmaf(s, expm1_poly(r), s - 1.0f);
}

// ---- log family ----

// log x: x = 2^k m with m in [sqrt(1/2), sqrt(2)), log x = k ln2 + log(1 + (m - 1)).
DETDL_HD float det_logf(float x) {
  using namespace detmath_detail;
  std::uint32_t ix = det_float_bits(x);
  if (det_isnan(x)) return x + x;
  if ((ix & 0x7fffffffu) == 0) return -det_inf();
  if (ix >> 31) return det_nan();
  if (ix == 0x7f800000u) return x;
  int k = 0;
  if (ix < 0x00800000u) {  // subnormal: scale into the normal range
    ix = det_float_bits(x * 0x1p23f);
    k = -23;
  }
  // Offsetting by 1 - sqrt(1/2) in the exponent field puts m >= sqrt(2) in the next binade.
  ix += 0x3f800000u - 0x3f3504f3u;
  k += static_cast<int>(ix >> 23) - 127;
  const float m = det_bits_float((ix & 0x007fffffu) + 0x3f3504f3u);
  return log_kernel(static_cast<float>(k), m - 1.0f, 0.0f);  // m - 1 is exact (Sterbenz)
}

// log(1 + x), accurate near 0: for 1 + x in [sqrt(1/2), sqrt(2)] the kernel takes f = x
// itself (no rounding of 1 + x at all); otherwise u = 1 + x is split as in det_logf and
// the rounding error of u (exact by Fast2Sum) is added as c / u.
DETDL_HD float det_log1pf(float x) {
  using namespace detmath_detail;
  if (det_isnan(x)) return x + x;
  if (x == -1.0f) return -det_inf();
  if (x < -1.0f) return det_nan();
  if (x == det_inf()) return x;
  const float ax = det_fabsf(x);
  if (ax < 0x1p-25f) return x;  // log1p(x) rounds to x; keeps -0
  if (x > -0.29289322f && x < 0.41421357f) return log_kernel(0.0f, x, 0.0f);
  const float u = 1.0f + x;
  const float c = ax <= 1.0f ? x - (u - 1.0f) : 1.0f - (u - x);  // (1 + x) - u exactly
  std::uint32_t iu = det_float_bits(u) + (0x3f800000u - 0x3f3504f3u);
  const int k = static_cast<int>(iu >> 23) - 127;
  const float m = det_bits_float((iu & 0x007fffffu) + 0x3f3504f3u);
  return log_kernel(static_cast<float>(k), m - 1.0f, c / u);
}

// ---- tanh ----

// tanh x = t / (t + 2) with t = expm1(2|x|), sign restored; |x| < 2^-12 gives x (the
// cubic term is below half an ulp) and |x| > 9.1 gives +-1 (1 - tanh < 2^-26).
DETDL_HD float det_tanhf(float x) {
  const float ax = det_fabsf(x);
  if (ax < 0x1p-12f) return x;
  if (ax > 9.1f) return det_copysignf(1.0f, x);
  const float t = det_expm1f(2.0f * ax);
  return det_copysignf(t / (t + 2.0f), x);  // NaN stays NaN
}

// ---- sin, cos ----

DETDL_HD float det_sinf(float x) {
  using namespace detmath_detail;
  if (det_fabsf(x) < 0x1p-12f) return x;          // sin x rounds to x; keeps -0
  if (!(det_fabsf(x) < det_inf())) return x - x;  // NaN for inf and NaN
  int q;
  const float r = reduce_pio2(x, q);
  switch (q) {
    case 0: return sin_poly(r);
    case 1: return cos_poly(r);
    case 2: return -sin_poly(r);
    default: return -cos_poly(r);
  }
}

DETDL_HD float det_cosf(float x) {
  using namespace detmath_detail;
  if (!(det_fabsf(x) < det_inf())) return x - x;
  int q;
  const float r = reduce_pio2(x, q);
  switch (q) {
    case 0: return cos_poly(r);
    case 1: return -sin_poly(r);
    case 2: return -cos_poly(r);
    default: return sin_poly(r);
  }
}

}  // namespace detdl
