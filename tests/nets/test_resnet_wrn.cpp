// The Keras CIFAR ResNet v1 and the pre-activation wide ResNet: parameter counts (the
// published ones, re-derived stage by stage below), depth checks, output shapes, the BN
// settings (momentum, biased moving variance) against a float64 stem, initialisers, the
// residual blocks' gradients by finite differences, and forward + backward bit-identical
// on 1 and 2 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/train.h"
#include "kernels/cpu/parallel.h"
#include "nets/blocks.h"
#include "nets/resnet.h"
#include "nets/wrn.h"
#include "tests/engine/gradcheck.h"

using namespace detdl;
using namespace detdl::nets;

namespace {

Tensor cifar_like(std::int64_t n, std::uint64_t seed, float lo = 0.0f, float hi = 1.0f) {
  return detdl::testing::random_tensor({n, 3, 32, 32}, seed, lo, hi);
}

Tensor labels(std::int64_t n, std::int32_t classes) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((7 * i + 2) % classes);
  return Tensor::from_vector_i32({n}, v);
}

NamedTensor find(const std::vector<NamedTensor>& ts, const std::string& name) {
  for (const auto& t : ts)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor named " + name);  // gtest reports it as a failure
}

template <class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<nothing thrown>";
}

// One training-mode forward + softmax-CE backward on `threads` threads, in a fresh run
// context (dropout keys restart): the logits and every parameter's gradient, bit for bit,
// and the weight hash (parameters and the updated running statistics).
struct PassBits {
  std::vector<float> values;
  std::string hash;
  Shape out_shape;
};

PassBits forward_backward(const std::function<std::shared_ptr<Module>()>& make, const Tensor& x,
                          const Tensor& y, int threads) {
  RunContext rc;
  rc.dropout_seed = 5;
  ContextGuard guard(rc);
  cpu::set_num_threads(threads);
  auto m = make();
  m->initialize(17);
  const Tensor logits = m->forward(x);
  backward(ops::softmax_cross_entropy(logits, y));
  PassBits r;
  r.out_shape = logits.shape();
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

void expect_thread_count_independent(const std::function<std::shared_ptr<Module>()>& make,
                                     const Tensor& x, const Tensor& y, const Shape& out_shape) {
  const PassBits one = forward_backward(make, x, y, 1);
  const PassBits two = forward_backward(make, x, y, 2);
  EXPECT_EQ(one.out_shape, out_shape);
  ASSERT_EQ(one.values.size(), two.values.size());
  EXPECT_EQ(std::memcmp(one.values.data(), two.values.data(), sizeof(float) * one.values.size()),
            0);
  EXPECT_EQ(one.hash, two.hash);
}

// Per-channel mean and biased variance of a 3x3 stride-1 'same' (pad 1) convolution,
// in float64. x (N, C, H, W), w (O, C, 3, 3), b (O) or undefined.
void conv3x3_channel_stats(const Tensor& x, const Tensor& w, const Tensor& b,
                           std::vector<double>& mean, std::vector<double>& var) {
  const std::int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), O = w.dim(0);
  mean.assign(static_cast<std::size_t>(O), 0.0);
  var.assign(static_cast<std::size_t>(O), 0.0);
  std::vector<double> out(static_cast<std::size_t>(N * H * W));
  for (std::int64_t o = 0; o < O; ++o) {
    std::size_t k = 0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i = 0; i < H; ++i)
        for (std::int64_t j = 0; j < W; ++j) {
          double s = b.defined() ? b.f32()[o] : 0.0;
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t di = 0; di < 3; ++di)
              for (std::int64_t dj = 0; dj < 3; ++dj) {
                const std::int64_t ii = i + di - 1, jj = j + dj - 1;
                if (ii < 0 || ii >= H || jj < 0 || jj >= W) continue;
                s += static_cast<double>(x.f32()[((n * C + c) * H + ii) * W + jj]) *
                     w.f32()[((o * C + c) * 3 + di) * 3 + dj];
              }
          out[k++] = s;
        }
    double m = 0;
    for (double v : out) m += v;
    m /= static_cast<double>(out.size());
    double v2 = 0;
    for (double v : out) v2 += (v - m) * (v - m);
    mean[static_cast<std::size_t>(o)] = m;
    var[static_cast<std::size_t>(o)] = v2 / static_cast<double>(out.size());  // biased, as Keras
  }
}

// Keras 2.2.2 after one training forward (kernels/common/batchnorm_keras.h): the debiased
// average of one batch is the batch's own statistic, the variance scaled by
// n / (n - (1 + eps)); the initial 0 and 1 leave no trace (PyTorch's average would keep
// (1 - momentum) of them).
void expect_keras_running_stats(const Tensor& running_mean, const Tensor& running_var,
                                const std::vector<double>& mean, const std::vector<double>& var,
                                double n, double eps) {
  ASSERT_EQ(running_mean.numel(), static_cast<std::int64_t>(mean.size()));
  for (std::size_t c = 0; c < mean.size(); ++c) {
    const double want_var = var[c] * n / (n - (1.0 + eps));
    EXPECT_NEAR(running_mean.f32()[c], mean[c], 1e-5 * (1.0 + std::fabs(mean[c])))
        << "channel " << c;
    EXPECT_NEAR(running_var.f32()[c], want_var, 1e-5 * (1.0 + want_var)) << "channel " << c;
  }
}

}  // namespace

// ---------------------------------------------------------------- ResNet v1 (Keras)

// Conv k x k in->out with bias: k*k*in*out + out; BN: 2 per channel.
//   stem: 3*9*16+16 + 32 = 480
//   stage 1 block: 2 * (16*16*9+16 + 32) = 4,704
//   stage 2 first: (16*32*9+32) + 64 + (32*32*9+32) + 64 + (16*32+32) = 14,560; others 2 * (9,248 + 64) = 18,624
//   stage 3 first: 18,496 + 128 + 36,928 + 128 + 2,112 = 57,792; others 2 * (36,928 + 128) = 74,112
//   dense 64*10+10 = 650
// n = 3: 480 + 3*4,704 + 14,560 + 2*18,624 + 57,792 + 2*74,112 + 650 = 273,066 (the keras.io
// example's summary: 274,442 total - 1,376 non-trainable BN statistics).
// n = 6: 565,386 and n = 9: 857,706, as published for the study.
TEST(ResNetV1, ParameterCounts) {
  EXPECT_EQ(make_resnet_v1(20)->parameter_count(), 273066);
  EXPECT_EQ(make_resnet_v1(38)->parameter_count(), 565386);
  EXPECT_EQ(make_resnet_v1(56)->parameter_count(), 857706);
  // Buffers of 1 + 6n BNs (n = 3: 19 BNs over 688 channels): running mean and variance
  // (2 * 688), Keras's biased accumulators (2 * 688) and one step count each (19).
  std::int64_t buffer_values = 0;
  for (const auto& b : make_resnet_v1(20)->buffers()) buffer_values += b.tensor.numel();
  EXPECT_EQ(buffer_values, 4 * 688 + 19);
}

TEST(ResNetV1, DepthMustBeSixNPlusTwo) {
  const std::string msg = thrown_message([] { make_resnet_v1(21); });
  EXPECT_NE(msg.find("depth 21"), std::string::npos) << msg;
  EXPECT_NE(thrown_message([] { make_resnet_v1(2); }).find("depth 2"), std::string::npos);
  EXPECT_NE(thrown_message([] { make_resnet_v1(-4); }).find("depth -4"), std::string::npos);
  EXPECT_NE(thrown_message([] { make_resnet_v1(20, 0); }).find("classes"), std::string::npos);
}

TEST(ResNetV1, OutputLogitsShape) {
  NoGradGuard ng;
  auto m = make_resnet_v1(56, 7);
  m->initialize(2);
  m->train(false);
  EXPECT_EQ(m->forward(cifar_like(1, 3)).shape(), (Shape{1, 7}));
}

// Keras BN defaults: momentum 0.99 (0.01 for the new statistic), biased moving variance.
// The first BN sees the stem conv's output, recomputed here in float64.
TEST(ResNetV1, BatchNormKeepsKeras222MovingStatistics) {
  auto m = make_resnet_v1(20);
  m->initialize(4);
  const Tensor x =
      cifar_like(1, 6, -4.0f, 4.0f);  // wide inputs: var >> 1, so biased != unbiased shows
  {
    NoGradGuard ng;
    m->forward(x);
  }
  const auto ps = m->parameters();
  const auto bs = m->buffers();
  std::vector<double> mean, var;
  conv3x3_channel_stats(x, find(ps, "0.weight").tensor, find(ps, "0.bias").tensor, mean, var);
  expect_keras_running_stats(find(bs, "1.running_mean").tensor, find(bs, "1.running_var").tensor,
                             mean, var, 32.0 * 32, 1e-3);  // one image: 1,024 values
  EXPECT_EQ(find(bs, "1.keras_steps").tensor.f32()[0], 1.0f);
}

TEST(ResNetV1, HeNormalConvolutions) {
  auto m = make_resnet_v1(20);
  m->initialize(8);
  // A stage-3 conv: 64*64*9 = 36,864 draws, fan_in 576, target standard deviation
  // sqrt(2/576); Keras truncates at 2 sd of the pre-truncation normal (sd / 0.8796).
  const Tensor w = find(m->parameters(), "9.conv2.weight").tensor;
  ASSERT_EQ(w.shape(), (Shape{64, 64, 3, 3}));
  const double target = std::sqrt(2.0 / 576.0);
  double ss = 0, largest = 0;
  for (float v : w.to_vector()) {
    ss += static_cast<double>(v) * v;
    largest = std::max(largest, std::fabs(static_cast<double>(v)));
  }
  EXPECT_NEAR(std::sqrt(ss / w.numel()), target, 0.03 * target);
  EXPECT_LE(largest, 2.0 * target / 0.87962566103423978 * 1.0001);
  // Conv biases start at zero, BN gammas at one.
  for (float v : find(m->parameters(), "9.conv2.bias").tensor.to_vector()) EXPECT_EQ(v, 0.0f);
  for (float v : find(m->parameters(), "9.bn2.weight").tensor.to_vector()) EXPECT_EQ(v, 1.0f);
}

TEST(ResNetV1, ForwardBackwardBitIdenticalOnOneAndTwoThreads) {
  expect_thread_count_independent([] { return make_resnet_v1(20); }, cifar_like(4, 11),
                                  labels(4, 10), Shape{4, 10});
}

// ---------------------------------------------------------------- WRN (pre-activation)

// Bias-free convs; per block BN(in) + 3x3 in->out + BN(out) + 3x3 out->out (+ 1x1 in->out).
// WRN-16-4 (n = 2; widths 16, 64, 128, 256):
//   stem 3*9*16 = 432
//   group 1: 32 + 9,216 + 128 + 36,864 + 1,024 = 47,264; then 128 + 36,864 + 128 + 36,864 = 73,984
//   group 2: 128 + 73,728 + 256 + 147,456 + 8,192 = 229,760; then 295,424
//   group 3: 256 + 294,912 + 512 + 589,824 + 32,768 = 918,272; then 1,180,672
//   head BN 512 + dense 256*100+100 = 25,700
//   total 2,772,020.
// WRN-28-10 (n = 4; 16, 160, 320, 640) likewise: 36,536,884 (the published count; with 10
// classes 36,479,194, the figure usually quoted for CIFAR-10).
TEST(Wrn, ParameterCounts) {
  EXPECT_EQ(make_wrn(16, 4)->parameter_count(), 2772020);
  EXPECT_EQ(make_wrn(28, 10)->parameter_count(), 36536884);
  EXPECT_EQ(make_wrn(28, 10, 10)->parameter_count(), 36479194);
  // Dropout has no parameters.
  EXPECT_EQ(make_wrn(16, 4, 100, 0.3f)->parameter_count(), 2772020);
}

TEST(Wrn, BadArgumentsNamed) {
  EXPECT_NE(thrown_message([] { make_wrn(27, 10); }).find("depth 27"), std::string::npos);
  EXPECT_NE(thrown_message([] { make_wrn(4, 1); }).find("depth 4"), std::string::npos);
  EXPECT_NE(thrown_message([] { make_wrn(16, 0); }).find("widen"), std::string::npos);
  EXPECT_NE(thrown_message([] { make_wrn(16, 1, 10, 1.0f); }).find("dropout"), std::string::npos);
}

// Keras momentum 0.1 (the new statistic weighs 0.9), biased moving variance; the first
// block's BN sees the bias-free stem conv's output.
TEST(Wrn, BatchNormKeepsKeras222MovingStatistics) {
  auto m = make_wrn(10, 1, 10);
  m->initialize(4);
  const Tensor x = cifar_like(1, 6, -1.0f, 1.0f);
  {
    NoGradGuard ng;
    m->forward(x);
  }
  const auto ps = m->parameters();
  const auto bs = m->buffers();
  std::vector<double> mean, var;
  conv3x3_channel_stats(x, find(ps, "0.weight").tensor, Tensor(), mean, var);
  expect_keras_running_stats(find(bs, "1.bn1.running_mean").tensor,
                             find(bs, "1.bn1.running_var").tensor, mean, var, 32.0 * 32, 1.1e-5);
}

TEST(Wrn, GammaUniformZeroOneBetaZeroBiasFreeConvs) {
  auto m = make_wrn(16, 4);
  m->initialize(9);
  int gammas = 0;
  for (const auto& p : m->parameters()) {
    const std::string& n = p.name;
    EXPECT_FALSE(p.tensor.ndim() == 1 && n.find("conv") != std::string::npos) << "conv bias " << n;
    if (n.find("bn") == std::string::npos && n.rfind("7.", 0) != 0) continue;  // "7" is the head BN
    if (n.size() >= 6 && n.compare(n.size() - 6, 6, "weight") == 0) {
      ++gammas;
      float lo = 1.0f, hi = 0.0f;
      for (float v : p.tensor.to_vector()) {
        EXPECT_GE(v, 0.0f) << n;
        EXPECT_LT(v, 1.0f) << n;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      EXPECT_LT(lo, 0.2f) << n;
      EXPECT_GT(hi, 0.8f) << n;
    } else {
      for (float v : p.tensor.to_vector()) EXPECT_EQ(v, 0.0f) << n;
    }
  }
  EXPECT_EQ(gammas, 2 * 6 + 1);  // two per block, 6 blocks, plus the head
}

TEST(Wrn, ForwardBackwardBitIdenticalOnOneAndTwoThreads) {
  expect_thread_count_independent([] { return make_wrn(16, 4); }, cifar_like(2, 12), labels(2, 100),
                                  Shape{2, 100});
}

TEST(Wrn, WithDropoutBitIdenticalOnOneAndTwoThreads) {
  expect_thread_count_independent([] { return make_wrn(10, 1, 10, 0.3f); }, cifar_like(3, 13),
                                  labels(3, 10), Shape{3, 10});
}

// ---------------------------------------------------------------- blocks by finite differences

namespace {

// Finite differences for a piecewise-smooth block. ReLU after batch norm has kinks, and a
// kink inside [v - h, v + h] spoils the central difference for every element of that
// channel (the batch statistics couple them). On the side without the kink the function
// is smooth, so an element passes if the analytic gradient matches the central difference
// or one of the one-sided ones (f(v+h) - f(v)) / h, (f(v) - f(v-h)) / h. A wrong gradient
// would have to agree with one of them by chance; to keep the check strict, at most a
// quarter of the elements may pass on a one-sided difference alone.
// The checked scalar is sum(block(x) * r) for a fixed random r.
void check_block_gradients(Module& block, const Shape& x_shape, std::uint64_t seed) {
  block.initialize(seed);
  std::vector<Tensor> inputs{detdl::testing::random_tensor(x_shape, seed + 1)};
  for (const auto& p : block.parameters()) inputs.push_back(p.tensor);
  inputs[0].set_requires_grad(true);
  Tensor r;
  {
    NoGradGuard ng;
    r = detdl::testing::random_tensor(block.forward(inputs[0]).shape(), 4242);
  }
  auto objective = [&]() -> double {
    NoGradGuard ng;
    const Tensor y = block.forward(inputs[0]);
    double s = 0;
    for (std::int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(y.f32()[i]) * r.f32()[i];
    return s;
  };
  for (auto& t : inputs) t.zero_grad();
  backward(ops::sum(ops::mul(block.forward(inputs[0]), r.clone())));
  const float h = 1e-3f;
  const double atol = 2e-3, rtol = 2e-2;
  std::int64_t checked = 0, one_sided = 0;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    Tensor& t = inputs[k];
    ASSERT_TRUE(t.grad().defined()) << "input " << k << " got no gradient";
    const Tensor g = t.grad().clone();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      float* p = t.f32() + i;
      const float saved = *p;
      const double mid = objective();
      *p = saved + h;
      const double up = objective();
      *p = saved - h;
      const double down = objective();
      *p = saved;
      const double analytic = g.f32()[i];
      const double tol = atol + rtol * std::fabs(analytic);
      const double central = std::fabs((up - down) / (2.0 * h) - analytic);
      const double right = std::fabs((up - mid) / h - analytic);
      const double left = std::fabs((mid - down) / h - analytic);
      ++checked;
      if (central <= tol) continue;
      ++one_sided;
      EXPECT_LE(std::min(left, right), tol) << "input " << k << " element " << i << ": analytic "
                                            << analytic << ", central " << (up - down) / (2.0 * h);
    }
  }
  EXPECT_LE(4 * one_sided, checked)
      << one_sided << " of " << checked << " elements only matched one-sided";
}

}  // namespace

TEST(ResidualBlocks, ResNetV1ProjectionBlockGradients) {
  // Stride 2 on 5x5: TensorFlow 'same' pads 0 before and 1 after, the asymmetric case.
  ResNetV1Block block(2, 3, 2, BatchNormSpec{});
  check_block_gradients(block, {2, 2, 5, 5}, 30);
}

TEST(ResidualBlocks, ResNetV1IdentityBlockGradients) {
  ResNetV1Block block(3, 3, 1, BatchNormSpec{});
  check_block_gradients(block, {2, 3, 4, 4}, 40);
}

TEST(ResidualBlocks, WideProjectionBlockGradients) {
  BatchNormSpec bn{0.9f, 1.1e-5f, false, InitSpec{InitKind::uniform, 0.0f, 1.0f}};
  WideBlock block(2, 3, 2, 0.0f, bn);
  check_block_gradients(block, {2, 2, 5, 5}, 50);
}

TEST(ResidualBlocks, WideIdentityBlockGradients) {
  BatchNormSpec bn{0.9f, 1.1e-5f, false, InitSpec{InitKind::uniform, 0.0f, 1.0f}};
  WideBlock block(3, 3, 1, 0.0f, bn);
  check_block_gradients(block, {2, 3, 4, 4}, 60);
}

TEST(ResidualBlocks, OutputShapes) {
  NoGradGuard ng;
  ResNetV1Block r(4, 8, 2, BatchNormSpec{});
  r.initialize(1);
  EXPECT_EQ(r.forward(detdl::testing::random_tensor({1, 4, 7, 7}, 1)).shape(),
            (Shape{1, 8, 4, 4}));  // ceil(7/2)
  WideBlock w(4, 8, 2, 0.0f, BatchNormSpec{});
  w.initialize(1);
  EXPECT_EQ(w.forward(detdl::testing::random_tensor({1, 4, 7, 7}, 1)).shape(), (Shape{1, 8, 4, 4}));
}
