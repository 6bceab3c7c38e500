// Softmax, loss and penalty kernels against (1) the orders loss.h documents, written here
// as plain loops with the canonical chunk tree built level by level (bit for bit), (2)
// float64 references (tolerance), (3) central differences in double for every gradient,
// (4) themselves on 1, 2 and 3 threads; `fast` is checked to stay close and to depend on
// the piece assignment; bad labels throw.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/common/detmath.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/parallel.h"
#include "tests/kernels/reference.h"

namespace {

using detdl::Level;
using i64 = std::int64_t;
using Vec = std::vector<float>;
using Vec64 = std::vector<double>;
namespace cpu = detdl::cpu;

Vec random_vec(i64 n, std::uint32_t sub, float lo = -1.0f, float hi = 1.0f) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = lo + (hi - lo) * detdl::philox_uniform(11, detdl::RandomStream::test, sub, i);
  return v;
}
std::vector<std::int32_t> random_labels(i64 n, i64 K, std::uint32_t sub) {
  std::vector<std::int32_t> l(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    l[i] = static_cast<std::int32_t>(detdl::philox_u32(11, detdl::RandomStream::test, sub, i) % K);
  return l;
}

bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Switches the pool only when the count changes.
void use_threads(int n) {
  if (n == cpu::num_threads()) return;
  cpu::set_num_threads(n);
}
struct ThreadGuard {
  ~ThreadGuard() {
    cpu::set_num_threads(1);
    cpu::set_dynamic_assignment_for_testing({});
  }
};

// ---- the canonical sum of values, level by level ----
float ref_sum(const Vec& v) { return detdl::reference::chunked_sum(v); }

// ---- the documented orders as plain loops ----
struct RowRef {
  float m, s;
  Vec e;
};
RowRef ref_row(const float* x, i64 K) {
  RowRef r{x[0], 0.0f, Vec(K)};
  for (i64 k = 1; k < K; ++k) r.m = x[k] > r.m ? x[k] : r.m;
  for (i64 k = 0; k < K; ++k) r.e[k] = detdl::det_expf(x[k] - r.m);
  r.s = ref_sum(r.e);
  return r;
}

struct CeRef {
  Vec loss, dlogits;
  float mean;
};
CeRef ref_ce(i64 N, i64 K, const Vec& x, const std::vector<std::int32_t>& labels) {
  CeRef c{Vec(N), Vec(N * K), 0.0f};
  const float count = static_cast<float>(N);
  for (i64 i = 0; i < N; ++i) {
    const RowRef r = ref_row(x.data() + i * K, K);
    c.loss[i] = detdl::det_logf(r.s) - (x[i * K + labels[i]] - r.m);
    for (i64 k = 0; k < K; ++k)
      c.dlogits[i * K + k] = (r.e[k] / r.s - (k == labels[i] ? 1.0f : 0.0f)) / count;
  }
  c.mean = ref_sum(c.loss) / count;
  return c;
}

// Central difference of f at v[i] (double).
double central(Vec64& v, std::size_t i, const std::function<double()>& f, double h = 1e-6) {
  const double keep = v[i];
  v[i] = keep + h;
  const double up = f();
  v[i] = keep - h;
  const double down = f();
  v[i] = keep;
  return (up - down) / (2 * h);
}

// ---------------------------------------------------------------------------------------

TEST(Softmax, MatchesDocumentedOrderAndFloat64) {
  ThreadGuard guard;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (auto [N, K] : {std::pair<i64, i64>{1, 1}, {3, 7}, {5, 300}, {2, 257}, {40, 10}}) {
      Vec x = random_vec(N * K, 1, -6.0f, 6.0f);
      Vec p(N * K);
      cpu::softmax_forward(N, K, x.data(), p.data());
      for (i64 i = 0; i < N; ++i) {
        const RowRef r = ref_row(x.data() + i * K, K);
        double s64 = 0, m64 = x[i * K];
        for (i64 k = 0; k < K; ++k) m64 = std::max(m64, double(x[i * K + k]));
        for (i64 k = 0; k < K; ++k) s64 += std::exp(double(x[i * K + k]) - m64);
        for (i64 k = 0; k < K; ++k) {
          ASSERT_TRUE(same_bits(p[i * K + k], r.e[k] / r.s))
              << "N=" << N << " K=" << K << " i=" << i << " k=" << k;
          ASSERT_NEAR(p[i * K + k], std::exp(double(x[i * K + k]) - m64) / s64, 1e-6);
        }
      }
    }
  }
}

TEST(Softmax, NanLogitPoisonsItsRowOnly) {
  Vec x = {1.0f, NAN, 2.0f, 0.5f, 0.25f, 0.0f};
  Vec p(6);
  cpu::softmax_forward(2, 3, x.data(), p.data());
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(std::isnan(p[k]));
  for (int k = 3; k < 6; ++k) EXPECT_FALSE(std::isnan(p[k]));
}

TEST(SoftmaxCrossEntropy, MatchesDocumentedOrderBitForBitOnAnyThreads) {
  ThreadGuard guard;
  const std::vector<std::pair<i64, i64>> shapes = {{1, 1},    {3, 300}, {300, 10}, {1100, 3},
                                                   {4097, 2}, {37, 7},  {9, 8},    {6, 17}};
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (auto [N, K] : shapes) {
      const Vec x = random_vec(N * K, 2, -5.0f, 5.0f);
      const auto labels = random_labels(N, K, 3);
      const CeRef want = ref_ce(N, K, x, labels);
      for (Level level : {Level::portable, Level::repeatable, Level::fast}) {
        if (level == Level::fast && threads > 1) continue;
        SCOPED_TRACE(testing::Message() << "N=" << N << " K=" << K << " threads=" << threads
                                        << " level=" << detdl::level_name(level));
        Vec loss(N), d(N * K);
        const float mean =
            cpu::softmax_cross_entropy(level, N, K, x.data(), labels.data(), loss.data(), d.data());
        EXPECT_TRUE(same_bits(mean, want.mean));
        EXPECT_TRUE(same_bits(loss, want.loss));
        EXPECT_TRUE(same_bits(d, want.dlogits));
        // Optional outputs: the mean does not depend on them.
        EXPECT_TRUE(same_bits(
            cpu::softmax_cross_entropy(level, N, K, x.data(), labels.data(), nullptr, nullptr),
            want.mean));
      }
    }
  }
}

// The optional softmax output (the BUTTER metrics take it from the loss kernel instead of
// a second softmax): softmax_forward's values bit for bit, in both forms, on any threads,
// with and without the gradient, and the loss and gradient unchanged by asking for it.
TEST(SoftmaxCrossEntropy, ProbsOutputIsSoftmaxForwardBitForBit) {
  ThreadGuard guard;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (auto [N, K] : {std::pair<i64, i64>{1, 1}, {37, 7}, {300, 10}, {5, 300}}) {
      const Vec x = random_vec(N * K, 4, -30.0f, 30.0f);  // wide: some rows in Keras's clip
      const auto labels = random_labels(N, K, 5);
      Vec want(N * K);
      cpu::softmax_forward(N, K, x.data(), want.data());
      for (detdl::CrossEntropyForm form :
           {detdl::CrossEntropyForm::exact, detdl::CrossEntropyForm::keras_clipped}) {
        SCOPED_TRACE(testing::Message()
                     << "N=" << N << " K=" << K << " threads=" << threads
                     << " keras=" << (form == detdl::CrossEntropyForm::keras_clipped));
        Vec loss0(N), d0(N * K), loss1(N), d1(N * K), p1(N * K, -1.0f), p2(N * K, -1.0f);
        const float m0 = cpu::softmax_cross_entropy(Level::portable, N, K, x.data(), labels.data(),
                                                    loss0.data(), d0.data(), form);
        const float m1 = cpu::softmax_cross_entropy(Level::portable, N, K, x.data(), labels.data(),
                                                    loss1.data(), d1.data(), form, p1.data());
        cpu::softmax_cross_entropy(Level::portable, N, K, x.data(), labels.data(), nullptr, nullptr,
                                   form, p2.data());
        EXPECT_TRUE(same_bits(m0, m1));
        EXPECT_TRUE(same_bits(loss0, loss1));
        EXPECT_TRUE(same_bits(d0, d1));
        EXPECT_TRUE(same_bits(p1, want));
        EXPECT_TRUE(same_bits(p2, want));
      }
    }
  }
}

TEST(SoftmaxCrossEntropy, CloseToFloat64AndGradientMatchesFiniteDifferences) {
  for (auto [n_rows, n_classes] : {std::pair<i64, i64>{3, 5}, {7, 300}, {1, 1}}) {
    // Plain copies: clang 14 (the sanitizer builds) cannot capture structured bindings.
    const i64 N = n_rows, K = n_classes;
    const Vec x = random_vec(N * K, 4, -4.0f, 4.0f);
    const auto labels = random_labels(N, K, 5);
    Vec d(N * K);
    const float mean = cpu::softmax_cross_entropy(Level::portable, N, K, x.data(), labels.data(),
                                                  nullptr, d.data());
    Vec64 x64(x.begin(), x.end());
    auto loss64 = [&] {
      double total = 0;
      for (i64 i = 0; i < N; ++i) {
        double m = x64[i * K], s = 0;
        for (i64 k = 0; k < K; ++k) m = std::max(m, x64[i * K + k]);
        for (i64 k = 0; k < K; ++k) s += std::exp(x64[i * K + k] - m);
        total += std::log(s) - (x64[i * K + labels[i]] - m);
      }
      return total / double(N);
    };
    EXPECT_NEAR(mean, loss64(), 1e-5 * (1 + loss64()));
    for (std::size_t j = 0; j < x64.size(); j += (x64.size() > 100 ? 13 : 1))
      EXPECT_NEAR(d[j], central(x64, j, loss64), 1e-6) << "N=" << N << " K=" << K << " j=" << j;
  }
}

// ---- Keras's clipped form (kernels/common/cross_entropy.h) as a plain loop ----
CeRef ref_keras_ce(i64 N, i64 K, const Vec& x, const std::vector<std::int32_t>& labels) {
  CeRef c{Vec(N), Vec(N * K), 0.0f};
  const float count = static_cast<float>(N);
  const float eps = 1e-7f, one_minus = 1.0f - 1e-7f;
  for (i64 i = 0; i < N; ++i) {
    const RowRef r = ref_row(x.data() + i * K, K);
    Vec p(K);
    for (i64 k = 0; k < K; ++k) p[k] = r.e[k] / r.s;
    const float S = ref_sum(p);
    const float q = p[labels[i]] / S;
    const bool inside = q >= eps && q <= one_minus;
    c.loss[i] = -detdl::det_logf(q < eps ? eps : (q > one_minus ? one_minus : q));
    for (i64 k = 0; k < K; ++k)
      c.dlogits[i * K + k] = inside ? (p[k] / S - (k == labels[i] ? 1.0f : 0.0f)) / count : 0.0f;
  }
  c.mean = ref_sum(c.loss) / count;
  return c;
}

// Logits whose rows cover the three regions: inside the clip, confidently wrong (the label's
// probability far below 1e-7) and confidently right (above 1 - 1e-7).
Vec keras_logits(i64 N, i64 K, const std::vector<std::int32_t>& labels) {
  Vec x = random_vec(N * K, 21, -3.0f, 3.0f);
  for (i64 i = 0; i < N; ++i) {
    if (i % 3 == 1) x[i * K + labels[i]] -= 40.0f;  // wrong: p_y ~ e^-40
    if (i % 3 == 2) x[i * K + labels[i]] += 40.0f;  // right: 1 - p_y ~ e^-40
  }
  return x;
}

TEST(KerasCrossEntropy, MatchesDocumentedOrderBitForBitOnAnyThreads) {
  ThreadGuard guard;
  const auto form = detdl::CrossEntropyForm::keras_clipped;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (auto [N, K] : {std::pair<i64, i64>{1, 1}, {3, 300}, {300, 10}, {1100, 3}}) {
      const auto labels = random_labels(N, K, 22);
      const Vec x = keras_logits(N, K, labels);
      const CeRef want = ref_keras_ce(N, K, x, labels);
      for (Level level : {Level::portable, Level::repeatable}) {
        SCOPED_TRACE(testing::Message() << "N=" << N << " K=" << K << " threads=" << threads);
        Vec loss(N), d(N * K);
        const float mean = cpu::softmax_cross_entropy(level, N, K, x.data(), labels.data(),
                                                      loss.data(), d.data(), form);
        EXPECT_TRUE(same_bits(mean, want.mean));
        EXPECT_TRUE(same_bits(loss, want.loss));
        EXPECT_TRUE(same_bits(d, want.dlogits));
        // The canonical emulated kernel (LossImpl{}) is the same kernel, bit for bit.
        Vec loss2(N), d2(N * K);
        EXPECT_TRUE(
            same_bits(cpu::softmax_cross_entropy(cpu::LossImpl{}, N, K, x.data(), labels.data(),
                                                 loss2.data(), d2.data(), form),
                      want.mean));
        EXPECT_TRUE(same_bits(loss2, want.loss));
        EXPECT_TRUE(same_bits(d2, want.dlogits));
      }
    }
  }
}

TEST(KerasCrossEntropy, ClipRegionsCapTheLossAndZeroTheGradient) {
  const i64 N = 3, K = 4;
  const std::vector<std::int32_t> labels = {1, 2, 0};
  // Row 0 inside the clip; row 1 confidently wrong; row 2 confidently right.
  const Vec x = {0.1f, 0.4f, -0.2f, 0.3f, 30.0f, 0.0f, -30.0f, 5.0f, 40.0f, 0.0f, -1.0f, 1.0f};
  Vec loss(N), d(N * K), exact_loss(N);
  cpu::softmax_cross_entropy(Level::portable, N, K, x.data(), labels.data(), loss.data(), d.data(),
                             detdl::CrossEntropyForm::keras_clipped);
  cpu::softmax_cross_entropy(Level::portable, N, K, x.data(), labels.data(), exact_loss.data(),
                             nullptr);
  EXPECT_NEAR(loss[0], exact_loss[0], 1e-6);
  EXPECT_EQ(loss[1], -detdl::det_logf(1e-7f));  // -log(eps) = 16.118
  EXPECT_NEAR(loss[1], 16.1181, 1e-4);
  EXPECT_GT(exact_loss[1], 59.0f);  // the exact loss keeps growing: 60 nats
  EXPECT_EQ(loss[2], -detdl::det_logf(1.0f - 1e-7f));
  for (i64 k = 0; k < K; ++k) {
    EXPECT_NE(d[0 * K + k], 0.0f);
    EXPECT_EQ(d[1 * K + k], 0.0f) << "confidently wrong rows learn nothing in Keras";
    EXPECT_EQ(d[2 * K + k], 0.0f);
  }
}

TEST(KerasCrossEntropy, CloseToFloat64AndGradientMatchesFiniteDifferences) {
  for (auto [n_rows, n_classes] : {std::pair<i64, i64>{3, 5}, {7, 300}, {9, 10}}) {
    const i64 N = n_rows, K = n_classes;  // see above: clang 14 and structured bindings
    const auto labels = random_labels(N, K, 23);
    const Vec x = keras_logits(N, K, labels);
    Vec d(N * K);
    const float mean =
        cpu::softmax_cross_entropy(Level::portable, N, K, x.data(), labels.data(), nullptr,
                                   d.data(), detdl::CrossEntropyForm::keras_clipped);
    Vec64 x64(x.begin(), x.end());
    // Keras's graph in float64: softmax, / sum, clip to [1e-7, 1 - 1e-7], -log.
    auto loss64 = [&] {
      double total = 0;
      for (i64 i = 0; i < N; ++i) {
        double m = x64[i * K], s = 0, S = 0;
        for (i64 k = 0; k < K; ++k) m = std::max(m, x64[i * K + k]);
        for (i64 k = 0; k < K; ++k) s += std::exp(x64[i * K + k] - m);
        for (i64 k = 0; k < K; ++k) S += std::exp(x64[i * K + k] - m) / s;
        const double q = std::exp(x64[i * K + labels[i]] - m) / s / S;
        total += -std::log(std::min(std::max(q, 1e-7), 1.0 - 1e-7));
      }
      return total / double(N);
    };
    EXPECT_NEAR(mean, loss64(), 1e-5 * (1 + loss64()));
    for (std::size_t j = 0; j < x64.size(); j += (x64.size() > 100 ? 13 : 1))
      EXPECT_NEAR(d[j], central(x64, j, loss64), 1e-6) << "N=" << N << " K=" << K << " j=" << j;
  }
}

TEST(KerasCrossEntropy, LabelsOutsideTheClassesThrow) {
  const Vec x = random_vec(6, 24);
  const std::vector<std::int32_t> labels = {0, 3};
  EXPECT_THROW(cpu::softmax_cross_entropy(Level::portable, 2, 3, x.data(), labels.data(), nullptr,
                                          nullptr, detdl::CrossEntropyForm::keras_clipped),
               std::invalid_argument);
}

TEST(SoftmaxCrossEntropy, LabelsOutsideTheClassesThrowNamingSampleAndLabel) {
  const i64 N = 4, K = 3;
  const Vec x = random_vec(N * K, 6);
  for (std::int32_t bad : {-1, 3, 1000}) {
    std::vector<std::int32_t> labels = {0, 2, bad, 1};
    Vec d(N * K, 7.0f);
    try {
      cpu::softmax_cross_entropy(Level::portable, N, K, x.data(), labels.data(), nullptr, d.data());
      FAIL() << "label " << bad << " accepted";
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("sample 2"), std::string::npos) << msg;
      EXPECT_NE(msg.find("label " + std::to_string(bad)), std::string::npos) << msg;
    }
    for (float v : d) EXPECT_EQ(v, 7.0f);  // nothing written before the check
  }
}

// ---- binary cross-entropy ----
struct ElemRef {
  Vec loss, grad;
  float mean;
};

ElemRef ref_bce_logits(const Vec& x, const Vec& t) {
  const i64 n = static_cast<i64>(x.size());
  ElemRef r{Vec(n), Vec(n), 0.0f};
  const float count = static_cast<float>(n);
  for (i64 i = 0; i < n; ++i) {
    const float e = detdl::det_expf(-std::fabs(x[i]));
    r.loss[i] = ((x[i] > 0.0f ? x[i] : 0.0f) - x[i] * t[i]) + detdl::det_log1pf(e);
    const float sig = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    r.grad[i] = (sig - t[i]) / count;
  }
  r.mean = ref_sum(r.loss) / count;
  return r;
}

ElemRef ref_bce_probs(const Vec& x, const Vec& t) {
  const i64 n = static_cast<i64>(x.size());
  ElemRef r{Vec(n), Vec(n), 0.0f};
  const float count = static_cast<float>(n), lo = 1e-7f, hi = 1.0f - 1e-7f;
  for (i64 i = 0; i < n; ++i) {
    const float q = std::min(std::max(x[i], lo), hi);
    r.loss[i] = -(t[i] * detdl::det_logf(q) + (1.0f - t[i]) * detdl::det_logf(1.0f - q));
    r.grad[i] = (x[i] < lo || x[i] > hi) ? 0.0f : ((q - t[i]) / (q * (1.0f - q))) / count;
  }
  r.mean = ref_sum(r.loss) / count;
  return r;
}

TEST(BinaryCrossEntropy, MatchesDocumentedOrderBitForBitOnAnyThreads) {
  ThreadGuard guard;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (i64 n : {1, 257, 1100, 20000}) {
      const Vec logits = random_vec(n, 7, -9.0f, 9.0f);
      Vec probs = random_vec(n, 8, 0.0f, 1.0f);
      probs[0] = 0.0f;  // clamped
      if (n > 3) probs[1] = 1.0f, probs[2] = 1e-7f, probs[3] = 5e-8f;
      const Vec t = random_vec(n, 9, 0.0f, 1.0f);
      for (bool from_logits : {true, false}) {
        const ElemRef want = from_logits ? ref_bce_logits(logits, t) : ref_bce_probs(probs, t);
        const Vec& in = from_logits ? logits : probs;
        for (Level level : {Level::portable, Level::repeatable}) {
          SCOPED_TRACE(testing::Message()
                       << "n=" << n << " threads=" << threads << " logits=" << from_logits);
          Vec loss(n), g(n);
          const float mean = cpu::binary_cross_entropy(level, n, in.data(), t.data(), from_logits,
                                                       loss.data(), g.data());
          EXPECT_TRUE(same_bits(mean, want.mean));
          EXPECT_TRUE(same_bits(loss, want.loss));
          EXPECT_TRUE(same_bits(g, want.grad));
          EXPECT_TRUE(same_bits(cpu::binary_cross_entropy(level, n, in.data(), t.data(),
                                                          from_logits, nullptr, nullptr),
                                want.mean));
        }
      }
    }
  }
}

TEST(BinaryCrossEntropy, CloseToFloat64AndGradientsMatchFiniteDifferences) {
  const i64 n = 37;
  const Vec t = random_vec(n, 10, 0.0f, 1.0f);
  {  // from logits
    const Vec x = random_vec(n, 11, -6.0f, 6.0f);
    Vec g(n);
    const float mean =
        cpu::binary_cross_entropy(Level::portable, n, x.data(), t.data(), true, nullptr, g.data());
    Vec64 x64(x.begin(), x.end());
    auto loss64 = [&] {
      double s = 0;
      for (i64 i = 0; i < n; ++i)
        s += std::log1p(std::exp(x64[i])) - x64[i] * t[i];  // softplus(x) - x t
      return s / n;
    };
    EXPECT_NEAR(mean, loss64(), 1e-6);
    for (i64 i = 0; i < n; ++i) EXPECT_NEAR(g[i], central(x64, i, loss64), 1e-7) << i;
  }
  {  // from probabilities, away from the clamp
    const Vec x = random_vec(n, 12, 0.02f, 0.98f);
    Vec g(n);
    const float mean =
        cpu::binary_cross_entropy(Level::portable, n, x.data(), t.data(), false, nullptr, g.data());
    Vec64 x64(x.begin(), x.end());
    auto loss64 = [&] {
      double s = 0;
      for (i64 i = 0; i < n; ++i) s -= t[i] * std::log(x64[i]) + (1 - t[i]) * std::log(1 - x64[i]);
      return s / n;
    };
    EXPECT_NEAR(mean, loss64(), 1e-6);
    for (i64 i = 0; i < n; ++i)
      EXPECT_NEAR(g[i], central(x64, i, loss64, 1e-7), 1e-5 * (1 + std::fabs(g[i]))) << i;
  }
  {  // the clamp: Keras's epsilon bounds the loss, its gradient is zero outside
    const Vec x = {0.0f, 1.0f, -0.5f, 2.0f};
    const Vec tt = {1.0f, 0.0f, 1.0f, 0.0f};
    Vec loss(4), g(4);
    cpu::binary_cross_entropy(Level::portable, 4, x.data(), tt.data(), false, loss.data(),
                              g.data());
    // t = 1 at the low clamp: -log(1e-7f); t = 0 at the high clamp: -log(1 - (1 - 1e-7f)),
    // where 1.0f - 1e-7f rounds to 1 - 2^-23 (float32 Keras gives the same).
    const double low = -std::log(double(1e-7f)), high = -std::log(1.0 - double(1.0f - 1e-7f));
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(loss[i], i % 2 == 0 ? low : high, 1e-5) << i;
      EXPECT_EQ(g[i], 0.0f) << i;
    }
  }
}

// ---- mean squared error ----
TEST(MeanSquaredError, MatchesOrderFloat64AndFiniteDifferences) {
  ThreadGuard guard;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (i64 n : {1, 257, 20000}) {
      const Vec p = random_vec(n, 13, -2.0f, 2.0f), t = random_vec(n, 14, -2.0f, 2.0f);
      Vec want_l(n), want_g(n);
      for (i64 i = 0; i < n; ++i) {
        const float d = p[i] - t[i];
        want_l[i] = d * d;
        want_g[i] = (2.0f * d) / static_cast<float>(n);
      }
      const float want = ref_sum(want_l) / static_cast<float>(n);
      for (Level level : {Level::portable, Level::repeatable}) {
        Vec l(n), g(n);
        EXPECT_TRUE(same_bits(
            cpu::mean_squared_error(level, n, p.data(), t.data(), l.data(), g.data()), want));
        EXPECT_TRUE(same_bits(l, want_l));
        EXPECT_TRUE(same_bits(g, want_g));
        EXPECT_TRUE(same_bits(
            cpu::mean_squared_error(level, n, p.data(), t.data(), nullptr, nullptr), want));
      }
    }
  }
  const i64 n = 29;
  const Vec p = random_vec(n, 15), t = random_vec(n, 16);
  Vec g(n);
  const float mean =
      cpu::mean_squared_error(Level::portable, n, p.data(), t.data(), nullptr, g.data());
  Vec64 p64(p.begin(), p.end());
  auto loss64 = [&] {
    double s = 0;
    for (i64 i = 0; i < n; ++i) s += (p64[i] - t[i]) * (p64[i] - t[i]);
    return s / n;
  };
  EXPECT_NEAR(mean, loss64(), 1e-6);
  for (i64 i = 0; i < n; ++i) EXPECT_NEAR(g[i], central(p64, i, loss64), 1e-7) << i;
}

// ---- penalties ----
TEST(Penalties, SumsMatchOrderOnAnyThreadsAndGradientsMatchFiniteDifferences) {
  ThreadGuard guard;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (i64 n : {1, 257, 5000, 70001}) {
      Vec w = random_vec(n, 17);
      w[0] = -0.0f;
      Vec a(n), sq(n);
      for (i64 i = 0; i < n; ++i) a[i] = std::fabs(w[i]), sq[i] = w[i] * w[i];
      for (Level level : {Level::portable, Level::repeatable}) {
        EXPECT_TRUE(same_bits(cpu::l1_penalty(level, n, w.data()), ref_sum(a))) << n;
        EXPECT_TRUE(same_bits(cpu::l2_penalty(level, n, w.data()), ref_sum(sq))) << n;
      }
      double s1 = 0, s2 = 0;
      for (float v : w) s1 += std::fabs(v), s2 += double(v) * v;
      EXPECT_NEAR(cpu::l1_penalty(Level::portable, n, w.data()), s1, 1e-5 * s1 + 1e-7);
      EXPECT_NEAR(cpu::l2_penalty(Level::portable, n, w.data()), s2, 1e-5 * s2 + 1e-7);
    }
  }
  // Gradient helpers add to g: lambda * sign(w) (sign(+-0) = 0) and (2 * lambda) * w.
  const i64 n = 23;
  Vec w = random_vec(n, 18);
  w[3] = 0.0f, w[4] = -0.0f;
  const Vec g0 = random_vec(n, 19);
  const float lambda = 0.003f;
  Vec g1 = g0, g2 = g0, z1(n, 0.0f), z2(n, 0.0f);
  cpu::l1_penalty_grad_add(n, w.data(), lambda, g1.data());
  cpu::l2_penalty_grad_add(n, w.data(), lambda, g2.data());
  cpu::l1_penalty_grad_add(n, w.data(), lambda,
                           z1.data());  // the gradient alone, for the differences
  cpu::l2_penalty_grad_add(n, w.data(), lambda, z2.data());
  Vec64 w64(w.begin(), w.end());
  auto l2_64 = [&] {
    double s = 0;
    for (double v : w64) s += v * v;
    return lambda * s;
  };
  auto l1_64 = [&] {
    double s = 0;
    for (double v : w64) s += std::fabs(v);
    return lambda * s;
  };
  for (i64 i = 0; i < n; ++i) {
    const float sign = w[i] > 0 ? 1.0f : (w[i] < 0 ? -1.0f : 0.0f);
    EXPECT_TRUE(same_bits(g1[i], g0[i] + lambda * sign)) << i;
    EXPECT_TRUE(same_bits(g2[i], g0[i] + (2.0f * lambda) * w[i])) << i;
    EXPECT_NEAR(z2[i], central(w64, i, l2_64), 1e-9) << i;
    if (w[i] != 0.0f) {
      EXPECT_NEAR(z1[i], central(w64, i, l1_64), 1e-9) << i;
    }
  }
  EXPECT_EQ(g1[3], g0[3]);
  EXPECT_EQ(g1[4], g0[4]);
}

// ---- fast: close to portable; another interleaving of the pieces changes the bits ----
TEST(LossFast, CloseAndDependsOnThePieceAssignment) {
  ThreadGuard guard;
  const i64 n = 20000;
  const Vec w = random_vec(n, 20);
  const Vec p = random_vec(n, 21), t = random_vec(n, 22);
  use_threads(1);
  EXPECT_TRUE(same_bits(cpu::l2_penalty(Level::fast, n, w.data()),
                        cpu::l2_penalty(Level::portable, n, w.data())));
  const float portable = cpu::l2_penalty(Level::portable, n, w.data());
  const float portable_mse =
      cpu::mean_squared_error(Level::portable, n, p.data(), t.data(), nullptr, nullptr);
  use_threads(2);
  Vec l2, mse;
  for (const std::vector<int>& a : {std::vector<int>{0, 1}, std::vector<int>{0, 0, 1, 1, 1}}) {
    cpu::set_dynamic_assignment_for_testing(a);
    l2.push_back(cpu::l2_penalty(Level::fast, n, w.data()));
    mse.push_back(cpu::mean_squared_error(Level::fast, n, p.data(), t.data(), nullptr, nullptr));
    EXPECT_NEAR(l2.back(), portable, 1e-4 * portable);
    EXPECT_NEAR(mse.back(), portable_mse, 1e-4 * portable_mse);
  }
  EXPECT_FALSE(same_bits(l2[0], l2[1]) && same_bits(mse[0], mse[1]));
}

}  // namespace
