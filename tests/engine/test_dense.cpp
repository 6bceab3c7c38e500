// linear / matmul / shape ops: float64 reference, canonical-order bits, finite differences,
// thread-count invariance.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/context.h"
#include "engine/ops/ops.h"
#include "gradcheck.h"
#include "kernels/common/reduction.h"
#include "kernels/cpu/parallel.h"

using namespace detdl;
using detdl::testing::random_tensor;

namespace {

// The canonical order as a plain loop: y[n][o] = canonical_dot over i, then + b[o].
std::vector<float> linear_reference_bits(const Tensor& x, const Tensor& w, const Tensor& b) {
  const auto N = x.dim(0), I = x.dim(1), O = w.dim(0);
  std::vector<float> y(N * O);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < O; ++o) {
      float v = canonical_dot(x.f32() + n * I, 1, w.f32() + o * I, 1, I);
      y[n * O + o] = b.defined() ? v + b.f32()[o] : v;
    }
  return y;
}

bool same_bits(const std::vector<float>& a, const float* b) {
  return std::memcmp(a.data(), b, a.size() * sizeof(float)) == 0;
}

}  // namespace

class LinearShapes : public ::testing::TestWithParam<std::tuple<int, int, int>> {};

TEST_P(LinearShapes, MatchesCanonicalLoopAndFloat64OnAnyThreadCount) {
  const auto [N, I, O] = GetParam();
  const Tensor x = random_tensor({N, I}, 1), w = random_tensor({O, I}, 2),
               b = random_tensor({O}, 3);
  const auto ref = linear_reference_bits(x, w, b);
  for (int threads : {1, 2, 3}) {
    cpu::set_num_threads(threads);
    const Tensor y = ops::linear(x, w, b);
    EXPECT_TRUE(same_bits(ref, y.f32())) << "threads " << threads;
  }
  cpu::set_num_threads(1);
  const Tensor y = ops::linear(x, w, b);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < O; ++o) {
      double s = b.f32()[o];
      for (std::int64_t i = 0; i < I; ++i)
        s += static_cast<double>(x.f32()[n * I + i]) * w.f32()[o * I + i];
      EXPECT_NEAR(y.f32()[n * O + o], s, 1e-5 * (1 + std::sqrt(static_cast<double>(I))));
    }
}

INSTANTIATE_TEST_SUITE_P(Awkward, LinearShapes,
                         ::testing::Values(std::make_tuple(1, 1, 1), std::make_tuple(3, 5, 7),
                                           std::make_tuple(17, 33, 9), std::make_tuple(2, 4097, 3),
                                           std::make_tuple(257, 16, 10)));

TEST(Linear, GradientsMatchFiniteDifferences) {
  detdl::testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); },
      {random_tensor({3, 5}, 11), random_tensor({4, 5}, 12), random_tensor({4}, 13)});
}

TEST(Linear, WeightAndBiasGradientsAreCanonicalOverTheBatch) {
  // N = 300 > 256: the bias gradient spans two chunks of the value reduction.
  const std::int64_t N = 300, I = 6, O = 5;
  Tensor x = random_tensor({N, I}, 21), w = random_tensor({O, I}, 22), b = random_tensor({O}, 23);
  const Tensor g = random_tensor({N, O}, 24);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  std::vector<float> dw_ref(O * I), db_ref(O);
  for (std::int64_t o = 0; o < O; ++o) {
    for (std::int64_t i = 0; i < I; ++i)
      dw_ref[o * I + i] = canonical_dot(g.f32() + o, O, x.f32() + i, I, N);
    db_ref[o] = canonical_sum(g.f32() + o, N, O);
  }
  for (int threads : {1, 2, 3}) {
    cpu::set_num_threads(threads);
    w.zero_grad();
    b.zero_grad();
    Tensor y = ops::linear(x, w, b);
    backward(ops::sum(ops::mul(y, g)));
    EXPECT_TRUE(same_bits(dw_ref, w.grad().f32())) << "threads " << threads;
    EXPECT_TRUE(same_bits(db_ref, b.grad().f32())) << "threads " << threads;
  }
  cpu::set_num_threads(1);
}

TEST(Matmul, GradientsMatchFiniteDifferences) {
  detdl::testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
      {random_tensor({2, 3}, 31), random_tensor({3, 4}, 32)});
}

TEST(ShapeOps, ConcatAndReshapeRouteGradientsExactly) {
  detdl::testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        return ops::reshape(ops::concat({in[0], in[1]}, 1), {-1});
      },
      {random_tensor({2, 3, 2}, 41), random_tensor({2, 1, 2}, 42)});
  const Tensor a = Tensor::from_vector({2, 1}, {1, 2}),
               b = Tensor::from_vector({2, 2}, {3, 4, 5, 6});
  EXPECT_EQ(ops::concat({a, b}, 1).to_vector(), (std::vector<float>{1, 3, 4, 2, 5, 6}));
  EXPECT_EQ(ops::concat({a, a}, 0).to_vector(), (std::vector<float>{1, 2, 1, 2}));
  EXPECT_THROW(ops::concat({a, Tensor::zeros({3, 1})}, 1), std::invalid_argument);
}

TEST(Arith, GradientsMatchFiniteDifferences) {
  detdl::testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        return ops::scale(ops::sub(ops::mul(in[0], in[1]), in[1]), 0.5f);
      },
      {random_tensor({7}, 51), random_tensor({7}, 52)});
}

TEST(Arith, AddSumMeanGradientsMatchFiniteDifferences) {
  detdl::testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::add(in[0], in[1]); },
      {random_tensor({7}, 53), random_tensor({7}, 54)});
  detdl::testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::sum(in[0]); }, {random_tensor({9}, 55)});
  detdl::testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::mean(in[0]); }, {random_tensor({9}, 56)});
}

TEST(Arith, SumIsTheCanonicalSum) {
  const Tensor x = random_tensor({1000}, 61);
  for (int threads : {1, 2, 3}) {
    cpu::set_num_threads(threads);
    const float s = ops::sum(x).item();
    const float ref = canonical_sum(x.f32(), 1000);
    EXPECT_EQ(std::memcmp(&s, &ref, 4), 0);
  }
  cpu::set_num_threads(1);
}
