// BUTTER's dense networks: width generators against values worked out by hand from the
// formulas in ../shared/design/BUTTER.md, the w0 search against the published worked
// examples and a brute-force scan, the 20% rule, and the built MLP (parameter count, a
// float64 forward of the residual variant, gradients, thread-count independence).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "kernels/cpu/parallel.h"
#include "nets/blocks.h"
#include "nets/butter.h"
#include "tests/engine/gradcheck.h"

using namespace detdl;
using namespace detdl::nets;
using Widths = std::vector<std::int64_t>;

namespace {

const ButterShape kAllShapes[] = {
    ButterShape::rectangle,      ButterShape::trapezoid,          ButterShape::exponential,
    ButterShape::wide_first_2x,  ButterShape::wide_first_4x,      ButterShape::wide_first_8x,
    ButterShape::wide_first_16x, ButterShape::rectangle_residual,
};

template <class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<nothing thrown>";
}

}  // namespace

TEST(Butter, ShapeNamesRoundTrip) {
  for (const ButterShape s : kAllShapes) {
    const auto parsed = parse_butter_shape(butter_shape_name(s));
    ASSERT_TRUE(parsed.has_value()) << butter_shape_name(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(butter_shape_name(ButterShape::wide_first_16x), "wide_first_16x");
  EXPECT_FALSE(parse_butter_shape("rectangular").has_value());
  EXPECT_FALSE(parse_butter_shape("").has_value());
}

TEST(Butter, RectangleAndResidualWidths) {
  EXPECT_EQ(butter_widths(ButterShape::rectangle, 23, 3, 7), (Widths{23, 23, 7}));
  EXPECT_EQ(butter_widths(ButterShape::rectangle, 5, 2, 3), (Widths{5, 3}));
  EXPECT_EQ(butter_widths(ButterShape::rectangle_residual, 9, 5, 2), (Widths{9, 9, 9, 9, 2}));
}

TEST(Butter, TrapezoidWidthsByHand) {
  // b = (10 - 1) / 3 = 3: 10, 7, 4, 1.
  EXPECT_EQ(butter_widths(ButterShape::trapezoid, 10, 4, 1), (Widths{10, 7, 4, 1}));
  // b = 17 / 4 = 4.25: 20, 15.75 -> 16, 11.5 -> 12 (half to even), 7.25 -> 7, 3.
  EXPECT_EQ(butter_widths(ButterShape::trapezoid, 20, 5, 3), (Widths{20, 16, 12, 7, 3}));
  // b = 5 / 2 = 2.5: 7, 4.5 -> 4 (half to even, not 5), 2.
  EXPECT_EQ(butter_widths(ButterShape::trapezoid, 7, 3, 2), (Widths{7, 4, 2}));
}

TEST(Butter, ExponentialWidthsByHand) {
  // b = (1/64)^(1/3) = 1/4: 64, 16, 4, 1.
  EXPECT_EQ(butter_widths(ButterShape::exponential, 64, 4, 1), (Widths{64, 16, 4, 1}));
  // b = 0.04^(1/2) = 0.2: 100, 20, 4.
  EXPECT_EQ(butter_widths(ButterShape::exponential, 100, 3, 4), (Widths{100, 20, 4}));
  // b = 10^(-1/3) = 0.4642: 10, 4.642 -> 5, 2.154 -> 2, 1.
  EXPECT_EQ(butter_widths(ButterShape::exponential, 10, 4, 1), (Widths{10, 5, 2, 1}));
  // w0 below n_out: b = (5/3)^(1/2) > 1 and max(n_out, .) lifts every width to 5.
  EXPECT_EQ(butter_widths(ButterShape::exponential, 3, 3, 5), (Widths{5, 5, 5}));
}

TEST(Butter, WideFirstWidthsByHand) {
  EXPECT_EQ(butter_widths(ButterShape::wide_first_2x, 7, 4, 3), (Widths{7, 4, 4, 3}));  // 3.5 -> 4
  EXPECT_EQ(butter_widths(ButterShape::wide_first_4x, 10, 4, 1),
            (Widths{10, 2, 2, 1}));  // 2.5 -> 2
  EXPECT_EQ(butter_widths(ButterShape::wide_first_8x, 100, 3, 2),
            (Widths{100, 12, 2}));  // 12.5 -> 12
  EXPECT_EQ(butter_widths(ButterShape::wide_first_16x, 7, 5, 2),
            (Widths{7, 1, 1, 1, 2}));  // 0.44 -> 0 -> 1
  EXPECT_EQ(butter_widths(ButterShape::wide_first_16x, 40, 2, 2),
            (Widths{40, 2}));  // no narrow layers
}

TEST(Butter, ParamCountByHand) {
  // (11+1)*23 + (23+1)*23 + (23+1)*7 = 276 + 552 + 168.
  EXPECT_EQ(butter_param_count({23, 23, 7}, 11), 996);
  // (2+1)*30 + 31*30 + 31*1 = 90 + 930 + 31.
  EXPECT_EQ(butter_param_count({30, 30, 1}, 2), 1051);
  // Widths the search can probe overflow int64: the count saturates instead of wrapping.
  const std::int64_t big = std::int64_t{1} << 30;
  EXPECT_EQ(butter_param_count(Widths(20, big), big), std::numeric_limits<std::int64_t>::max());
}

TEST(Butter, PublishedWorkedExamples) {
  const ButterPlan wine = butter_plan(ButterShape::rectangle, 1024, 3, 11, 7);
  EXPECT_EQ(wine.widths, (Widths{23, 23, 7}));
  EXPECT_EQ(wine.params, 996);
  EXPECT_EQ(wine.size, 1024);
  EXPECT_TRUE(wine.conformant);
  const ButterPlan banana = butter_plan(ButterShape::rectangle, 1024, 3, 2, 1);
  EXPECT_EQ(banana.widths, (Widths{30, 30, 1}));
  EXPECT_EQ(banana.params, 1051);
  EXPECT_TRUE(banana.conformant);
}

// Every generator's count is non-decreasing in w0, so the search must reach the smallest
// distance a full scan finds.
TEST(Butter, SearchFindsTheClosestCountOfAFullScan) {
  struct Case {
    std::int64_t size, depth, n_in, n_out;
  };
  const Case cases[] = {
      {1024, 3, 11, 7}, {4096, 5, 2, 1}, {16384, 6, 20, 3}, {300, 2, 5, 10}, {65536, 10, 8, 2}};
  for (const ButterShape s : kAllShapes) {
    for (const Case& c : cases) {
      const ButterPlan plan = butter_plan(s, c.size, c.depth, c.n_in, c.n_out);
      std::int64_t best = std::numeric_limits<std::int64_t>::max();
      for (std::int64_t w0 = 1;; ++w0) {
        const std::int64_t p = butter_param_count(butter_widths(s, w0, c.depth, c.n_out), c.n_in);
        best = std::min(best, static_cast<std::int64_t>(std::llabs(p - c.size)));
        if (p > 2 * c.size) break;
      }
      EXPECT_EQ(static_cast<std::int64_t>(std::llabs(plan.params - c.size)), best)
          << butter_shape_name(s) << " size " << c.size;
      EXPECT_EQ(plan.params, butter_param_count(plan.widths, c.n_in));
      EXPECT_EQ(static_cast<std::int64_t>(plan.widths.size()), c.depth);
      EXPECT_EQ(plan.widths.back(), c.n_out);
    }
  }
}

TEST(Butter, TieKeepsTheFirstEvaluatedWidth) {
  // Depth 2, 2 -> 1: params = 3 w0 + (w0 + 1) = 4 w0 + 1. Size 11 lies between w0 = 2 (9)
  // and w0 = 3 (13), both 2 away. The search halves hi down to 4, then evaluates mid 2
  // (9 < 11: lo = 3) before mid 3 (13 > 11): the first evaluated, w0 = 2, is kept.
  const ButterPlan plan = butter_plan(ButterShape::rectangle, 11, 2, 2, 1);
  EXPECT_EQ(plan.widths, (Widths{2, 1}));
  EXPECT_EQ(plan.params, 9);
}

TEST(Butter, TwentyPercentRule) {
  // Depth 2, 1 -> 1: params = 2 w0 + (w0 + 1) = 3 w0 + 1, the smallest 4.
  const ButterPlan at_limit = butter_plan(ButterShape::rectangle, 5, 2, 1, 1);  // 4 is 20% off
  EXPECT_EQ(at_limit.params, 4);
  EXPECT_TRUE(at_limit.conformant);
  const ButterPlan over = butter_plan(ButterShape::rectangle, 3, 2, 1, 1);  // 4 is 33% off
  EXPECT_EQ(over.params, 4);
  EXPECT_FALSE(over.conformant);
}

// The 20% rule is recorded, not enforced: the published data holds networks past it.
TEST(Butter, NonConformantPlanIsBuiltAndSaysHowFarItIs) {
  // 1000 inputs: even w0 = 1 costs 1001 + 2 + 2 = 1005 parameters, 100x the size.
  const ButterPlan plan = butter_plan(ButterShape::rectangle, 10, 3, 1000, 1);
  EXPECT_FALSE(plan.conformant);
  EXPECT_EQ(plan.params, 1005);
  EXPECT_NEAR(plan.relative_distance(), 99.5, 1e-12);
  const auto m = make_butter_mlp(ButterShape::rectangle, plan, 1000, true);
  EXPECT_EQ(m->parameter_count(), 1005);
  // BUTTER.md: mnist / rectangle / depth 3 / size 1024 is published at 807 parameters
  // (784 inputs, w0 = 1, 10 outputs), 21% under the size.
  const ButterPlan mnist = butter_plan(ButterShape::rectangle, 1024, 3, 784, 10);
  EXPECT_EQ(mnist.params, 807);
  EXPECT_EQ(mnist.widths, (Widths{1, 1, 10}));
  EXPECT_FALSE(mnist.conformant);
  EXPECT_NEAR(mnist.relative_distance(), (807.0 - 1024.0) / 1024.0, 1e-15);
  EXPECT_EQ(make_butter_mlp(ButterShape::rectangle, mnist, 784, false)->parameter_count(), 807);
}

TEST(Butter, BadArgumentsAreNamed) {
  EXPECT_NE(
      thrown_message([] { butter_plan(ButterShape::rectangle, 1024, 1, 11, 7); }).find("depth"),
      std::string::npos);
  EXPECT_NE(thrown_message([] { butter_plan(ButterShape::rectangle, 0, 3, 11, 7); }).find("size"),
            std::string::npos);
  EXPECT_NE(thrown_message([] { butter_plan(ButterShape::rectangle, 1024, 3, 0, 7); }).find("n_in"),
            std::string::npos);
  EXPECT_NE(
      thrown_message([] { butter_plan(ButterShape::rectangle, 1024, 3, 11, 0); }).find("n_out"),
      std::string::npos);
  EXPECT_NE(thrown_message([] { butter_widths(ButterShape::trapezoid, 0, 3, 1); }).find("w0"),
            std::string::npos);
  // A plan built for 11 inputs does not fit 12.
  const ButterPlan wine = butter_plan(ButterShape::rectangle, 1024, 3, 11, 7);
  EXPECT_NE(thrown_message([&] {
              make_butter_mlp(ButterShape::rectangle, wine, 12, false);
            }).find("n_in"),
            std::string::npos);
}

TEST(Butter, BuiltModuleMatchesThePlan) {
  for (const ButterShape s : kAllShapes) {
    const ButterPlan plan = butter_plan(s, 5000, 5, 13, 3);
    ASSERT_TRUE(plan.conformant) << butter_shape_name(s);
    auto m = make_butter_mlp(s, plan, 13, false);
    EXPECT_EQ(m->parameter_count(), plan.params) << butter_shape_name(s);
    EXPECT_EQ(m->parameters().size(), 2 * plan.widths.size())
        << butter_shape_name(s);  // kernel + bias per layer
    m->initialize(3);
    NoGradGuard ng;
    const Tensor y = m->forward(detdl::testing::random_tensor({6, 13}, 1));
    EXPECT_EQ(y.shape(), (Shape{6, 3}));
  }
}

TEST(Butter, InitIsGlorotKernelsAndZeroBiases) {
  const ButterPlan plan = butter_plan(ButterShape::rectangle, 2000, 3, 10, 2);
  auto m = make_butter_mlp(ButterShape::rectangle, plan, 10, true);
  m->initialize(11);
  for (const auto& p : m->parameters()) {
    const auto v = p.tensor.to_vector();
    if (p.tensor.ndim() == 1) {
      for (float x : v) EXPECT_EQ(x, 0.0f) << p.name;
    } else {
      const double limit = std::sqrt(6.0 / static_cast<double>(p.tensor.dim(0) + p.tensor.dim(1)));
      float largest = 0.0f;
      for (float x : v) largest = std::max(largest, std::fabs(x));
      EXPECT_LE(largest, limit) << p.name;
      EXPECT_GT(largest, 0.5 * limit) << p.name;  // really drawn, not zeros
    }
  }
}

// The residual MLP against a float64 forward written from BUTTER.md's formula:
// h1 = relu(W0 x + b0); h_d = relu(W_d h_{d-1} + b_d) + h_{d-1}; y = sigmoid(W h + b).
TEST(Butter, ResidualForwardMatchesFloat64Reference) {
  const std::int64_t n_in = 3, depth = 4, n_out = 2, batch = 5;
  const ButterPlan plan = butter_plan(ButterShape::rectangle_residual, 200, depth, n_in, n_out);
  ASSERT_TRUE(plan.conformant);
  auto m = make_butter_mlp(ButterShape::rectangle_residual, plan, n_in, true);
  m->initialize(5);
  const auto ps = m->parameters();
  // Non-zero biases so that they are exercised too.
  for (const auto& p : ps)
    if (p.tensor.ndim() == 1) {
      Tensor t = p.tensor;
      const Tensor r = detdl::testing::random_tensor(t.shape(), 77, -0.3f, 0.3f);
      std::memcpy(t.f32(), r.f32(), sizeof(float) * t.numel());
    }
  const Tensor x = detdl::testing::random_tensor({batch, n_in}, 9);
  Tensor y;
  {
    NoGradGuard ng;
    y = m->forward(x);
  }
  ASSERT_EQ(y.shape(), (Shape{batch, n_out}));
  for (std::int64_t n = 0; n < batch; ++n) {
    std::vector<double> h(x.f32() + n * n_in, x.f32() + (n + 1) * n_in);
    for (std::int64_t d = 0; d < depth; ++d) {
      const Tensor& w = ps[2 * d].tensor;      // (O, I)
      const Tensor& b = ps[2 * d + 1].tensor;  // (O)
      const std::int64_t out = w.dim(0), in = w.dim(1);
      std::vector<double> next(out);
      for (std::int64_t o = 0; o < out; ++o) {
        double s = b.f32()[o];
        for (std::int64_t i = 0; i < in; ++i) s += static_cast<double>(w.f32()[o * in + i]) * h[i];
        if (d == depth - 1) {
          next[o] = 1.0 / (1.0 + std::exp(-s));
        } else {
          next[o] =
              std::max(0.0, s) + (d >= 1 ? h[o] : 0.0);  // skips on hidden layers 1 .. depth-2
        }
      }
      h = next;
    }
    for (std::int64_t o = 0; o < n_out; ++o)
      EXPECT_NEAR(y.f32()[n * n_out + o], h[o], 1e-5) << n << "," << o;
  }
}

TEST(Butter, ResidualDenseGradientsMatchFiniteDifferences) {
  ResidualDense block(4);
  block.initialize(21);
  std::vector<Tensor> inputs{detdl::testing::random_tensor({3, 4}, 2)};
  for (const auto& p : block.parameters()) inputs.push_back(p.tensor);
  detdl::testing::expect_gradients_match(
      [&](const std::vector<Tensor>& in) { return block.forward(in[0]); }, inputs, 1e-3f);
}

TEST(Butter, ForwardBackwardBitIdenticalOnOneAndTwoThreads) {
  const ButterPlan plan = butter_plan(ButterShape::rectangle_residual, 20000, 4, 30, 1);
  auto run = [&](int threads) {
    cpu::set_num_threads(threads);
    auto m = make_butter_mlp(ButterShape::rectangle_residual, plan, 30, true);
    m->initialize(4);
    const Tensor x =
        detdl::testing::random_tensor({300, 30}, 8);  // > 256 rows: two bias-grad chunks
    const Tensor t = detdl::testing::random_tensor({300, 1}, 9, 0.0f, 1.0f);
    const Tensor y = m->forward(x);
    backward(ops::mean_squared_error(y, t));
    std::vector<float> bits = y.to_vector();
    for (const auto& p : m->parameters()) {
      const auto g = p.tensor.grad().to_vector();
      bits.insert(bits.end(), g.begin(), g.end());
    }
    cpu::set_num_threads(1);
    return bits;
  };
  const auto one = run(1), two = run(2);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(std::memcmp(one.data(), two.data(), sizeof(float) * one.size()), 0);
}
