// Per-epoch metrics (engine/metrics.h): each against a float64 plain-loop reference of the
// Keras 2 formula, hand-worked tiny cases, RMSE pooling, hinge's 0/1 conversion, batch
// splits that must not change a bit, per-class accuracy, NaN and bad arguments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "engine/metrics.h"

using namespace detdl;

namespace {

constexpr std::size_t idx(Metric m) { return static_cast<std::size_t>(m); }

struct Batch {
  std::vector<float> pred;    // (n, k)
  std::vector<float> target;  // (n, k)
  std::int64_t n = 0;
};

// The Keras 2 formulas in float64, one plain loop per sample; hinge converts 0/1 targets per
// batch; RMSE pools the squared errors of all elements.
std::array<double, kMetricCount> reference(const std::vector<Batch>& batches, std::int64_t k) {
  const double eps = 1e-7;
  std::array<double, kMetricCount> sum{};
  double squared_total = 0;
  std::int64_t samples = 0;
  for (const Batch& b : batches) {
    bool binary = true;
    for (float t : b.target) binary = binary && (t == 0.0f || t == 1.0f);
    for (std::int64_t i = 0; i < b.n; ++i) {
      const float* p = b.pred.data() + i * k;
      const float* y = b.target.data() + i * k;
      if (k == 1) {
        sum[idx(Metric::accuracy)] += ((p[0] > 0.5) == (y[0] > 0.5)) ? 1 : 0;
      } else {
        std::int64_t ap = 0, ay = 0;
        for (std::int64_t j = 1; j < k; ++j) {
          if (p[j] > p[ap]) ap = j;
          if (y[j] > y[ay]) ay = j;
        }
        sum[idx(Metric::accuracy)] += ap == ay ? 1 : 0;
      }
      double yy = 0, pp = 0;
      for (std::int64_t j = 0; j < k; ++j) {
        yy += double(y[j]) * y[j];
        pp += double(p[j]) * p[j];
      }
      const double ny = std::sqrt(std::max(yy, 1e-12)), np = std::sqrt(std::max(pp, 1e-12));
      double cosine = 0, hinge = 0, sq_hinge = 0, kld = 0, mae = 0, mse = 0, msle = 0;
      for (std::int64_t j = 0; j < k; ++j) {
        cosine += (y[j] / ny) * (p[j] / np);
        const double ys = binary ? 2.0 * y[j] - 1.0 : y[j];
        const double h = std::max(1.0 - ys * p[j], 0.0);
        hinge += h;
        sq_hinge += h * h;
        const double yc = std::clamp<double>(y[j], eps, 1.0),
                     pc = std::clamp<double>(p[j], eps, 1.0);
        kld += yc * std::log(yc / pc);
        mae += std::fabs(double(p[j]) - y[j]);
        mse += (double(p[j]) - y[j]) * (double(p[j]) - y[j]);
        const double dl = std::log(std::max<double>(p[j], eps) + 1.0) -
                          std::log(std::max<double>(y[j], eps) + 1.0);
        msle += dl * dl;
      }
      sum[idx(Metric::cosine_similarity)] += cosine;
      sum[idx(Metric::hinge)] += hinge / k;
      sum[idx(Metric::squared_hinge)] += sq_hinge / k;
      sum[idx(Metric::kl_divergence)] += kld;
      sum[idx(Metric::mean_absolute_error)] += mae / k;
      sum[idx(Metric::mean_squared_error)] += mse / k;
      sum[idx(Metric::mean_squared_logarithmic_error)] += msle / k;
      squared_total += mse;
    }
    samples += b.n;
  }
  std::array<double, kMetricCount> out{};
  for (int m = 0; m < kMetricCount; ++m)
    out[static_cast<std::size_t>(m)] = sum[static_cast<std::size_t>(m)] / samples;
  out[idx(Metric::root_mean_squared_error)] = std::sqrt(squared_total / double(samples * k));
  return out;
}

enum class Kind { softmax_onehot, sigmoid_binary, regression };

// Predictions after the output activation and dense targets of the given kind.
Batch random_batch(std::mt19937& rng, std::int64_t n, std::int64_t k, Kind kind) {
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::uniform_int_distribution<std::int64_t> cls(0, k - 1);
  Batch b;
  b.n = n;
  b.pred.resize(static_cast<std::size_t>(n * k));
  b.target.assign(static_cast<std::size_t>(n * k), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    float* p = b.pred.data() + i * k;
    float* y = b.target.data() + i * k;
    if (kind == Kind::softmax_onehot) {
      double z = 0;
      for (std::int64_t j = 0; j < k; ++j) z += (p[j] = std::exp(normal(rng)));
      for (std::int64_t j = 0; j < k; ++j) p[j] = static_cast<float>(p[j] / z);
      y[cls(rng)] = 1.0f;
    } else if (kind == Kind::sigmoid_binary) {
      for (std::int64_t j = 0; j < k; ++j) {
        p[j] = static_cast<float>(1.0 / (1.0 + std::exp(-normal(rng))));
        y[j] = (rng() & 1) ? 1.0f : 0.0f;
      }
    } else {
      for (std::int64_t j = 0; j < k; ++j) {
        p[j] = normal(rng);
        y[j] = normal(rng);
      }
    }
  }
  return b;
}

std::array<double, kMetricCount> accumulate(const std::vector<Batch>& batches, std::int64_t k) {
  MetricAccumulator acc;
  for (const Batch& b : batches) acc.add(b.pred.data(), b.target.data(), b.n, k);
  return acc.result();
}

void expect_matches_reference(const std::vector<Batch>& batches, std::int64_t k,
                              const std::string& what) {
  const auto got = accumulate(batches, k);
  const auto want = reference(batches, k);
  for (int m = 0; m < kMetricCount; ++m) {
    const double g = got[static_cast<std::size_t>(m)], w = want[static_cast<std::size_t>(m)];
    // Float arithmetic against float64: a few float roundings per term, relative to the
    // value (with a floor for values near 0 such as the KL divergence of good predictions).
    EXPECT_NEAR(g, w, 2e-6 * std::max(std::fabs(w), 0.1))
        << what << ' ' << metric_name(static_cast<Metric>(m));
  }
}

}  // namespace

TEST(Metrics, NamesAreTheKerasOnes) {
  const char* names[] = {"accuracy",
                         "cosine_similarity",
                         "hinge",
                         "kullback_leibler_divergence",
                         "mean_absolute_error",
                         "mean_squared_error",
                         "mean_squared_logarithmic_error",
                         "root_mean_squared_error",
                         "squared_hinge"};
  ASSERT_EQ(kMetricCount, 9);
  for (int m = 0; m < kMetricCount; ++m) EXPECT_EQ(metric_name(static_cast<Metric>(m)), names[m]);
  EXPECT_THROW(metric_name(Metric::count_), std::invalid_argument);
}

TEST(Metrics, RandomDataMatchesFloat64Reference) {
  std::mt19937 rng(42);
  struct Case {
    Kind kind;
    std::int64_t k;
    const char* what;
  };
  for (const Case& c :
       {Case{Kind::softmax_onehot, 10, "softmax k=10"},
        Case{Kind::softmax_onehot, 3, "softmax k=3"}, Case{Kind::sigmoid_binary, 1, "sigmoid k=1"},
        Case{Kind::sigmoid_binary, 4, "sigmoid k=4"}, Case{Kind::regression, 1, "regression k=1"},
        Case{Kind::regression, 5, "regression k=5"}}) {
    // Odd batch sizes, one of 1, and more than 256 samples so the canonical sum has chunks.
    std::vector<Batch> batches;
    for (std::int64_t n : {37, 1, 300}) batches.push_back(random_batch(rng, n, c.k, c.kind));
    expect_matches_reference(batches, c.k, c.what);
  }
}

TEST(Metrics, PerfectOneHotPredictionByHand) {
  // p == y == one-hot rows: every error is exactly 0, accuracy and cosine exactly 1, the KL
  // divergence exactly 0 (1*log 1 and eps*log 1). Hinge: the 0s become -1 with p = 0, so
  // each 0 contributes max(1 - 0, 0) = 1 and each 1 contributes max(1 - 1, 0) = 0: 2/3.
  const std::vector<float> y = {1, 0, 0, 0, 0, 1};  // (2, 3)
  MetricAccumulator acc;
  acc.add(y.data(), y.data(), 2, 3);
  const auto r = acc.result();
  EXPECT_EQ(acc.samples(), 2);
  EXPECT_EQ(r[idx(Metric::accuracy)], 1.0);
  EXPECT_EQ(r[idx(Metric::cosine_similarity)], 1.0);
  EXPECT_EQ(r[idx(Metric::kl_divergence)], 0.0);
  EXPECT_EQ(r[idx(Metric::mean_absolute_error)], 0.0);
  EXPECT_EQ(r[idx(Metric::mean_squared_error)], 0.0);
  EXPECT_EQ(r[idx(Metric::mean_squared_logarithmic_error)], 0.0);
  EXPECT_EQ(r[idx(Metric::root_mean_squared_error)], 0.0);
  EXPECT_NEAR(r[idx(Metric::hinge)], 2.0 / 3.0, 1e-7);
  EXPECT_NEAR(r[idx(Metric::squared_hinge)], 2.0 / 3.0, 1e-7);
}

TEST(Metrics, BinaryOutputByHand) {
  // p = (0.8, 0.3, 0.6), y = (1, 1, 0), one output each.
  // accuracy: 0.8>0.5 ok, 0.3 wrong, 0.6 vs 0 wrong -> 1/3.
  // mae (0.2 + 0.7 + 0.6)/3 = 0.5; mse (0.04 + 0.49 + 0.36)/3; rmse sqrt(0.89/3).
  // hinge with y' = (1, 1, -1): (0.2 + 0.7 + 1.6)/3; squared (0.04 + 0.49 + 2.56)/3.
  // cosine per sample: 1, 1, and 0 for y = 0 (its norm is floored at 1e-6): 2/3.
  const std::vector<float> p = {0.8f, 0.3f, 0.6f}, y = {1, 1, 0};
  MetricAccumulator acc;
  acc.add(p.data(), y.data(), 3, 1);
  const auto r = acc.result();
  EXPECT_NEAR(r[idx(Metric::accuracy)], 1.0 / 3.0, 1e-7);
  EXPECT_NEAR(r[idx(Metric::mean_absolute_error)], 0.5, 1e-7);
  EXPECT_NEAR(r[idx(Metric::mean_squared_error)], 0.89 / 3, 1e-7);
  EXPECT_NEAR(r[idx(Metric::root_mean_squared_error)], std::sqrt(0.89 / 3), 1e-7);
  EXPECT_NEAR(r[idx(Metric::hinge)], 2.5 / 3, 1e-7);
  EXPECT_NEAR(r[idx(Metric::squared_hinge)], 3.09 / 3, 1e-7);
  EXPECT_NEAR(r[idx(Metric::cosine_similarity)], 2.0 / 3.0, 1e-7);
}

TEST(Metrics, RmsePoolsElementsAcrossBatches) {
  // Batch A: one sample, errors (2, 0); batch B: one sample, errors (0, 0).
  // Pooled: sqrt((4 + 0 + 0 + 0) / 4) = 1. The mean of per-batch roots would be
  // (sqrt(2) + 0) / 2 ~ 0.707, and the mean of per-sample roots the same.
  const std::vector<float> pa = {2, 0}, pb = {0, 0}, zeros = {0, 0};
  MetricAccumulator acc;
  acc.add(pa.data(), zeros.data(), 1, 2);
  acc.add(pb.data(), zeros.data(), 1, 2);
  EXPECT_EQ(acc.result()[idx(Metric::root_mean_squared_error)], 1.0);
  EXPECT_EQ(acc.result()[idx(Metric::mean_squared_error)], 1.0);  // (2 + 0) / 2
}

TEST(Metrics, HingeConvertsZeroOneTargetsPerBatch) {
  const std::vector<float> p = {0.3f, -0.2f};  // (1, 2)
  auto hinge_of = [&](std::vector<float> y) {
    MetricAccumulator acc;
    acc.add(p.data(), y.data(), 1, 2);
    return acc.result()[idx(Metric::hinge)];
  };
  // (1, 0) -> (1, -1): max(1 - 0.3, 0) = 0.7, max(1 - 0.2, 0) = 0.8 -> 0.75.
  EXPECT_NEAR(hinge_of({1, 0}), 0.75, 1e-7);
  // Already -1/+1: left as is, the same value.
  EXPECT_NEAR(hinge_of({1, -1}), 0.75, 1e-7);
  // Not all 0/1 (0.5): no conversion: 0.7 and max(1 + 0.1, 0) = 1.1 -> 0.9.
  EXPECT_NEAR(hinge_of({1, 0.5f}), 0.9, 1e-7);
  // The decision is per batch: a 0/1 batch then a non-binary one in one epoch.
  MetricAccumulator acc;
  const std::vector<float> y01 = {1, 0}, yhalf = {1, 0.5f};
  acc.add(p.data(), y01.data(), 1, 2);
  acc.add(p.data(), yhalf.data(), 1, 2);
  EXPECT_NEAR(acc.result()[idx(Metric::hinge)], (0.75 + 0.9) / 2, 1e-7);
  // squared hinge: (0.49 + 0.64) / 2 converted.
  MetricAccumulator sq;
  sq.add(p.data(), y01.data(), 1, 2);
  EXPECT_NEAR(sq.result()[idx(Metric::squared_hinge)], (0.49 + 0.64) / 2, 1e-7);
}

TEST(Metrics, BatchSplitDoesNotChangeABit) {
  // Per-sample values are kept and summed once in result(), so any split of the same rows
  // gives the same bits: (3, 5) vs 8, and (300, 1, 399) vs 700 across chunk boundaries.
  std::mt19937 rng(7);
  for (Kind kind : {Kind::softmax_onehot, Kind::regression, Kind::sigmoid_binary}) {
    for (const std::vector<std::int64_t>& split :
         {std::vector<std::int64_t>{3, 5}, std::vector<std::int64_t>{300, 1, 399}}) {
      std::int64_t total = 0;
      for (std::int64_t s : split) total += s;
      const std::int64_t k = kind == Kind::sigmoid_binary ? 1 : 6;
      const Batch whole = random_batch(rng, total, k, kind);
      MetricAccumulator one, parts;
      one.add(whole.pred.data(), whole.target.data(), total, k);
      std::int64_t at = 0;
      for (std::int64_t s : split) {
        parts.add(whole.pred.data() + at * k, whole.target.data() + at * k, s, k);
        at += s;
      }
      EXPECT_EQ(parts.samples(), total);
      const auto a = one.result(), b = parts.result();
      EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(a)), 0) << "split of " << total;
    }
  }
}

// Whole groups of 8 samples are computed in the lanes (kernels/cpu/metrics_avx2.h), the
// rest one by one: every per-sample value of every metric is the same bits either way
// (each sample added alone takes the one-by-one path), with NaN, infinite and all-zero rows.
TEST(Metrics, EightLaneValuesAreTheOneByOneValues) {
  std::mt19937 rng(11);
  for (Kind kind : {Kind::softmax_onehot, Kind::regression, Kind::sigmoid_binary})
    for (std::int64_t k : {1, 6, 7, 8, 10, 17}) {  // blocks of 8 columns: short, whole, two, three
      if ((kind == Kind::sigmoid_binary) != (k == 1)) continue;
      const std::int64_t n = 37;  // 4 groups of 8, 5 alone
      Batch b = random_batch(rng, n, k, kind);
      b.pred[3 * k] = std::numeric_limits<float>::quiet_NaN();
      b.pred[9 * k] = std::numeric_limits<float>::infinity();
      for (std::int64_t j = 0; j < k; ++j) b.pred[17 * k + j] = 0.0f;
      MetricAccumulator whole, alone;
      whole.add(b.pred.data(), b.target.data(), n, k);
      for (std::int64_t i = 0; i < n; ++i)
        alone.add(b.pred.data() + i * k, b.target.data() + i * k, 1, k);
      for (int m = 0; m < kMetricCount; ++m) {
        const auto& w = whole.values(static_cast<Metric>(m));
        const auto& a = alone.values(static_cast<Metric>(m));
        ASSERT_EQ(w.size(), a.size());
        EXPECT_EQ(std::memcmp(w.data(), a.data(), w.size() * sizeof(float)), 0)
            << metric_name(static_cast<Metric>(m)) << " k=" << k;
      }
    }
}

// A batch of 0/1 targets takes MSLE's target logarithms from two values computed once; a
// batch with any other target takes each element's. The same rows give the same MSLE (and
// KL) bits either way: a one-hot batch against itself with one more row of 0.5 targets.
TEST(Metrics, ZeroOneTargetsTakeTheSameLogarithmsAsAnyOthers) {
  std::mt19937 rng(13);
  for (std::int64_t k : {1, 7, 10}) {
    const std::int64_t n = 21;  // 2 groups of 8 in the lanes, 5 alone
    const Batch b = random_batch(rng, n, k, k == 1 ? Kind::sigmoid_binary : Kind::softmax_onehot);
    std::vector<float> pred = b.pred, target = b.target;
    for (std::int64_t j = 0; j < k; ++j) {
      pred.push_back(0.25f);
      target.push_back(0.5f);  // not 0 or 1: the batch takes every logarithm
    }
    MetricAccumulator zero_one, other;
    zero_one.add(b.pred.data(), b.target.data(), n, k);
    other.add(pred.data(), target.data(), n + 1, k);
    for (Metric m : {Metric::mean_squared_logarithmic_error, Metric::kl_divergence}) {
      const auto& a = zero_one.values(m);
      const auto& c = other.values(m);
      ASSERT_EQ(a.size() + 1, c.size());
      EXPECT_EQ(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)), 0)
          << metric_name(m) << " k=" << k;
    }
  }
}

TEST(Metrics, NanPredictionGivesNanNotACrash) {
  std::mt19937 rng(3);
  Batch b = random_batch(rng, 5, 4, Kind::softmax_onehot);
  b.pred[9] = std::numeric_limits<float>::quiet_NaN();  // sample 2
  MetricAccumulator acc;
  acc.add(b.pred.data(), b.target.data(), b.n, 4);
  for (double v : acc.result()) EXPECT_TRUE(std::isnan(v));
  // A regression target NaN likewise; one output.
  const std::vector<float> p = {1.0f, 2.0f}, y = {0.5f, std::numeric_limits<float>::quiet_NaN()};
  MetricAccumulator reg;
  reg.add(p.data(), y.data(), 2, 1);
  for (double v : reg.result()) EXPECT_TRUE(std::isnan(v));
  // Nothing added yet: NaN, not 0/0 trouble.
  MetricAccumulator empty;
  EXPECT_EQ(empty.samples(), 0);
  for (double v : empty.result()) EXPECT_TRUE(std::isnan(v));
}

TEST(Metrics, BadArgumentsAreRefusedByName) {
  const std::vector<float> v(12, 0.5f);
  MetricAccumulator acc;
  acc.add(v.data(), v.data(), 2, 6);
  auto message_of = [](auto&& f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  EXPECT_NE(message_of([&] { acc.add(v.data(), v.data(), 3, 4); }).find("k = 4"),
            std::string::npos);
  EXPECT_NE(message_of([&] { acc.add(v.data(), v.data(), -1, 6); }).find("n = -1"),
            std::string::npos);
  EXPECT_NE(message_of([&] { MetricAccumulator().add(v.data(), v.data(), 1, 0); }).find("k = 0"),
            std::string::npos);
  EXPECT_NE(message_of([&] { acc.add(nullptr, v.data(), 1, 6); }).find("pred"), std::string::npos);
  EXPECT_EQ(acc.samples(), 2);  // refused calls add nothing
  const std::int32_t bad[] = {0, 3};
  EXPECT_NE(message_of([&] { one_hot(bad, 2, 3); }).find("labels[1] = 3"), std::string::npos);
  EXPECT_NE(message_of([&] { per_class_accuracy(v.data(), bad, 2, 3); }).find("labels[1]"),
            std::string::npos);
}

TEST(Metrics, OneHotRows) {
  const std::int32_t labels[] = {2, 0, 1};
  EXPECT_EQ(one_hot(labels, 3, 3), (std::vector<float>{0, 0, 1, 1, 0, 0, 0, 1, 0}));
  EXPECT_TRUE(one_hot(labels, 0, 3).empty());
}

TEST(PerClassAccuracy, ByHandWithEmptyClassAndTies) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // k = 4; class 3 has no rows -> NaN.
  const std::vector<float> scores = {
      0.9f, 0.05f, 0.05f, 0.0f,  // label 0, predicted 0: right
      0.1f, 0.8f,  0.1f,  0.0f,  // label 0, predicted 1: wrong
      0.5f, 0.5f,  0.0f,  0.0f,  // label 1, tie: the first maximum (0) wins: wrong
      0.0f, 0.6f,  0.4f,  0.0f,  // label 1, predicted 1: right
      0.2f, nan,   0.9f,  0.0f,  // label 2, a NaN score counts as wrong
      0.1f, 0.1f,  0.8f,  0.0f,  // label 2, right
      0.0f, 0.0f,  1.0f,  0.0f,  // label 2, right
  };
  const std::int32_t labels[] = {0, 0, 1, 1, 2, 2, 2};
  const auto acc = per_class_accuracy(scores.data(), labels, 7, 4);
  ASSERT_EQ(acc.size(), 4u);
  EXPECT_EQ(acc[0], 0.5);
  EXPECT_EQ(acc[1], 0.5);
  EXPECT_EQ(acc[2], 2.0 / 3.0);
  EXPECT_TRUE(std::isnan(acc[3]));
}

TEST(PerClassAccuracy, TiesInTheMetricAccuracyAlsoTakeTheFirstMaximum) {
  // The same tie through MetricAccumulator: p = (0.5, 0.5) against class 1 is wrong,
  // against class 0 right.
  const std::vector<float> p = {0.5f, 0.5f, 0.5f, 0.5f};
  const std::int32_t labels[] = {1, 0};
  const auto y = one_hot(labels, 2, 2);
  MetricAccumulator acc;
  acc.add(p.data(), y.data(), 2, 2);
  EXPECT_EQ(acc.result()[idx(Metric::accuracy)], 0.5);
}
