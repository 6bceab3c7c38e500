// Activations (kernels/common/activation.h, kernels/cpu/activation.cpp): forward against a
// float64 reference, backward against float64 finite differences and the analytic float64
// derivative, and the CPU kernels bit-equal to the scalar formulas on 1, 2 and 3 threads.
#include "kernels/cpu/activation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/cpu/parallel.h"

namespace detdl {
namespace {

constexpr Activation kAll[] = {
    Activation::identity, Activation::relu, Activation::leaky_relu, Activation::elu,
    Activation::selu,     Activation::tanh, Activation::sigmoid,    Activation::thresholded_relu};
static_assert(sizeof(kAll) / sizeof(kAll[0]) == kActivationCount);

float alpha_for(Activation a) {
  return a == Activation::leaky_relu         ? 0.01f
         : a == Activation::elu              ? 1.3f
         : a == Activation::thresholded_relu ? 1.0f  // Keras's default theta
                                             : 0.0f;
}

// Float64 forward with the float constants the kernel uses.
double ref_forward(Activation a, double x, double alpha) {
  switch (a) {
    case Activation::identity: return x;
    case Activation::relu: return x > 0 ? x : 0;
    case Activation::leaky_relu: return x > 0 ? x : alpha * x;
    case Activation::elu: return x > 0 ? x : alpha * std::expm1(x);
    case Activation::selu:
      return x > 0 ? double(kSeluScale) * x
                   : double(kSeluScale) * double(kSeluAlpha) * std::expm1(x);
    case Activation::tanh: return std::tanh(x);
    case Activation::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Activation::thresholded_relu: return x > alpha ? x : 0;
  }
  return 0;
}

double ref_derivative(Activation a, double x, double alpha) {
  switch (a) {
    case Activation::identity: return 1;
    case Activation::relu: return x > 0 ? 1 : 0;
    case Activation::leaky_relu: return x > 0 ? 1 : alpha;
    case Activation::elu: return x > 0 ? 1 : alpha * std::exp(x);
    case Activation::selu:
      return x > 0 ? double(kSeluScale) : double(kSeluScale) * double(kSeluAlpha) * std::exp(x);
    case Activation::tanh: {
      const double t = std::tanh(x);
      return 1 - t * t;
    }
    case Activation::sigmoid: {
      const double s = 1.0 / (1.0 + std::exp(-x));
      return s * (1 - s);
    }
    case Activation::thresholded_relu: return x > alpha ? 1 : 0;
  }
  return 0;
}

// Inputs: a grid over [-30, 30] plus points near 0 and the special cases.
std::vector<float> inputs() {
  std::vector<float> x;
  for (int i = -30000; i <= 30000; ++i) x.push_back(static_cast<float>(i) * 1e-3f);
  for (float v :
       {1e-30f, -1e-30f, 1e-6f, -1e-6f, 0.0f, -0.0f, 50.0f, -50.0f, 88.0f, -88.0f, 200.0f, -200.0f})
    x.push_back(v);
  return x;
}

TEST(Activation, Names) {
  for (Activation a : kAll) {
    const auto parsed = parse_activation(activation_name(a));
    ASSERT_TRUE(parsed.has_value()) << activation_name(a);
    EXPECT_EQ(*parsed, a);
  }
  EXPECT_FALSE(parse_activation("gelu").has_value());
  EXPECT_FALSE(parse_activation("").has_value());
}

TEST(Activation, ForwardAgainstFloat64) {
  for (Activation a : kAll) {
    const float alpha = alpha_for(a);
    for (float x : inputs()) {
      const float y = act_forward(a, x, alpha);
      const double ref = ref_forward(a, x, alpha);
      // 6 ulp relative (the transcendental's few ulp plus the formula's roundings).
      EXPECT_NEAR(y, ref, 6 * 0x1p-24 * std::fabs(ref) + 1e-40)
          << activation_name(a) << " x = " << x;
    }
  }
  EXPECT_EQ(act_forward(Activation::sigmoid, -200.0f, 0), 0.0f);
  EXPECT_EQ(act_forward(Activation::sigmoid, 200.0f, 0), 1.0f);
  EXPECT_EQ(act_forward(Activation::relu, 0.0f, 0), 0.0f);
}

TEST(Activation, BackwardAgainstFloat64) {
  for (Activation a : kAll) {
    const float alpha = alpha_for(a);
    for (float x : inputs()) {
      const float y = act_forward(a, x, alpha);
      const float dy = 0.75f;
      const float dx = act_backward(a, x, y, dy, alpha);
      const double d = ref_derivative(a, x, alpha);
      // tanh and sigmoid use 1 - y*y and y*(1 - y): y near 1 carries an absolute error
      // of half an ulp of 1, so their derivative is good to ~2^-23 absolute; the others
      // are relative.
      const double tol = (a == Activation::tanh || a == Activation::sigmoid)
                             ? dy * (4 * 0x1p-24 * std::fabs(d) + 0x1p-22)
                             : dy * 4 * 0x1p-24 * std::fabs(d) + 1e-40;
      EXPECT_NEAR(dx, dy * d, tol) << activation_name(a) << " x = " << x;
    }
  }
  // ReLU's derivative at 0 is 0; leaky ReLU's is alpha.
  EXPECT_EQ(act_backward(Activation::relu, 0.0f, 0.0f, 1.0f, 0), 0.0f);
  EXPECT_EQ(act_backward(Activation::leaky_relu, 0.0f, 0.0f, 1.0f, 0.01f), 0.01f);
  // Keras's ThresholdedReLU: x > theta strictly, so x = theta gives 0 and no gradient.
  EXPECT_EQ(act_forward(Activation::thresholded_relu, 1.0f, 1.0f), 0.0f);
  EXPECT_EQ(act_forward(Activation::thresholded_relu, 1.5f, 1.0f), 1.5f);
  EXPECT_EQ(act_backward(Activation::thresholded_relu, 1.0f, 0.0f, 1.0f, 1.0f), 0.0f);
  EXPECT_EQ(act_backward(Activation::thresholded_relu, 1.5f, 1.5f, 1.0f, 1.0f), 1.0f);
}

// The analytic float64 derivative itself against central differences of the float64
// forward, away from the kinks at 0.
TEST(Activation, DerivativeMatchesFiniteDifferences) {
  for (Activation a : kAll) {
    const double alpha = alpha_for(a);
    for (int i = -400; i <= 400; ++i) {
      const double x = i * 0.0251 + 0.003;
      const double h = 1e-6;
      const double fd = (ref_forward(a, x + h, alpha) - ref_forward(a, x - h, alpha)) / (2 * h);
      EXPECT_NEAR(ref_derivative(a, x, alpha), fd, 1e-8 + 1e-7 * std::fabs(fd))
          << activation_name(a) << " x = " << x;
      // And the float kernel against the same differences.
      const float xf = static_cast<float>(x);
      const double fdf =
          (ref_forward(a, double(xf) + h, alpha) - ref_forward(a, double(xf) - h, alpha)) / (2 * h);
      const float dx = act_backward(a, xf, act_forward(a, xf, float(alpha)), 1.0f, float(alpha));
      EXPECT_NEAR(dx, fdf, 1e-6 + 1e-6 * std::fabs(fdf)) << activation_name(a) << " x = " << xf;
    }
  }
}

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// The CPU kernels equal a scalar loop over the shared formula bit for bit, for sizes
// around the kernel's task grain and any thread count.
TEST(Activation, KernelsBitEqualScalarOnAnyThreadCount) {
  for (int threads : {1, 2, 3}) {
    cpu::set_num_threads(threads);
    for (std::int64_t n : {1, 7, 257, 16385, 40001}) {
      std::vector<float> x(n), dy(n);
      for (std::int64_t i = 0; i < n; ++i) {
        x[i] = (philox_uniform(3, RandomStream::test, 0, i) - 0.5f) * 24.0f;
        dy[i] = philox_uniform(3, RandomStream::test, 1, i) - 0.5f;
      }
      // Special values among them (the vector loops must keep the scalar formula's answer
      // for NaN, signed zeros, infinities and subnormals, in x and in dy).
      const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                                -0.0f,
                                0.0f,
                                std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity(),
                                1e-40f,
                                -1e-40f};
      for (std::int64_t i = 0; i < n; i += 5) {
        x[i] = specials[(i / 5) % 7];
        if (i % 3 == 0) dy[i] = specials[(i / 3) % 7];
      }
      for (Activation a : kAll) {
        const float alpha = alpha_for(a);
        std::vector<float> y(n, -7.0f), dx(n, -7.0f);
        cpu::activation_forward(a, alpha, x.data(), y.data(), n);
        cpu::activation_backward(a, alpha, x.data(), y.data(), dy.data(), dx.data(), n);
        for (std::int64_t i = 0; i < n; ++i) {  // the scalar formulas, element by element
          const float y_ref = act_forward(a, x[i], alpha);
          const float dx_ref = act_backward(a, x[i], y_ref, dy[i], alpha);
          ASSERT_EQ(bits(y[i]), bits(y_ref))
              << activation_name(a) << " n " << n << " i " << i << " threads " << threads;
          ASSERT_EQ(bits(dx[i]), bits(dx_ref))
              << activation_name(a) << " n " << n << " i " << i << " threads " << threads;
        }
      }
    }
  }
  cpu::set_num_threads(1);
}

}  // namespace
}  // namespace detdl
