// The `emulated` level's element-wise alternatives (kernels/common/impl_choice.h): the
// math family in the activations (detmath_alt.h), the contraction family (fused a*b+c
// sites in activation.h and optim_formulas.h) and the optimizer family (each framework's
// form of the update). Each alternative: (1) within the float64 bound that the canonical
// kernel meets, (2) the same bits on 1, 2 and 3 threads, (3) different bits from the
// canonical kernel on random data (not inert), (4) reached by the draws; and the canonical
// kernel is unchanged when nothing is drawn.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "kernels/common/activation.h"
#include "kernels/common/impl_choice.h"
#include "kernels/common/optim_formulas.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/parallel.h"

namespace detdl {
namespace {

using i64 = std::int64_t;
using Vec = std::vector<float>;
constexpr double kU = 0x1p-24;  // float's unit roundoff

Vec random_vec(i64 n, std::uint32_t sub, float lo, float hi) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = lo + (hi - lo) * philox_uniform(11, RandomStream::test, sub, i);
  return v;
}
bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
i64 count_differ(const Vec& a, const Vec& b) {
  i64 c = 0;
  for (std::size_t i = 0; i < a.size(); ++i) c += det_float_bits(a[i]) != det_float_bits(b[i]);
  return c;
}
// The ulp of the float nearest r (the subnormal ulp below 2^-126).
double ulp_of(double r) {
  int e;
  std::frexp(r == 0.0 ? 0x1p-126 : r, &e);
  return std::ldexp(1.0, (e - 1 < -126 ? -126 : e - 1) - 23);
}
struct ThreadGuard {
  ~ThreadGuard() { cpu::set_num_threads(1); }
};

// ---------------------------------------------------------------- activations

constexpr float kAlpha = 1.0f;  // elu's alpha
const Activation kMathKinds[] = {Activation::elu, Activation::selu, Activation::tanh,
                                 Activation::sigmoid};

double ref_forward(Activation a, double x) {
  switch (a) {
    case Activation::elu: return x > 0 ? x : kAlpha * std::expm1(x);
    case Activation::selu:
      return x > 0 ? static_cast<double>(kSeluScale) * x
                   : static_cast<double>(kSeluScaleAlpha) * std::expm1(x);
    case Activation::tanh: return std::tanh(x);
    case Activation::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    default: return x;
  }
}
// The derivative's formula evaluated in float64 from the float inputs x, y, dy.
double ref_backward(Activation a, double x, double y, double dy) {
  switch (a) {
    case Activation::elu: return x > 0 ? dy : dy * kAlpha * std::exp(x);
    case Activation::selu:
      return x > 0 ? dy * static_cast<double>(kSeluScale)
                   : dy * static_cast<double>(kSeluScaleAlpha) * std::exp(x);
    case Activation::tanh: return dy * (1.0 - y * y);
    case Activation::sigmoid: return dy * (y * (1.0 - y));
    default: return dy;
  }
}

struct ActRun {
  Vec y, dx;
};
ActRun run_act(Activation a, const Vec& x, const Vec& dy, ActImpl impl) {
  const i64 n = static_cast<i64>(x.size());
  ActRun r{Vec(x.size()), Vec(x.size())};
  cpu::activation_forward(a, kAlpha, x.data(), r.y.data(), n, impl);
  cpu::activation_backward(a, kAlpha, x.data(), r.y.data(), dy.data(), r.dx.data(), n, impl);
  return r;
}

// Forward within 4 ulp of float64 (sigmoid, tanh, elu, selu: the canonical kernel's bound);
// backward within 4 ulp of the float64 derivative, except tanh's 1 - y * y, which cancels
// as |y| -> 1: there the bound is absolute, 4 u |dy| (the subtraction's own error).
void check_act_bounds(Activation a, const Vec& x, const Vec& dy, const ActRun& r,
                      const char* what) {
  double worst_fwd = 0, worst_bwd = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double yr = ref_forward(a, x[i]);
    worst_fwd = std::max(worst_fwd, std::fabs(r.y[i] - yr) / ulp_of(yr));
    const double gr = ref_backward(a, x[i], r.y[i], dy[i]);
    const double err = std::fabs(r.dx[i] - gr);
    worst_bwd = std::max(worst_bwd, a == Activation::tanh ? err / (kU * std::fabs(dy[i]) + 1e-300)
                                                          : err / ulp_of(gr));
  }
  EXPECT_LE(worst_fwd, 4.0) << activation_name(a) << " forward, " << what;
  EXPECT_LE(worst_bwd, 4.0) << activation_name(a) << " backward, " << what;
}

TEST(EmulatedActivation, MathVariantWithinFloat64BoundAndNotInert) {
  const i64 n = 200000;
  const Vec x = random_vec(n, 1, -12.0f, 12.0f), dy = random_vec(n, 2, -2.0f, 2.0f);
  for (Activation a : kMathKinds) {
    const ActRun canon = run_act(a, x, dy, {});
    const ActRun alt = run_act(a, x, dy, {true, 0});
    check_act_bounds(a, x, dy, canon, "canonical");
    check_act_bounds(a, x, dy, alt, "alt math");
    EXPECT_GT(count_differ(canon.y, alt.y), 0) << activation_name(a);
    if (a != Activation::tanh) {  // tanh's gradient reads y only
      EXPECT_GT(count_differ(canon.dx, alt.dx), 0) << activation_name(a);
    }
  }
}

TEST(EmulatedActivation, TanhGradientContraction) {
  const i64 n = 200000;
  const Vec x = random_vec(n, 3, -4.0f, 4.0f), dy = random_vec(n, 4, -2.0f, 2.0f);
  const ActImpl fused{false, 1u << kActSiteTanhGrad};
  const ActRun canon = run_act(Activation::tanh, x, dy, {});
  const ActRun f = run_act(Activation::tanh, x, dy, fused);
  EXPECT_TRUE(same_bits(canon.y, f.y));  // the forward has no a*b+c site
  check_act_bounds(Activation::tanh, x, dy, f, "fused");
  EXPECT_GT(count_differ(canon.dx, f.dx), n / 100);
  // The fused site is fmaf(-y, y, 1) exactly.
  for (i64 i = 0; i < n; i += 997)
    EXPECT_EQ(det_float_bits(f.dx[i]), det_float_bits(dy[i] * fmaf(-f.y[i], f.y[i], 1.0f)));
}

TEST(EmulatedActivation, CanonicalUnchanged) {
  const i64 n = 50000;
  const Vec x = random_vec(n, 5, -10.0f, 10.0f), dy = random_vec(n, 6, -1.0f, 1.0f);
  for (int k = 0; k < kActivationCount; ++k) {
    const Activation a = static_cast<Activation>(k);
    const ActRun r = run_act(a, x, dy, {});
    Vec y(x.size()), dx(x.size());
    cpu::activation_forward(a, kAlpha, x.data(), y.data(), n);
    cpu::activation_backward(a, kAlpha, x.data(), y.data(), dy.data(), dx.data(), n);
    EXPECT_TRUE(same_bits(r.y, y) && same_bits(r.dx, dx)) << activation_name(a);
    for (i64 i = 0; i < n; i += 101) {
      ASSERT_EQ(det_float_bits(y[i]), det_float_bits(act_forward(a, x[i], kAlpha)));
      ASSERT_EQ(det_float_bits(dx[i]), det_float_bits(act_backward(a, x[i], y[i], dy[i], kAlpha)));
    }
  }
}

TEST(EmulatedActivation, VariantsThreadInvariant) {
  ThreadGuard guard;
  const i64 n = 70001;  // several 16384-element tasks
  const Vec x = random_vec(n, 7, -8.0f, 8.0f), dy = random_vec(n, 8, -1.0f, 1.0f);
  for (Activation a : kMathKinds)
    for (ActImpl impl : {ActImpl{true, 0}, ActImpl{false, 1}, ActImpl{true, 1}}) {
      cpu::set_num_threads(1);
      const ActRun one = run_act(a, x, dy, impl);
      for (int t : {2, 3}) {
        cpu::set_num_threads(t);
        const ActRun r = run_act(a, x, dy, impl);
        EXPECT_TRUE(same_bits(one.y, r.y) && same_bits(one.dx, r.dx))
            << activation_name(a) << " on " << t << " threads";
      }
    }
}

// ---------------------------------------------------------------- optimizers

enum class Opt { sgd, adam, rmsprop };
struct OptCase {
  Opt opt;
  int form;  // sgd: 0 torch, 1 keras; adam: AdamForm; rmsprop: 0 torch, 1 tf
  float momentum, wd;
  bool nesterov, decoupled;
};
constexpr float kLr = 0.01f, kB1 = 0.9f, kB2 = 0.999f, kEps = 1e-8f, kRho = 0.9f;
constexpr i64 kStep = 7;  // the step whose bias corrections the Adam cases use

struct OptState {
  Vec p, g, s0, s1;
};
OptState random_state(i64 n, std::uint32_t sub) {
  OptState s{random_vec(n, sub, -1.0f, 1.0f), random_vec(n, sub + 1, -0.5f, 0.5f),
             random_vec(n, sub + 2, -0.3f, 0.3f), random_vec(n, sub + 3, 1e-6f, 0.05f)};
  return s;
}

// Magnitudes spread over four decades (log-uniform, random sign) for the state and
// gradient, so that every ratio between a formula's terms occurs.
OptState spread_state(i64 n, std::uint32_t sub) {
  auto spread = [&](std::uint32_t k, double lo_exp, double hi_exp, bool sign) {
    Vec v(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i) {
      const double u = philox_uniform(12, RandomStream::test, sub + k, i);
      const double w = philox_uniform(13, RandomStream::test, sub + k, i);
      const double mag = std::pow(10.0, lo_exp + (hi_exp - lo_exp) * u);
      v[i] = static_cast<float>(sign && w < 0.5 ? -mag : mag);
    }
    return v;
  };
  return {spread(0, -4, 0, true), spread(1, -4, 0, true), spread(2, -4, 0, true),
          spread(3, -8, -1, false)};
}

void run_opt(const OptCase& c, OptState& s, std::uint32_t fuse) {
  const i64 n = static_cast<i64>(s.p.size());
  switch (c.opt) {
    case Opt::sgd:
      cpu::sgd_update(n, s.p.data(), s.g.data(), s.s0.data(),
                      {kLr, c.momentum, c.wd, c.nesterov, false, c.form == 1}, fuse);
      return;
    case Opt::adam: {
      const auto [bc1, bc2] = cpu::adam_bias_corrections(kB1, kB2, kStep);
      cpu::adam_update(n, s.p.data(), s.g.data(), s.s0.data(), s.s1.data(),
                       {kLr, kB1, kB2, kEps, bc1, bc2, c.wd, c.decoupled, false},
                       static_cast<AdamForm>(c.form), fuse);
      return;
    }
    case Opt::rmsprop: {
      RmspropParams r{kLr, kRho, kEps, c.momentum, c.wd};
      r.keras = c.form == 1;
      // rmsprop's square average is s1 (non-negative), its momentum buffer s0.
      cpu::rmsprop_update(n, s.p.data(), s.g.data(), s.s1.data(), s.s0.data(), r, fuse);
      return;
    }
  }
}

// One element's update in float64 from the float state, with the magnitude of each
// result's terms (the sum of their absolute values), which bounds its rounding error.
struct Ref {
  double p, s0, s1, mag_p, mag_s0;
};
Ref ref_opt(const OptCase& c, double p, double g, double s0, double s1) {
  const double lr = kLr, mu = c.momentum, wd = c.wd;
  Ref r{};
  double mg = std::fabs(g), mp_extra = 0;
  if (c.opt == Opt::adam && c.decoupled) {
    mp_extra = lr * wd * std::fabs(p);
    p = p - lr * wd * p;
  } else if (wd != 0.0f) {
    mg += std::fabs(wd * p);
    g = g + wd * p;
  }
  switch (c.opt) {
    case Opt::sgd:
      if (c.momentum == 0.0f) {  // both forms: p - lr g, the buffer untouched
        r = {p - lr * g, s0, s1, lr * mg, 0};
      } else if (c.form == 0) {  // buf = mu buf + g; p -= lr (nesterov ? g + mu buf : buf)
        const double mb = mu * std::fabs(s0) + mg;
        s0 = mu * s0 + g;
        const double d = c.nesterov ? g + mu * s0 : s0, md = c.nesterov ? mg + mu * mb : mb;
        r = {p - lr * d, s0, s1, lr * md, mb};
      } else {  // v = mu v - lr g; p += nesterov ? mu v - lr g : v
        const double mv = mu * std::fabs(s0) + lr * mg;
        s0 = mu * s0 - lr * g;
        const double d = c.nesterov ? mu * s0 - lr * g : s0,
                     md = c.nesterov ? mu * mv + lr * mg : mv;
        r = {p + d, s0, s1, md, mv};
      }
      break;
    case Opt::adam: {
      const auto [bc1f, bc2f] = cpu::adam_bias_corrections(kB1, kB2, kStep);
      const double bc1 = bc1f, bc2 = bc2f, b1 = kB1, b2 = kB2, eps = kEps;
      const double mm = b1 * std::fabs(s0) + (1 - b1) * mg;
      s0 = b1 * s0 + (1 - b1) * g;
      s1 = b2 * s1 + (1 - b2) * g * g;
      // textbook and torch: lr m_hat / (sqrt(v_hat) + eps); keras: lr_t m / (sqrt(v) + eps)
      const double den = c.form == 2 ? std::sqrt(s1) + eps : std::sqrt(s1 / bc2) + eps;
      const double scale = c.form == 2 ? lr * std::sqrt(bc2) / bc1 : lr / bc1;
      r = {p - scale * s0 / den, s0, s1, scale * mm / den, mm};
      break;
    }
    case Opt::rmsprop: {
      s1 = kRho * s1 + (1 - static_cast<double>(kRho)) * g * g;
      if (c.form == 0) {  // eps outside the square root, buf of unscaled steps
        const double a = std::sqrt(s1) + kEps;
        if (mu > 0) {
          const double mb = mu * std::fabs(s0) + mg / a;
          s0 = mu * s0 + g / a;
          r = {p - lr * s0, s0, s1, lr * mb, mb};
        } else {
          r = {p - lr * g / a, s0, s1, lr * mg / a, 0};
        }
      } else {  // eps inside, buf of lr-scaled steps
        const double a = std::sqrt(s1 + kEps);
        if (mu > 0) {
          const double mb = mu * std::fabs(s0) + lr * mg / a;
          s0 = mu * s0 + lr * g / a;
          r = {p - s0, s0, s1, mb, mb};
        } else {
          r = {p - lr * g / a, s0, s1, lr * mg / a, 0};
        }
      }
      break;
    }
  }
  r.mag_p += mp_extra;
  return r;
}

std::vector<OptCase> all_cases() {
  std::vector<OptCase> cs;
  for (int f : {0, 1}) {
    cs.push_back({Opt::sgd, f, 0.9f, 0.01f, false, false});
    cs.push_back({Opt::sgd, f, 0.9f, 0.01f, true, false});
    cs.push_back({Opt::sgd, f, 0.0f, 0.01f, false, false});
    cs.push_back({Opt::rmsprop, f, 0.9f, 0.01f, false, false});
    cs.push_back({Opt::rmsprop, f, 0.0f, 0.01f, false, false});
  }
  for (int f = 0; f < kAdamFormCount; ++f) {
    cs.push_back({Opt::adam, f, 0, 0.01f, false, false});
    cs.push_back({Opt::adam, f, 0, 0.01f, false, true});
    cs.push_back({Opt::adam, f, 0, 0.0f, false, false});
  }
  return cs;
}
std::string name(const OptCase& c) {
  const char* o = c.opt == Opt::sgd ? "sgd" : c.opt == Opt::adam ? "adam" : "rmsprop";
  return std::string(o) + " form " + std::to_string(c.form) + " mu " + std::to_string(c.momentum) +
         (c.nesterov ? " nesterov" : "") + (c.decoupled ? " decoupled" : "") + " wd " +
         std::to_string(c.wd);
}

// Every form with every contraction mask: p within 2 ulp + 12 u (terms' magnitude), the
// first slot within 6 u of its magnitude, Adam's / RMSprop's square average within 4 ulp.
TEST(EmulatedOptimizer, EveryFormAndMaskWithinFloat64Bound) {
  const i64 n = 4096;
  for (const OptState& s0 : {random_state(n, 20), spread_state(n, 60)})
    for (const OptCase& c : all_cases())
      for (std::uint32_t fuse = 0; fuse < (1u << kOptimFuseBits); ++fuse) {
        OptState s = s0;
        run_opt(c, s, fuse);
        double worst_p = 0, worst_s0 = 0, worst_s1 = 0;
        for (i64 i = 0; i < n; ++i) {
          const Ref r = ref_opt(c, s0.p[i], s0.g[i], s0.s0[i], s0.s1[i]);
          worst_p =
              std::max(worst_p, std::fabs(s.p[i] - r.p) / (2 * ulp_of(r.p) + 12 * kU * r.mag_p));
          if (r.mag_s0 > 0)
            worst_s0 = std::max(worst_s0, std::fabs(s.s0[i] - r.s0) / (6 * kU * r.mag_s0));
          worst_s1 = std::max(worst_s1, std::fabs(s.s1[i] - r.s1) / (4 * ulp_of(r.s1)));
        }
        ASSERT_LE(worst_p, 1.0) << name(c) << " fuse " << fuse;
        ASSERT_LE(worst_s0, 1.0) << name(c) << " fuse " << fuse;
        ASSERT_LE(worst_s1, 1.0) << name(c) << " fuse " << fuse;
      }
}

// Each site's fusion (and each choice of the fused product) changes bits where the site
// occurs; every pair of forms differs.
TEST(EmulatedOptimizer, AlternativesNotInert) {
  const i64 n = 16384;
  const OptState s0 = spread_state(n, 30);
  auto after = [&](const OptCase& c, std::uint32_t fuse) {
    OptState s = s0;
    run_opt(c, s, fuse);
    return s;
  };
  auto differs = [&](const OptCase& c, std::uint32_t fuse) {
    const OptState a = after(c, 0), b = after(c, fuse);
    return count_differ(a.p, b.p) + count_differ(a.s0, b.s0) + count_differ(a.s1, b.s1) > 0;
  };
  const std::uint32_t D = 1u << kOptimSiteDecay, A = 1u << kOptimSiteA,
                      A2 = A | (1u << (kOptimSiteA + 1)), B = 1u << kOptimSiteB,
                      B2 = B | (1u << (kOptimSiteB + 1)), C = 1u << kOptimSiteC;
  struct Live {
    OptCase c;
    std::vector<std::uint32_t> masks;
  };
  const std::vector<Live> live = {
      {{Opt::sgd, 0, 0.9f, 0.01f, true, false}, {D, A, B, C}},
      {{Opt::sgd, 1, 0.9f, 0.01f, true, false}, {D, A, A2, B, B2}},
      {{Opt::sgd, 1, 0.0f, 0.01f, false, false}, {D, C}},
      {{Opt::adam, 0, 0, 0.01f, false, false}, {D, A, A2, B, B2}},
      // p - (lr wd) p fused differs only where the small product's rounding tips the
      // difference's: about lr wd of the elements, so a large decay shows it.
      {{Opt::adam, 0, 0, 0.5f, false, true}, {D}},
      {{Opt::adam, 1, 0, 0.01f, false, false}, {D, A, A2, B, B2}},
      {{Opt::adam, 2, 0, 0.01f, false, false}, {D, A, A2, B, B2}},
      {{Opt::rmsprop, 0, 0.9f, 0.01f, false, false}, {D, A, A2, B, C}},
      {{Opt::rmsprop, 0, 0.0f, 0.01f, false, false}, {C}},
      {{Opt::rmsprop, 1, 0.9f, 0.01f, false, false}, {D, A, A2, B}},
  };
  for (const Live& l : live)
    for (std::uint32_t m : l.masks) EXPECT_TRUE(differs(l.c, m)) << name(l.c) << " fuse " << m;
  for (Opt o : {Opt::sgd, Opt::adam, Opt::rmsprop}) {
    const int forms = o == Opt::adam ? kAdamFormCount : 2;
    for (int f1 = 0; f1 < forms; ++f1)
      for (int f2 = f1 + 1; f2 < forms; ++f2) {
        const OptState a = after({o, f1, 0.9f, 0.0f, false, false}, 0);
        const OptState b = after({o, f2, 0.9f, 0.0f, false, false}, 0);
        EXPECT_GT(count_differ(a.p, b.p), 0) << static_cast<int>(o) << " " << f1 << " " << f2;
      }
  }
}

TEST(EmulatedOptimizer, VariantsThreadInvariant) {
  ThreadGuard guard;
  const i64 n = 100003;  // several 32768-element blocks
  const OptState s0 = random_state(n, 40);
  for (const OptCase& c : all_cases())
    for (std::uint32_t fuse : {0u, 0x2bu, 0x3fu}) {
      cpu::set_num_threads(1);
      OptState one = s0;
      run_opt(c, one, fuse);
      for (int t : {2, 3}) {
        cpu::set_num_threads(t);
        OptState s = s0;
        run_opt(c, s, fuse);
        EXPECT_TRUE(same_bits(one.p, s.p) && same_bits(one.s0, s.s0) && same_bits(one.s1, s.s1))
            << name(c) << " fuse " << fuse << " on " << t << " threads";
      }
    }
}

// fuse = 0 with the configured form is the canonical kernel bit for bit.
TEST(EmulatedOptimizer, CanonicalUnchanged) {
  const i64 n = 5000;
  const OptState s0 = random_state(n, 50);
  const auto [bc1, bc2] = cpu::adam_bias_corrections(kB1, kB2, kStep);
  for (bool keras : {false, true}) {
    for (bool first : {false, true}) {
      OptState a = s0, b = s0;
      const SgdParams sp{kLr, 0.9f, 0.01f, true, first, keras};
      cpu::sgd_update(n, a.p.data(), a.g.data(), a.s0.data(), sp);
      cpu::sgd_update(n, b.p.data(), b.g.data(), b.s0.data(), sp, 0u);
      EXPECT_TRUE(same_bits(a.p, b.p) && same_bits(a.s0, b.s0)) << "sgd keras " << keras;
    }
    for (bool decoupled : {false, true}) {
      OptState a = s0, b = s0;
      const AdamParams ap{kLr, kB1, kB2, kEps, bc1, bc2, 0.01f, decoupled, keras};
      cpu::adam_update(n, a.p.data(), a.g.data(), a.s0.data(), a.s1.data(), ap);
      cpu::adam_update(n, b.p.data(), b.g.data(), b.s0.data(), b.s1.data(), ap,
                       keras ? AdamForm::keras : AdamForm::textbook, 0u);
      EXPECT_TRUE(same_bits(a.p, b.p) && same_bits(a.s0, b.s0) && same_bits(a.s1, b.s1))
          << "adam keras " << keras;
    }
    OptState a = s0, b = s0;
    RmspropParams rp{kLr, kRho, kEps, 0.9f, 0.01f};
    rp.keras = keras;
    cpu::rmsprop_update(n, a.p.data(), a.g.data(), a.s1.data(), a.s0.data(), rp);
    cpu::rmsprop_update(n, b.p.data(), b.g.data(), b.s1.data(), b.s0.data(), rp, 0u);
    EXPECT_TRUE(same_bits(a.p, b.p) && same_bits(a.s0, b.s0) && same_bits(a.s1, b.s1))
        << "rmsprop keras " << keras;
  }
}

// torch.optim.Adam's host scalars: lr / bc1, sqrt(bc2), 1 - lr wd in double, rounded once.
TEST(EmulatedOptimizer, TorchAdamHostScalars) {
  const auto [bc1, bc2] = cpu::adam_bias_corrections(kB1, kB2, 3);
  const AdamTorchScalars t = adam_torch_scalars(1e-3f, bc1, bc2, 0.05f);
  EXPECT_EQ(t.step_size, static_cast<float>(static_cast<double>(1e-3f) / bc1));
  EXPECT_EQ(t.bc2_sqrt, static_cast<float>(std::sqrt(static_cast<double>(bc2))));
  EXPECT_EQ(t.decay_mul, static_cast<float>(1.0 - static_cast<double>(1e-3f) * 0.05f));
}

// ---------------------------------------------------------------- draws

// Over a few hundred impl seeds the draws the ops make (engine/ops/activation.cpp,
// engine/optim.cpp: coin(0) of math, coin(site) of contraction, choose(0, forms) of the
// optimizer at place 0) reach every alternative, in roughly fair shares.
TEST(EmulatedDraws, CoverEveryAlternative) {
  int alt = 0, tanh_fused = 0;
  std::vector<int> bit(kOptimFuseBits, 0), adam(kAdamFormCount, 0), two(2, 0);
  const int seeds = 300;
  for (int s = 0; s < seeds; ++s) {
    const ImplDraw m{static_cast<std::uint64_t>(s), ImplFamily::math, 3, 0};
    const ImplDraw c{static_cast<std::uint64_t>(s), ImplFamily::contraction, 5, 0};
    const ImplDraw o{static_cast<std::uint64_t>(s), ImplFamily::optimizer, 0, 17};
    alt += m.coin(0);
    tanh_fused += c.coin(kActSiteTanhGrad);
    for (int b = 0; b < kOptimFuseBits; ++b) bit[b] += c.coin(static_cast<std::uint32_t>(b));
    ++adam[o.choose(0, kAdamFormCount)];
    ++two[o.choose(0, 2)];
    // The optimizer's form does not depend on the step (a run keeps one framework).
    const ImplDraw later{static_cast<std::uint64_t>(s), ImplFamily::optimizer, 0, 900};
    ASSERT_EQ(o.choose(0, kAdamFormCount), later.choose(0, kAdamFormCount));
  }
  auto fair = [&](int k, int of) { return k > seeds / of / 2 && k < seeds - seeds / of / 2; };
  EXPECT_TRUE(fair(alt, 2)) << alt;
  EXPECT_TRUE(fair(tanh_fused, 2)) << tanh_fused;
  for (int b = 0; b < kOptimFuseBits; ++b) EXPECT_TRUE(fair(bit[b], 2)) << "bit " << b;
  for (int f = 0; f < kAdamFormCount; ++f) EXPECT_TRUE(fair(adam[f], 3)) << "adam form " << f;
  for (int f = 0; f < 2; ++f) EXPECT_TRUE(fair(two[f], 2)) << "form " << f;
}

}  // namespace
}  // namespace detdl
