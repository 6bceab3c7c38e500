// lanes::softmax_ce (kernels/cpu/lanes_loss.h): every lane's loss, gradient, softmax, accuracy
// count and per-sample metric values are what the per-repetition path gives that lane's
// problem alone, bit for bit: loss.h's softmax_cross_entropy, MetricAccumulator::add on the
// softmax against the one-hot labels, and the accuracy rule written here as a plain loop.
#include "kernels/cpu/lanes_loss.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "engine/metrics.h"
#include "kernels/cpu/loss.h"

namespace detdl::cpu::lanes {
namespace {

using i64 = std::int64_t;

// Same bits, or both NaN (a NaN's payload is not a result).
::testing::AssertionResult same(float a, float b) {
  if ((std::isnan(a) && std::isnan(b)) ||
      std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << a << " vs " << b;
}

// The accuracy rule of engine/train.cpp's count_correct for class labels, plainly.
i64 correct_rows(const std::vector<float>& x, const std::vector<std::int32_t>& y, i64 n, i64 K) {
  i64 c = 0;
  for (i64 i = 0; i < n; ++i) {
    bool nan = false;
    i64 best = 0;
    for (i64 k = 0; k < K; ++k) {
      nan = nan || std::isnan(x[i * K + k]);
      if (x[i * K + k] > x[i * K + best]) best = k;
    }
    c += !nan && best == y[i];
  }
  return c;
}

struct Problem {
  std::vector<float> x;         // (n, K)
  std::vector<std::int32_t> y;  // (n)
};

// Logits of scale `scale` (large: rows far inside Keras's clip and outside it), with a NaN in
// some rows and ties in others.
Problem problem(i64 n, i64 K, unsigned seed, float scale) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::uniform_int_distribution<int> label(0, static_cast<int>(K) - 1);
  Problem p;
  for (i64 i = 0; i < n * K; ++i) p.x.push_back(u(gen));
  for (i64 i = 0; i < n; ++i) p.y.push_back(label(gen));
  if (n > 5) p.x[5 * K + (K - 1)] = std::numeric_limits<float>::quiet_NaN();
  if (n > 3 && K > 1) p.x[3 * K + 1] = p.x[3 * K];  // a tie: the first maximum wins
  return p;
}

void check(int lanes, i64 problems, i64 n, i64 K, CrossEntropyForm form, float scale) {
  SCOPED_TRACE(::testing::Message()
               << lanes << " lanes, " << problems << " problems, n " << n << ", K " << K
               << ", scale " << scale << (form == CrossEntropyForm::exact ? ", exact" : ", keras"));
  const i64 L = lanes;
  std::vector<Problem> ps;
  for (i64 l = 0; l < problems; ++l)
    ps.push_back(problem(n, K, 100 + static_cast<unsigned>(l), scale));
  // The lane layout by hand; padding lanes: logits 0, label 0.
  std::vector<float> x(static_cast<std::size_t>(n * K * L), 0.0f);
  std::vector<std::int32_t> y(static_cast<std::size_t>(n * L), 0);
  for (i64 l = 0; l < problems; ++l) {
    for (i64 e = 0; e < n * K; ++e) x[e * L + l] = ps[l].x[e];
    for (i64 i = 0; i < n; ++i) y[i * L + l] = ps[l].y[i];
  }
  std::vector<float> d(x.size(), -7.0f), probs(x.size(), -7.0f),
      values(static_cast<std::size_t>(kMetricCount * n * L), -7.0f);
  const ClassLoss got =
      softmax_ce(lanes, n, K, x.data(), y.data(), form, d.data(), probs.data(), values.data());

  for (i64 l = 0; l < problems; ++l) {
    SCOPED_TRACE(::testing::Message() << "lane " << l);
    const Problem& p = ps[l];
    std::vector<float> rd(static_cast<std::size_t>(n * K)), rp(rd.size());
    const float loss = softmax_cross_entropy(Level::portable, n, K, p.x.data(), p.y.data(), nullptr,
                                             rd.data(), form, rp.data());
    EXPECT_TRUE(same(got.loss[l], loss));
    EXPECT_EQ(got.correct[l], correct_rows(p.x, p.y, n, K));
    for (i64 e = 0; e < n * K; ++e) {
      ASSERT_TRUE(same(d[e * L + l], rd[e])) << "dlogits element " << e;
      ASSERT_TRUE(same(probs[e * L + l], rp[e])) << "softmax element " << e;
    }
    MetricAccumulator acc;
    const std::vector<float> dense = one_hot(p.y.data(), n, K);
    acc.add(rp.data(), dense.data(), n, K);
    for (int m = 0; m < kMetricCount; ++m)
      for (i64 i = 0; i < n; ++i)
        ASSERT_TRUE(same(values[(m * n + i) * L + l], acc.values(static_cast<Metric>(m))[i]))
            << metric_name(static_cast<Metric>(m)) << " of sample " << i;
  }
}

TEST(LanesLoss, EveryLaneIsItsRepetitionAlone) {
  for (CrossEntropyForm form : {CrossEntropyForm::exact, CrossEntropyForm::keras_clipped})
    for (int lanes : {8, 16})
      for (i64 K : {2, 7, 10, 23})
        for (float scale : {3.0f, 40.0f}) {
          check(lanes, lanes, 37, K, form, scale);
          check(lanes, lanes - 3, 256, K, form, scale);  // padding lanes
        }
}

TEST(LanesLoss, MoreRowsThanAChunkAndOneRow) {
  // 300 rows: the mean's canonical sum is two chunks and the tree; one row; one output.
  for (CrossEntropyForm form : {CrossEntropyForm::exact, CrossEntropyForm::keras_clipped}) {
    check(8, 8, 300, 7, form, 5.0f);
    check(16, 11, 300, 7, form, 5.0f);
    check(8, 5, 1, 7, form, 5.0f);
    check(8, 8, 20, 1, form, 5.0f);
  }
}

TEST(LanesLoss, RefusesLabelsOutsideTheClassesAndTooManyOutputs) {
  std::vector<float> x(4 * 3 * 8, 0.0f), d(x.size()), p(x.size());
  std::vector<std::int32_t> y(4 * 8, 0);
  y[2 * 8 + 5] = 3;
  try {
    softmax_ce(8, 4, 3, x.data(), y.data(), CrossEntropyForm::exact, d.data(), p.data(), nullptr);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("row 2 lane 5"), std::string::npos) << e.what();
  }
  y[2 * 8 + 5] = -1;
  EXPECT_THROW(
      softmax_ce(8, 4, 3, x.data(), y.data(), CrossEntropyForm::exact, d.data(), p.data(), nullptr),
      std::invalid_argument);
  std::vector<float> wide(2 * 257 * 8, 0.0f), wd(wide.size()), wp(wide.size());
  std::vector<std::int32_t> y0(2 * 8, 0);
  EXPECT_THROW(softmax_ce(8, 2, 257, wide.data(), y0.data(), CrossEntropyForm::exact, wd.data(),
                          wp.data(), nullptr),
               std::invalid_argument);
  EXPECT_THROW(softmax_ce(4, 2, 3, x.data(), y0.data(), CrossEntropyForm::exact, d.data(), p.data(),
                          nullptr),
               std::invalid_argument);
}

}  // namespace
}  // namespace detdl::cpu::lanes
