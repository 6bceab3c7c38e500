// The engine's own math (kernels/common/detmath.h) against libm in float64: maximum ulp
// error over a sweep of the whole float range (every 997th bit pattern, ~4.3 million
// values), a dense sweep of [-20, 20] (and of the ranges that matter for log), and the
// special values of C99 Annex F.
#include "kernels/common/detmath.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

namespace detdl {
namespace {

float from_bits(std::uint32_t u) { return det_bits_float(u); }

// |got - ref| in units of the last place of the float nearest ref (subnormal ulp below
// 2^-126). A result that must be NaN or inf counts as exact only when it is; a mismatch
// there is reported as a huge error.
double ulp_error(float got, double ref) {
  if (std::isnan(ref)) return std::isnan(got) ? 0.0 : 1e30;
  if (std::isnan(got)) return 1e30;
  const float rf = static_cast<float>(ref);
  if (std::isinf(rf)) {
    if (std::isinf(got) && (got > 0) == (ref > 0)) return 0.0;
    // ref just beyond FLT_MAX: FLT_MAX is within an ulp.
    return std::fabs(static_cast<double>(got) - ref) / std::ldexp(1.0, 104);
  }
  if (std::isinf(got)) return 1e30;
  int e;
  std::frexp(static_cast<double>(rf == 0.0f ? FLT_MIN : rf), &e);  // rf in [2^(e-1), 2^e)
  const int ulp_exp = (e - 1 < -126 ? -126 : e - 1) - 23;
  return std::fabs(static_cast<double>(got) - ref) / std::ldexp(1.0, ulp_exp);
}

struct Worst {
  double ulp = 0.0;
  float x = 0.0f;
  void add(float x_, double u) {
    if (u > ulp) {
      ulp = u;
      x = x_;
    }
  }
};

template <class F, class R>
Worst sweep(F f, R ref, bool (*domain)(float)) {
  Worst w;
  for (std::uint64_t b = 0; b < (std::uint64_t{1} << 32); b += 997) {
    const float x = from_bits(static_cast<std::uint32_t>(b));
    if (domain && !domain(x)) continue;
    w.add(x, ulp_error(f(x), ref(static_cast<double>(x))));
  }
  return w;
}

template <class F, class R>
Worst dense(F f, R ref, float lo, float hi, int n) {
  Worst w;
  for (int i = 0; i <= n; ++i) {
    const float x = lo + (hi - lo) * (static_cast<float>(i) / static_cast<float>(n));
    w.add(x, ulp_error(f(x), ref(static_cast<double>(x))));
  }
  return w;
}

void report(const char* name, const Worst& a, const Worst& b, double bound) {
  std::printf("%-6s max ulp: full range %.3f (x = %a), dense %.3f (x = %a); bound %.1f\n", name,
              a.ulp, a.x, b.ulp, b.x, bound);
  EXPECT_LE(a.ulp, bound) << name << " at x = " << a.x;
  EXPECT_LE(b.ulp, bound) << name << " at x = " << b.x;
}

constexpr int kDense = 1 << 20;
const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

bool is_negzero(float x) { return x == 0.0f && std::signbit(x); }
bool is_poszero(float x) { return x == 0.0f && !std::signbit(x); }

TEST(DetMath, ExpAccuracy) {
  auto f = [](float x) { return det_expf(x); };
  auto r = [](double x) { return std::exp(x); };
  report("exp", sweep(f, r, nullptr), dense(f, r, -20.0f, 20.0f, kDense), 2.0);
  // Near overflow and deep in the subnormals.
  report("exp", dense(f, r, 80.0f, 89.0f, kDense / 4), dense(f, r, -104.0f, -85.0f, kDense / 4),
         2.0);
}

TEST(DetMath, Expm1Accuracy) {
  auto f = [](float x) { return det_expm1f(x); };
  auto r = [](double x) { return std::expm1(x); };
  report("expm1", sweep(f, r, nullptr), dense(f, r, -20.0f, 20.0f, kDense), 4.0);
  report("expm1", dense(f, r, -1.0f, 1.0f, kDense), dense(f, r, -1e-3f, 1e-3f, kDense / 4), 4.0);
}

TEST(DetMath, LogAccuracy) {
  auto f = [](float x) { return det_logf(x); };
  auto r = [](double x) { return std::log(x); };
  auto pos = [](float x) { return x > 0.0f; };
  report("log", sweep(f, r, +pos), dense(f, r, 1e-6f, 20.0f, kDense), 2.0);
  report("log", dense(f, r, 0.5f, 2.0f, kDense), dense(f, r, 0.99f, 1.01f, kDense / 4), 2.0);
}

TEST(DetMath, Log1pAccuracy) {
  auto f = [](float x) { return det_log1pf(x); };
  auto r = [](double x) { return std::log1p(x); };
  auto dom = [](float x) { return x > -1.0f; };
  report("log1p", sweep(f, r, +dom), dense(f, r, -0.999999f, 20.0f, kDense), 4.0);
  report("log1p", dense(f, r, -0.5f, 1.0f, kDense), dense(f, r, -1e-3f, 1e-3f, kDense / 4), 4.0);
}

TEST(DetMath, TanhAccuracy) {
  auto f = [](float x) { return det_tanhf(x); };
  auto r = [](double x) { return std::tanh(x); };
  report("tanh", sweep(f, r, nullptr), dense(f, r, -20.0f, 20.0f, kDense), 4.0);
  report("tanh", dense(f, r, -1.0f, 1.0f, kDense), dense(f, r, 8.0f, 10.0f, kDense / 4), 4.0);
}

TEST(DetMath, SinAccuracy) {
  auto f = [](float x) { return det_sinf(x); };
  auto r = [](double x) { return std::sin(x); };
  report("sin", sweep(f, r, nullptr), dense(f, r, -20.0f, 20.0f, kDense), 4.0);
  // Both reductions: Cody-Waite below 2^17 and Payne-Hanek above.
  report("sin", dense(f, r, 1e4f, 131072.0f, kDense / 2), dense(f, r, 131072.0f, 1e7f, kDense / 2),
         4.0);
}

TEST(DetMath, CosAccuracy) {
  auto f = [](float x) { return det_cosf(x); };
  auto r = [](double x) { return std::cos(x); };
  report("cos", sweep(f, r, nullptr), dense(f, r, -20.0f, 20.0f, kDense), 4.0);
  report("cos", dense(f, r, 1e4f, 131072.0f, kDense / 2), dense(f, r, 131072.0f, 1e7f, kDense / 2),
         4.0);
}

// Arguments closest to multiples of pi/2 stress the reduction: sin(float(pi)) = -8.74e-8.
TEST(DetMath, SinCosNearMultiplesOfHalfPi) {
  for (int k = 1; k < 2000; ++k) {
    const double t = k * (M_PI / 2);
    const float x = static_cast<float>(t);
    for (float y : {x, std::nextafter(x, 0.0f), std::nextafter(x, kInf)}) {
      EXPECT_LE(ulp_error(det_sinf(y), std::sin(static_cast<double>(y))), 4.0) << y;
      EXPECT_LE(ulp_error(det_cosf(y), std::cos(static_cast<double>(y))), 4.0) << y;
    }
  }
}

TEST(DetMath, SpecialValues) {
  // exp
  EXPECT_TRUE(std::isnan(det_expf(kNaN)));
  EXPECT_EQ(det_expf(kInf), kInf);
  EXPECT_TRUE(is_poszero(det_expf(-kInf)));
  EXPECT_EQ(det_expf(0.0f), 1.0f);
  EXPECT_EQ(det_expf(-0.0f), 1.0f);
  EXPECT_EQ(det_expf(88.8f), kInf);
  EXPECT_EQ(det_expf(from_bits(0x42b17218u)), kInf);  // first float whose exp overflows
  EXPECT_TRUE(std::isfinite(det_expf(from_bits(0x42b17217u))));
  EXPECT_TRUE(is_poszero(det_expf(-104.0f)));
  EXPECT_GT(det_expf(-103.0f), 0.0f);  // a subnormal
  EXPECT_LT(det_expf(-103.0f), FLT_MIN);
  // expm1
  EXPECT_TRUE(std::isnan(det_expm1f(kNaN)));
  EXPECT_EQ(det_expm1f(kInf), kInf);
  EXPECT_EQ(det_expm1f(-kInf), -1.0f);
  EXPECT_TRUE(is_poszero(det_expm1f(0.0f)));
  EXPECT_TRUE(is_negzero(det_expm1f(-0.0f)));
  EXPECT_EQ(det_expm1f(1e-30f), 1e-30f);
  EXPECT_EQ(det_expm1f(-50.0f), -1.0f);
  // log
  EXPECT_TRUE(std::isnan(det_logf(kNaN)));
  EXPECT_TRUE(std::isnan(det_logf(-1.0f)));
  EXPECT_TRUE(std::isnan(det_logf(-kInf)));
  EXPECT_TRUE(std::isnan(det_logf(-FLT_MIN)));
  EXPECT_EQ(det_logf(0.0f), -kInf);
  EXPECT_EQ(det_logf(-0.0f), -kInf);
  EXPECT_EQ(det_logf(kInf), kInf);
  EXPECT_TRUE(is_poszero(det_logf(1.0f)));
  EXPECT_LE(ulp_error(det_logf(from_bits(1u)), std::log(std::ldexp(1.0, -149))), 2.0);
  // log1p
  EXPECT_TRUE(std::isnan(det_log1pf(kNaN)));
  EXPECT_TRUE(std::isnan(det_log1pf(-2.0f)));
  EXPECT_EQ(det_log1pf(-1.0f), -kInf);
  EXPECT_EQ(det_log1pf(kInf), kInf);
  EXPECT_TRUE(is_poszero(det_log1pf(0.0f)));
  EXPECT_TRUE(is_negzero(det_log1pf(-0.0f)));
  EXPECT_LE(ulp_error(det_log1pf(FLT_MAX), std::log1p(static_cast<double>(FLT_MAX))), 4.0);
  // tanh
  EXPECT_TRUE(std::isnan(det_tanhf(kNaN)));
  EXPECT_EQ(det_tanhf(kInf), 1.0f);
  EXPECT_EQ(det_tanhf(-kInf), -1.0f);
  EXPECT_TRUE(is_poszero(det_tanhf(0.0f)));
  EXPECT_TRUE(is_negzero(det_tanhf(-0.0f)));
  EXPECT_EQ(det_tanhf(-1e-20f), -1e-20f);
  // sin, cos
  for (float x : {kNaN, kInf, -kInf}) {
    EXPECT_TRUE(std::isnan(det_sinf(x))) << x;
    EXPECT_TRUE(std::isnan(det_cosf(x))) << x;
  }
  EXPECT_TRUE(is_poszero(det_sinf(0.0f)));
  EXPECT_TRUE(is_negzero(det_sinf(-0.0f)));
  EXPECT_EQ(det_cosf(0.0f), 1.0f);
  EXPECT_EQ(det_cosf(-0.0f), 1.0f);
  for (float x : {FLT_MAX, -FLT_MAX, 1e30f, -3e38f, 16777216.0f}) {
    EXPECT_LE(ulp_error(det_sinf(x), std::sin(static_cast<double>(x))), 4.0) << x;
    EXPECT_LE(ulp_error(det_cosf(x), std::cos(static_cast<double>(x))), 4.0) << x;
  }
}

TEST(DetMath, Monotonic) {
  // exp and log are increasing: check consecutive floats over dense stretches.
  for (float start : {-103.0f, -20.0f, -1.0f, -1e-6f, 0.3f, 1.0f, 40.0f, 88.0f}) {
    float x = start, prev = det_expf(x);
    for (int i = 0; i < 20000; ++i) {
      x = std::nextafter(x, kInf);
      const float v = det_expf(x);
      ASSERT_GE(v, prev) << "exp not monotonic at " << x;
      prev = v;
    }
  }
  for (float start : {1e-40f, 1e-20f, 0.7f, 0.999f, 1.0f, 1.41f, 3.0f, 1e30f}) {
    float x = start, prev = det_logf(x);
    for (int i = 0; i < 20000; ++i) {
      x = std::nextafter(x, kInf);
      const float v = det_logf(x);
      ASSERT_GE(v, prev) << "log not monotonic at " << x;
      prev = v;
    }
  }
}

TEST(DetMath, Symmetry) {
  // Odd and even functions keep their symmetry exactly.
  for (int i = 1; i < 100000; ++i) {
    const float x = static_cast<float>(i) * 0.013f;
    ASSERT_EQ(det_sinf(-x), -det_sinf(x)) << x;
    ASSERT_EQ(det_cosf(-x), det_cosf(x)) << x;
    ASSERT_EQ(det_tanhf(-x), -det_tanhf(x)) << x;
  }
}

// The bits themselves, pinned: every golden weight hash of the engine depends on these
// functions, so a change to a coefficient or an operation order must show up here first
// (and the CUDA test must reproduce the same hashes). FNV-1a over the outputs of a sweep.
std::uint64_t output_hash(float (*f)(float)) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::uint64_t b = 0; b < (std::uint64_t{1} << 32); b += 65537) {
    const float v = f(from_bits(static_cast<std::uint32_t>(b)));
    // NaN payloads and signs differ between CPUs and GPUs; IEEE leaves them open.
    const std::uint32_t y = std::isnan(v) ? 0x7fc00000u : det_float_bits(v);
    for (int k = 0; k < 4; ++k) h = (h ^ ((y >> (8 * k)) & 0xffu)) * 0x100000001b3ull;
  }
  return h;
}

TEST(DetMath, PinnedBits) {
  const struct {
    const char* name;
    float (*f)(float);
    std::uint64_t want;
  } cases[] = {
      {"exp", [](float x) { return det_expf(x); }, 0xfcdae2c831aa8681ull},
      {"expm1", [](float x) { return det_expm1f(x); }, 0xc6e5b9d57f652516ull},
      {"log", [](float x) { return det_logf(x); }, 0xa1ef6602bfd201b5ull},
      {"log1p", [](float x) { return det_log1pf(x); }, 0x3f4b33b2828bdd84ull},
      {"tanh", [](float x) { return det_tanhf(x); }, 0x0369bbc2c439449cull},
      {"sin", [](float x) { return det_sinf(x); }, 0x846416660326edebull},
      {"cos", [](float x) { return det_cosf(x); }, 0x5610998d0bc5cb67ull},
  };
  for (const auto& c : cases) {
    const std::uint64_t h = output_hash(c.f);
    std::printf("%-6s output hash 0x%016llxull\n", c.name, static_cast<unsigned long long>(h));
    EXPECT_EQ(h, c.want) << c.name << ": the function's bits changed (update every golden hash)";
  }
}

}  // namespace
}  // namespace detdl
