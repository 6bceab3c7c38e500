// The study's LeNet-1/4/5: parameter counts (published, re-derived layer by layer below),
// output shapes, both initialisations, and forward + backward bit-identical on 1 and 2
// threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/train.h"
#include "kernels/cpu/parallel.h"
#include "nets/lenet.h"
#include "tests/engine/gradcheck.h"

using namespace detdl;
using namespace detdl::nets;

namespace {

Tensor images(std::int64_t n, std::int64_t side, std::uint64_t seed) {
  return detdl::testing::random_tensor({n, 1, side, side}, seed, 0.0f, 1.0f);
}

Tensor labels(std::int64_t n) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((3 * i + 1) % 10);
  return Tensor::from_vector_i32({n}, v);
}

// One training-mode forward + softmax-CE backward on `threads` threads: the logits, every
// parameter's gradient, and the weight hash (parameters and buffers) after the pass.
struct PassBits {
  std::vector<float> values;
  std::string hash;
};

PassBits forward_backward(const std::function<std::shared_ptr<Module>()>& make, const Tensor& x,
                          const Tensor& y, int threads) {
  cpu::set_num_threads(threads);
  auto m = make();
  m->initialize(17);
  const Tensor logits = m->forward(x);
  backward(ops::softmax_cross_entropy(logits, y));
  PassBits r;
  r.values = logits.to_vector();
  for (const auto& p : m->parameters()) {
    EXPECT_TRUE(p.tensor.grad().defined()) << p.name;
    const auto g = p.tensor.grad().to_vector();
    r.values.insert(r.values.end(), g.begin(), g.end());
  }
  r.hash = weight_hash(*m);
  cpu::set_num_threads(1);
  return r;
}

}  // namespace

// 'same' on 28x28: 28 -> pool 14 -> 14 -> pool 7.
//   LeNet-1: conv 1->4 5x5 (25*4+4 = 104), conv 4->12 (100*12+12 = 1212), dense 588->10 (5890): 7,206.
//   LeNet-4: conv 1->6 (156), conv 6->16 (2416), dense 784->84 (65940), 84->10 (850): 69,362.
//   LeNet-5: 156 + 2416 + dense 784->120 (94200) + 120->84 (10164) + 850: 107,786.
TEST(Lenet, StudyParameterCounts) {
  EXPECT_EQ(make_lenet(1)->parameter_count(), 7206);
  EXPECT_EQ(make_lenet(4)->parameter_count(), 69362);
  EXPECT_EQ(make_lenet(5)->parameter_count(), 107786);
  // The initialisation does not change the architecture.
  EXPECT_EQ(make_lenet(5, {false, false})->parameter_count(), 107786);
}

// Valid 5x5 on 32x32: 32 -> 28 -> pool 14 -> 10 -> pool 5, so the flatten has 25 * C2.
//   LeNet-1: 104 + 1212 + 300*10+10 = 4,326.   LeNet-4: 156 + 2416 + 400*84+84 + 850 = 37,106.
//   LeNet-5: 156 + 2416 + 400*120+120 + 10164 + 850 = 61,706 (the usual modern LeNet-5 count).
TEST(Lenet, ClassicParameterCounts) {
  const LenetOptions classic{true, true};
  EXPECT_EQ(make_lenet(1, classic)->parameter_count(), 4326);
  EXPECT_EQ(make_lenet(4, classic)->parameter_count(), 37106);
  EXPECT_EQ(make_lenet(5, classic)->parameter_count(), 61706);
}

TEST(Lenet, OutputLogitsShape) {
  NoGradGuard ng;
  for (const int v : {1, 4, 5}) {
    auto m = make_lenet(v);
    m->initialize(1);
    EXPECT_EQ(m->forward(images(3, 28, 1)).shape(), (Shape{3, 10})) << "LeNet-" << v;
    auto c = make_lenet(v, {true, true});
    c->initialize(1);
    EXPECT_EQ(c->forward(images(2, 32, 2)).shape(), (Shape{2, 10})) << "classic LeNet-" << v;
  }
}

TEST(Lenet, UnknownVariantNamed) {
  try {
    make_lenet(2);
    FAIL() << "variant 2 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("variant"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find('2'), std::string::npos) << e.what();
  }
}

TEST(Lenet, StudyInitIsUniformHalfOnEveryWeightAndBias) {
  auto m = make_lenet(5);
  m->initialize(3);
  for (const auto& p : m->parameters()) {
    double sum = 0;
    float lo = 1.0f, hi = -1.0f;
    for (float x : p.tensor.to_vector()) {
      EXPECT_GE(x, -0.5f) << p.name;
      EXPECT_LT(x, 0.5f) << p.name;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      sum += x;
    }
    if (p.tensor.numel() >= 100) {  // spread over the whole interval, centred
      EXPECT_LT(lo, -0.4f) << p.name;
      EXPECT_GT(hi, 0.4f) << p.name;
      EXPECT_LT(std::fabs(sum / p.tensor.numel()), 0.1) << p.name;
    }
  }
}

TEST(Lenet, KerasInitIsGlorotKernelsAndZeroBiases) {
  auto m = make_lenet(4, {false, false});
  m->initialize(3);
  for (const auto& p : m->parameters()) {
    if (p.tensor.ndim() == 1) {
      for (float x : p.tensor.to_vector()) EXPECT_EQ(x, 0.0f) << p.name;
      continue;
    }
    const auto [fan_in, fan_out] = fans(p.tensor.shape());
    const double limit = std::sqrt(6.0 / (fan_in + fan_out));
    for (float x : p.tensor.to_vector()) EXPECT_LE(std::fabs(x), limit) << p.name;
  }
}

TEST(Lenet, ForwardBackwardBitIdenticalOnOneAndTwoThreads) {
  for (const int v : {1, 5}) {
    for (const bool classic : {false, true}) {
      const std::int64_t side = classic ? 32 : 28;
      auto make = [&] { return make_lenet(v, {true, classic}); };
      const Tensor x = images(4, side, 5);
      const Tensor y = labels(4);
      const PassBits one = forward_backward(make, x, y, 1);
      const PassBits two = forward_backward(make, x, y, 2);
      ASSERT_EQ(one.values.size(), two.values.size());
      EXPECT_EQ(
          std::memcmp(one.values.data(), two.values.data(), sizeof(float) * one.values.size()), 0)
          << "LeNet-" << v << (classic ? " classic" : "");
      EXPECT_EQ(one.hash, two.hash);
    }
  }
}
