// The second math implementation (kernels/common/detmath_alt.h) against libm in float64:
// maximum ulp error over every 97th float of each function's useful range and a dense
// sweep of [-20, 20], the C99 Annex F special values, and that it really is another
// implementation (its bits differ from detmath.h's on many inputs).
#include "kernels/common/detmath_alt.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

namespace detdl {
namespace {

float from_bits(std::uint32_t u) { return det_bits_float(u); }

// |got - ref| in ulps of the float nearest ref (the subnormal ulp below 2^-126); a wrong
// NaN / inf counts as a huge error.
double ulp_error(float got, double ref) {
  if (std::isnan(ref)) return std::isnan(got) ? 0.0 : 1e30;
  if (std::isnan(got)) return 1e30;
  const float rf = static_cast<float>(ref);
  if (std::isinf(rf)) {
    if (std::isinf(got) && (got > 0) == (ref > 0)) return 0.0;
    return std::fabs(static_cast<double>(got) - ref) / std::ldexp(1.0, 104);
  }
  if (std::isinf(got)) return 1e30;
  int e;
  std::frexp(static_cast<double>(rf == 0.0f ? FLT_MIN : rf), &e);
  const int ulp_exp = (e - 1 < -126 ? -126 : e - 1) - 23;
  return std::fabs(static_cast<double>(got) - ref) / std::ldexp(1.0, ulp_exp);
}

struct Worst {
  double ulp = 0.0;
  float x = 0.0f;
  std::int64_t differs = 0;  // inputs where the alternative's bits differ from detmath.h's
  std::int64_t n = 0;
};

// Every 97th bit pattern whose float lies in [lo, hi] (both signs), plus a dense sweep of
// [-20, 20] clipped to [lo, hi].
template <class F, class C, class R>
Worst measure(F f, C canon, R ref, float lo, float hi) {
  Worst w;
  auto add = [&](float x) {
    if (!(x >= lo && x <= hi)) return;
    const float y = f(x);
    const double u = ulp_error(y, ref(static_cast<double>(x)));
    if (u > w.ulp) w.ulp = u, w.x = x;
    w.differs += det_float_bits(y) != det_float_bits(canon(x));
    ++w.n;
  };
  for (std::uint64_t b = 0; b < (std::uint64_t{1} << 32); b += 97)
    add(from_bits(static_cast<std::uint32_t>(b)));
  constexpr int kDense = 1 << 20;
  for (int i = 0; i <= kDense; ++i) add(-20.0f + 40.0f * (static_cast<float>(i) / kDense));
  return w;
}

void check(const char* name, const Worst& w, double bound) {
  std::printf(
      "alt %-6s max ulp %.3f at x = %a over %lld inputs (bound %.1f); bits differ from "
      "detmath.h on %lld\n",
      name, w.ulp, w.x, static_cast<long long>(w.n), bound, static_cast<long long>(w.differs));
  EXPECT_LE(w.ulp, bound) << name << " at x = " << w.x;
  // Another implementation, not a copy: it must round differently on a real share (most
  // swept bit patterns are tiny or saturate, where both give the same correctly rounded
  // value, so the share is small for an accurate exp).
  EXPECT_GT(w.differs, w.n / 10000) << name;
}

const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kDenorm = from_bits(1u);

TEST(DetmathAlt, ExpWithin2Ulp) {
  const auto w = measure(
      alt_expf, det_expf, [](double x) { return std::exp(x); }, -110.0f, 90.0f);
  check("exp", w, 2.0);
}

TEST(DetmathAlt, Expm1WithinBound) {
  const auto w = measure(
      alt_expm1f, det_expm1f, [](double x) { return std::expm1(x); }, -110.0f, 90.0f);
  check("expm1", w, 2.0);
}

TEST(DetmathAlt, LogWithin2Ulp) {
  const auto w = measure(
      alt_logf, det_logf, [](double x) { return std::log(x); }, 0.0f, FLT_MAX);
  check("log", w, 2.0);
}

TEST(DetmathAlt, Log1pWithinBound) {
  const auto w = measure(
      alt_log1pf, det_log1pf, [](double x) { return std::log1p(x); }, -1.0f, FLT_MAX);
  check("log1p", w, 2.0);
}

TEST(DetmathAlt, TanhWithinBound) {
  const auto w = measure(
      alt_tanhf, det_tanhf, [](double x) { return std::tanh(x); }, -FLT_MAX, FLT_MAX);
  check("tanh", w, 2.0);
}

TEST(DetmathAlt, SpecialValues) {
  auto bits = [](float x) { return det_float_bits(x); };
  // exp: NaN, +-inf, +-0, subnormals, overflow and underflow thresholds.
  EXPECT_TRUE(std::isnan(alt_expf(kNaN)));
  EXPECT_EQ(alt_expf(kInf), kInf);
  EXPECT_EQ(bits(alt_expf(-kInf)), 0u);
  EXPECT_EQ(alt_expf(0.0f), 1.0f);
  EXPECT_EQ(alt_expf(-0.0f), 1.0f);
  EXPECT_EQ(alt_expf(kDenorm), 1.0f);
  EXPECT_LE(ulp_error(alt_expf(88.7228f), std::exp(static_cast<double>(88.7228f))), 2.0);
  EXPECT_EQ(alt_expf(88.7229f), kInf);  // e^88.7229 > FLT_MAX
  EXPECT_EQ(alt_expf(89.0f), kInf);
  EXPECT_LE(ulp_error(alt_expf(-87.3f), std::exp(static_cast<double>(-87.3f))),
            2.0);  // near FLT_MIN
  EXPECT_LE(ulp_error(alt_expf(-103.2f), std::exp(static_cast<double>(-103.2f))),
            2.0);                          // smallest subnormals
  EXPECT_EQ(bits(alt_expf(-104.5f)), 0u);  // below 2^-150
  // expm1: signed zero, subnormals kept; -1 and inf at the ends.
  EXPECT_EQ(bits(alt_expm1f(-0.0f)), bits(-0.0f));
  EXPECT_EQ(bits(alt_expm1f(kDenorm)), bits(kDenorm));
  EXPECT_EQ(alt_expm1f(-kInf), -1.0f);
  EXPECT_EQ(alt_expm1f(kInf), kInf);
  EXPECT_TRUE(std::isnan(alt_expm1f(kNaN)));
  // log: log(+-0) = -inf, log(negative) = NaN, log(1) = +0, log(inf) = inf, subnormals.
  EXPECT_EQ(alt_logf(0.0f), -kInf);
  EXPECT_EQ(alt_logf(-0.0f), -kInf);
  EXPECT_TRUE(std::isnan(alt_logf(-1.0f)));
  EXPECT_TRUE(std::isnan(alt_logf(kNaN)));
  EXPECT_EQ(bits(alt_logf(1.0f)), 0u);
  EXPECT_EQ(alt_logf(kInf), kInf);
  EXPECT_LE(ulp_error(alt_logf(kDenorm), std::log(std::ldexp(1.0, -149))), 2.0);
  EXPECT_LE(ulp_error(alt_logf(FLT_MAX), std::log(static_cast<double>(FLT_MAX))), 2.0);
  // log1p: -1 -> -inf, below -1 -> NaN, signed zero and subnormals kept.
  EXPECT_EQ(alt_log1pf(-1.0f), -kInf);
  EXPECT_TRUE(std::isnan(alt_log1pf(-2.0f)));
  EXPECT_TRUE(std::isnan(alt_log1pf(kNaN)));
  EXPECT_EQ(alt_log1pf(kInf), kInf);
  EXPECT_EQ(bits(alt_log1pf(-0.0f)), bits(-0.0f));
  EXPECT_EQ(bits(alt_log1pf(kDenorm)), bits(kDenorm));
  EXPECT_LE(ulp_error(alt_log1pf(FLT_MAX), std::log1p(static_cast<double>(FLT_MAX))), 2.0);
  // tanh: +-inf -> +-1, signed zero and subnormals kept, NaN.
  EXPECT_EQ(alt_tanhf(kInf), 1.0f);
  EXPECT_EQ(alt_tanhf(-kInf), -1.0f);
  EXPECT_EQ(bits(alt_tanhf(-0.0f)), bits(-0.0f));
  EXPECT_EQ(bits(alt_tanhf(-kDenorm)), bits(-kDenorm));
  EXPECT_TRUE(std::isnan(alt_tanhf(kNaN)));
}

// impl_* picks the engine's own function or the alternative, nothing else.
TEST(DetmathAlt, ImplSwitch) {
  for (float x : {-3.7f, -0.1f, 0.3f, 2.5f, 40.0f}) {
    EXPECT_EQ(det_float_bits(impl_expf(false, x)), det_float_bits(det_expf(x)));
    EXPECT_EQ(det_float_bits(impl_expf(true, x)), det_float_bits(alt_expf(x)));
    EXPECT_EQ(det_float_bits(impl_expm1f(false, x)), det_float_bits(det_expm1f(x)));
    EXPECT_EQ(det_float_bits(impl_expm1f(true, x)), det_float_bits(alt_expm1f(x)));
    EXPECT_EQ(det_float_bits(impl_tanhf(false, x)), det_float_bits(det_tanhf(x)));
    EXPECT_EQ(det_float_bits(impl_tanhf(true, x)), det_float_bits(alt_tanhf(x)));
    const float y = det_fabsf(x);
    EXPECT_EQ(det_float_bits(impl_logf(false, y)), det_float_bits(det_logf(y)));
    EXPECT_EQ(det_float_bits(impl_logf(true, y)), det_float_bits(alt_logf(y)));
    EXPECT_EQ(det_float_bits(impl_log1pf(false, y)), det_float_bits(det_log1pf(y)));
    EXPECT_EQ(det_float_bits(impl_log1pf(true, y)), det_float_bits(alt_log1pf(y)));
  }
}

}  // namespace
}  // namespace detdl
