// The `emulated` level's loss kernels (loss.h, "The emulated level"): every alternative of
// the loss, math and reduce families (i) within the float64 tolerances of test_loss.cpp,
// (ii) the same bits on 1, 2 and 3 threads, (iii) other bits than the canonical kernel on
// some inputs (not inert), (iv) reached by the draw -> choice mapping; LossImpl{} is the
// canonical kernel bit for bit, and the fast softmax's and -log(p)'s guards hold.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/common/detmath.h"
#include "kernels/common/detmath_alt.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/parallel.h"

namespace {

using detdl::ImplDraw;
using detdl::ImplFamily;
using detdl::Level;
using detdl::cpu::LossImpl;
using detdl::cpu::ReduceShape;
using i64 = std::int64_t;
using Vec = std::vector<float>;
namespace cpu = detdl::cpu;

Vec random_vec(i64 n, std::uint32_t sub, float lo = -1.0f, float hi = 1.0f) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = lo + (hi - lo) * detdl::philox_uniform(29, detdl::RandomStream::test, sub, i);
  return v;
}
std::vector<std::int32_t> random_labels(i64 n, i64 K, std::uint32_t sub) {
  std::vector<std::int32_t> l(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    l[i] = static_cast<std::int32_t>(detdl::philox_u32(29, detdl::RandomStream::test, sub, i) % K);
  return l;
}
bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Whether detmath_alt.h's function is a second implementation yet (it may still forward to
// detmath.h): the math alternatives can only change bits once it is.
bool alt_math_differs() {
  for (int i = 0; i < 2000; ++i) {
    const float x = -20.0f + 0.0173f * static_cast<float>(i), y = 0.001f + 0.05f * i;
    if (!same_bits(detdl::alt_expf(x), detdl::det_expf(x)) ||
        !same_bits(detdl::alt_logf(y), detdl::det_logf(y)) ||
        !same_bits(detdl::alt_log1pf(y * 1e-3f), detdl::det_log1pf(y * 1e-3f)))
      return true;
  }
  return false;
}

// Every alternative on its own (named), then a few together.
struct Alt {
  std::string name;
  LossImpl impl;
  bool math;  // changes bits only through detmath_alt.h
};
std::vector<Alt> alternatives() {
  const ImplDraw d{17, ImplFamily::reduce, 0, 3};
  std::vector<Alt> v;
  LossImpl i;
  i.subtract_max = false;
  v.push_back({"fast softmax", i, false});
  i = {};
  i.log_of_softmax = true;
  v.push_back({"-log(softmax)", i, false});
  i = {};
  i.reciprocal_mean = true;
  v.push_back({"reciprocal mean", i, false});
  i = {};
  i.log_softmax_grad = true;
  v.push_back({"log_softmax backward", i, false});
  i = {};
  i.alt_exp = true;
  v.push_back({"alt exp", i, true});
  i = {};
  i.alt_log = true;
  v.push_back({"alt log", i, true});
  i = {};
  i.alt_log1p = true;
  v.push_back({"alt log1p", i, true});
  for (int s = 1; s < cpu::kReduceShapeCount; ++s) {
    i = {};
    i.reduce = static_cast<ReduceShape>(s);
    i.reduce_draw = d;
    v.push_back({"reduce shape " + std::to_string(s), i, false});
  }
  i = {false, true, true, true, true, true, true, ReduceShape::block_atomic, d};
  v.push_back({"all", i, false});
  return v;
}

// All outputs of every loss for one implementation (or the canonical kernels: nullptr).
struct Outputs {
  Vec probs, ce_loss, ce_d, bce_l, bce_ld, bce_p, bce_pd, mse_d;
  Vec means;  // ce, bce logits, bce probs, mse, l1, l2
};
struct Inputs {
  i64 N, K, n;
  Vec logits;
  std::vector<std::int32_t> labels;
  Vec x, probs, target, pred;
};
Inputs make_inputs(i64 N, i64 K, i64 n, std::uint32_t sub) {
  return {N,
          K,
          n,
          random_vec(N * K, sub, -6.0f, 6.0f),
          random_labels(N, K, sub + 1),
          random_vec(n, sub + 2, -8.0f, 8.0f),
          random_vec(n, sub + 3, 0.0f, 1.0f),
          random_vec(n, sub + 4, 0.0f, 1.0f),
          random_vec(n, sub + 5, -2.0f, 2.0f)};
}

Outputs run(const LossImpl* impl, const Inputs& in) {
  const i64 N = in.N, K = in.K, n = in.n;
  Outputs o{Vec(N * K), Vec(N), Vec(N * K), Vec(n), Vec(n), Vec(n), Vec(n), Vec(n), {}};
  if (impl) {
    cpu::softmax_forward(*impl, N, K, in.logits.data(), o.probs.data());
    o.means = {cpu::softmax_cross_entropy(*impl, N, K, in.logits.data(), in.labels.data(),
                                          o.ce_loss.data(), o.ce_d.data()),
               cpu::binary_cross_entropy(*impl, n, in.x.data(), in.target.data(), true,
                                         o.bce_l.data(), o.bce_ld.data()),
               cpu::binary_cross_entropy(*impl, n, in.probs.data(), in.target.data(), false,
                                         o.bce_p.data(), o.bce_pd.data()),
               cpu::mean_squared_error(*impl, n, in.pred.data(), in.target.data(), nullptr,
                                       o.mse_d.data()),
               cpu::l1_penalty(*impl, n, in.pred.data()),
               cpu::l2_penalty(*impl, n, in.pred.data())};
  } else {
    const Level lv = Level::portable;
    cpu::softmax_forward(N, K, in.logits.data(), o.probs.data());
    o.means = {
        cpu::softmax_cross_entropy(lv, N, K, in.logits.data(), in.labels.data(), o.ce_loss.data(),
                                   o.ce_d.data()),
        cpu::binary_cross_entropy(lv, n, in.x.data(), in.target.data(), true, o.bce_l.data(),
                                  o.bce_ld.data()),
        cpu::binary_cross_entropy(lv, n, in.probs.data(), in.target.data(), false, o.bce_p.data(),
                                  o.bce_pd.data()),
        cpu::mean_squared_error(lv, n, in.pred.data(), in.target.data(), nullptr, o.mse_d.data()),
        cpu::l1_penalty(lv, n, in.pred.data()),
        cpu::l2_penalty(lv, n, in.pred.data())};
  }
  return o;
}

bool same_outputs(const Outputs& a, const Outputs& b) {
  return same_bits(a.probs, b.probs) && same_bits(a.ce_loss, b.ce_loss) &&
         same_bits(a.ce_d, b.ce_d) && same_bits(a.bce_l, b.bce_l) &&
         same_bits(a.bce_ld, b.bce_ld) && same_bits(a.bce_p, b.bce_p) &&
         same_bits(a.bce_pd, b.bce_pd) && same_bits(a.mse_d, b.mse_d) &&
         same_bits(a.means, b.means);
}

// The float64 values every implementation must meet, at test_loss.cpp's tolerances.
void expect_near_float64(const Outputs& o, const Inputs& in, const std::string& what) {
  SCOPED_TRACE(what);
  const i64 N = in.N, K = in.K, n = in.n;
  double ce = 0;
  for (i64 i = 0; i < N; ++i) {
    const float* x = in.logits.data() + i * K;
    double m = x[0], s = 0;
    for (i64 k = 0; k < K; ++k) m = std::max(m, double(x[k]));
    for (i64 k = 0; k < K; ++k) s += std::exp(x[k] - m);
    const double li = std::log(s) - (x[in.labels[i]] - m);
    ce += li;
    ASSERT_NEAR(o.ce_loss[i], li, 1e-5 * (1 + li)) << i;
    for (i64 k = 0; k < K; ++k) {
      const double p = std::exp(x[k] - m) / s;
      ASSERT_NEAR(o.probs[i * K + k], p, 1e-6) << i << " " << k;
      ASSERT_NEAR(o.ce_d[i * K + k], (p - (k == in.labels[i] ? 1.0 : 0.0)) / N, 1e-6);
    }
  }
  EXPECT_NEAR(o.means[0], ce / N, 1e-5 * (1 + ce / N) + (256 + 20) * 0x1p-24 * ce / N);
  double bl = 0, bp = 0, ms = 0, l1 = 0, l2 = 0;
  for (i64 i = 0; i < n; ++i) {
    const double x = in.x[i], t = in.target[i], q = in.probs[i], d = double(in.pred[i]) - t;
    const double l = std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::fabs(x)));
    bl += l;
    ASSERT_NEAR(o.bce_l[i], l, 1e-6 * (1 + l)) << i;
    ASSERT_NEAR(o.bce_ld[i], (1 / (1 + std::exp(-x)) - t) / n, 1e-7) << i;
    const double qc = std::min(std::max(q, double(1e-7f)), double(1.0f - 1e-7f));
    bp += -(t * std::log(qc) + (1 - t) * std::log(1 - qc));
    if (q >= 1e-4 && q <= 1 - 1e-4) {
      const double g = (q - t) / (q * (1 - q)) / n;
      ASSERT_NEAR(o.bce_pd[i], g, 1e-5 * (1 + std::fabs(g))) << i;
    }
    ms += d * d;
    ASSERT_NEAR(o.mse_d[i], 2 * d / n, 1e-7) << i;
    l1 += std::fabs(in.pred[i]);
    l2 += double(in.pred[i]) * in.pred[i];
  }
  // test_loss.cpp's tolerances, widened by the canonical sum's worst-case bound
  // (test_reduction.cpp: (256 + 20) u sum|t|; the terms are positive): a sequential chain
  // over 20000 positive terms is off by ~3e-6 relative, inside that bound.
  const double bound = (256 + 20) * 0x1p-24;
  EXPECT_NEAR(o.means[1], bl / n, 1e-6 + bound * bl / n);
  EXPECT_NEAR(o.means[2], bp / n, 1e-5 + bound * bp / n);
  EXPECT_NEAR(o.means[3], ms / n, 1e-6 + bound * ms / n);
  EXPECT_NEAR(o.means[4], l1, 1e-5 * l1 + 1e-7 + bound * l1);
  EXPECT_NEAR(o.means[5], l2, 1e-5 * l2 + 1e-7 + bound * l2);
}

TEST(EmulatedLoss, DefaultImplIsTheCanonicalKernel) {
  for (auto [N, K, n] : {std::tuple<i64, i64, i64>{5, 7, 100}, {300, 10, 20000}}) {
    const Inputs in = make_inputs(N, K, n, 10);
    const LossImpl canonical{};
    EXPECT_TRUE(same_outputs(run(&canonical, in), run(nullptr, in)));
  }
}

TEST(EmulatedLoss, EveryAlternativeNearFloat64AndThreadInvariant) {
  // n > 2^14 so that the element-wise loops split across threads.
  for (auto [N, K, n] : {std::tuple<i64, i64, i64>{7, 300, 1000}, {300, 10, 20000}}) {
    const Inputs in = make_inputs(N, K, n, 20);
    for (const Alt& a : alternatives()) {
      std::vector<Outputs> runs;
      for (int t : {1, 2, 3}) {
        cpu::set_num_threads(t);
        runs.push_back(run(&a.impl, in));
      }
      cpu::set_num_threads(1);
      EXPECT_TRUE(same_outputs(runs[0], runs[1]) && same_outputs(runs[0], runs[2])) << a.name;
      expect_near_float64(runs[0], in, a.name);
    }
  }
}

TEST(EmulatedLoss, EveryAlternativeChangesBitsSomewhere) {
  const Inputs in = make_inputs(300, 10, 5000, 30);
  const Outputs canonical = run(nullptr, in);
  const bool alt = alt_math_differs();
  for (const Alt& a : alternatives()) {
    if (a.math && !alt) continue;  // detmath_alt.h still forwards to detmath.h
    EXPECT_FALSE(same_outputs(run(&a.impl, in), canonical)) << a.name << " is inert";
  }
  if (!alt) GTEST_SKIP() << "detmath_alt.h is the stub: the math alternatives are not checked";
}

// Keras's clipped form under every alternative: thread invariant, within float64 tolerance
// of Keras's graph (softmax, / sum, clip, -log) where the label's probability is inside the
// clip, capped with a zero gradient where it is far outside, and moved by some alternative.
TEST(EmulatedLoss, KerasFormUnderEveryAlternative) {
  const auto form = detdl::CrossEntropyForm::keras_clipped;
  const i64 N = 300, K = 10;
  Vec x = random_vec(N * K, 40, -4.0f, 4.0f);
  const auto labels = random_labels(N, K, 41);
  for (i64 i = 0; i < N; i += 5) x[i * K + labels[i]] -= 40.0f;  // far below 1e-7
  Vec l0(N), d0(N * K);
  cpu::softmax_cross_entropy(Level::portable, N, K, x.data(), labels.data(), l0.data(), d0.data(),
                             form);
  int moved = 0;
  for (const Alt& a : alternatives()) {
    SCOPED_TRACE(a.name);
    std::vector<Vec> loss, d;
    for (int t : {1, 2, 3}) {
      cpu::set_num_threads(t);
      loss.emplace_back(N);
      d.emplace_back(N * K);
      cpu::softmax_cross_entropy(a.impl, N, K, x.data(), labels.data(), loss.back().data(),
                                 d.back().data(), form);
    }
    cpu::set_num_threads(1);
    EXPECT_TRUE(same_bits(loss[0], loss[1]) && same_bits(loss[0], loss[2]));
    EXPECT_TRUE(same_bits(d[0], d[1]) && same_bits(d[0], d[2]));
    moved += !same_bits(d[0], d0) || !same_bits(loss[0], l0);
    for (i64 i = 0; i < N; ++i) {
      double m = x[i * K], s = 0;
      for (i64 k = 0; k < K; ++k) m = std::max(m, double(x[i * K + k]));
      for (i64 k = 0; k < K; ++k) s += std::exp(x[i * K + k] - m);
      const double q = std::exp(x[i * K + labels[i]] - m) / s;
      if (q < 1e-9) {  // far outside the clip: the cap and no gradient, for every form
        ASSERT_NEAR(loss[0][i], -std::log(1e-7), 1e-5) << i;
        for (i64 k = 0; k < K; ++k) ASSERT_EQ(d[0][i * K + k], 0.0f) << i;
        continue;
      }
      ASSERT_NEAR(loss[0][i], -std::log(q), 1e-5 * (1 - std::log(q))) << i;
      for (i64 k = 0; k < K; ++k) {
        const double p = std::exp(x[i * K + k] - m) / s;
        ASSERT_NEAR(d[0][i * K + k], (p - (k == labels[i] ? 1.0 : 0.0)) / N, 1e-6) << i;
      }
    }
  }
  EXPECT_GT(moved, 0) << "no alternative changes the Keras form's bits";
}

// The fast softmax subtracts the max anyway beyond |max| > 80: no inf, no 0 / 0.
TEST(EmulatedLoss, FastSoftmaxGuard) {
  LossImpl fast;
  fast.subtract_max = false;
  const i64 K = 4;
  for (float shift : {100.0f, -100.0f, 88.0f, -200.0f}) {
    Vec x = {shift, shift - 1.0f, shift - 3.0f, shift - 0.5f}, p(K), q(K), d(K), dq(K);
    const std::int32_t label = 2;
    cpu::softmax_forward(fast, 1, K, x.data(), p.data());
    cpu::softmax_forward(1, K, x.data(), q.data());
    EXPECT_TRUE(same_bits(p, q)) << shift;  // the guard is the canonical form
    const float l = cpu::softmax_cross_entropy(fast, 1, K, x.data(), &label, nullptr, d.data());
    EXPECT_TRUE(std::isfinite(l)) << shift;
    EXPECT_TRUE(same_bits(l, cpu::softmax_cross_entropy(Level::portable, 1, K, x.data(), &label,
                                                        nullptr, dq.data())));
  }
  // Inside the guard the fast form runs: finite and near float64.
  Vec x = {60.0f, 59.0f, 57.0f, 59.5f}, p(K);
  cpu::softmax_forward(fast, 1, K, x.data(), p.data());
  double s = 0;
  for (float v : x) s += std::exp(double(v) - 60.0);
  for (i64 k = 0; k < K; ++k) EXPECT_NEAR(p[k], std::exp(double(x[k]) - 60.0) / s, 1e-6);
}

// -log(p_y) falls back to the log-softmax form where p_y underflows to 0.
TEST(EmulatedLoss, LogOfSoftmaxGuard) {
  LossImpl keras;
  keras.log_of_softmax = true;
  Vec x = {0.0f, -200.0f};
  const std::int32_t label = 1;
  const float l = cpu::softmax_cross_entropy(keras, 1, 2, x.data(), &label, nullptr, nullptr);
  EXPECT_TRUE(std::isfinite(l));
  EXPECT_NEAR(l, 200.0, 1e-3);
}

TEST(EmulatedLoss, DrawMappingReachesEveryChoice) {
  int sub = 0, logp = 0, rec = 0, lsg = 0, e = 0, lg = 0, l1p = 0;
  std::vector<int> shapes(cpu::kReduceShapeCount, 0);
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    const ImplDraw l{seed, ImplFamily::loss, 2, 0}, m{seed, ImplFamily::math, 2, 0},
        r{seed, ImplFamily::reduce, 2, 0};
    const LossImpl i = cpu::loss_impl(&l, &m, &r);
    sub += i.subtract_max, logp += i.log_of_softmax, rec += i.reciprocal_mean;
    lsg += i.log_softmax_grad;
    e += i.alt_exp, lg += i.alt_log, l1p += i.alt_log1p;
    EXPECT_TRUE(i.alt_exp == i.alt_log && i.alt_exp == i.alt_log1p);
    ++shapes[static_cast<int>(i.reduce)];
  }
  EXPECT_EQ(e, lg);  // one library: the three functions come together
  EXPECT_EQ(e, l1p);
  for (int v : {sub, logp, rec, lsg, e, lg, l1p}) {
    EXPECT_GT(v, 100);
    EXPECT_LT(v, 200);
  }
  for (int s : shapes) EXPECT_GT(s, 20);
  const LossImpl none = cpu::loss_impl(nullptr, nullptr, nullptr);
  const Inputs in = make_inputs(5, 7, 100, 40);
  EXPECT_TRUE(same_outputs(run(&none, in), run(nullptr, in)));
}

}  // namespace
