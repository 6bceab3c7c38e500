// Engine wiring of the network ops: gradients through the tape by finite differences,
// thread-count invariance of forward and backward, and errors on bad shapes. (The kernels'
// own bit-level tests are in tests/kernels.)
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <optional>

#include "engine/context.h"
#include "engine/nn.h"
#include "engine/ops/ops.h"
#include "gradcheck.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/parallel.h"

using namespace detdl;
using detdl::testing::expect_gradients_match;
using detdl::testing::random_tensor;

namespace {

// Runs f forward and backward (loss = sum(f(x) * r)) on `threads` threads and returns the
// output followed by every input's gradient, flattened.
std::vector<float> forward_backward(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                    std::vector<Tensor> inputs, int threads) {
  cpu::set_num_threads(threads);
  for (auto& t : inputs) {
    t.zero_grad();
    t.set_requires_grad(true);
  }
  Tensor y = f(inputs);
  std::vector<float> out = y.to_vector();
  Tensor r = random_tensor(y.shape(), 99);
  backward(ops::sum(ops::mul(y, r)));
  for (auto& t : inputs) {
    auto g = t.grad().to_vector();
    out.insert(out.end(), g.begin(), g.end());
  }
  cpu::set_num_threads(1);
  return out;
}

void expect_thread_invariant(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                             const std::vector<Tensor>& inputs) {
  const auto ref = forward_backward(f, inputs, 1);
  for (int threads : {2, 3}) {
    const auto got = forward_backward(f, inputs, threads);
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_EQ(std::memcmp(got.data(), ref.data(), ref.size() * 4), 0) << "threads " << threads;
  }
}

// A Sequential with one relu layer runs forward and backward on x the same bits whether it
// fuses its layers (no observer) or not (an activation observer watching, which sees the
// relu once).
void expect_fused_as_observed(Sequential& seq, const Tensor& x) {
  const auto run = [&](bool watch) {
    int seen = 0;
    std::optional<ActivationObserverScope> scope;
    if (watch) scope.emplace([&](const Act&, const Tensor&) { ++seen; });
    auto out = forward_backward([&](const auto& in) { return seq.forward(in[0]); }, {x}, 1);
    EXPECT_EQ(seen, watch ? 1 : 0);
    return out;
  };
  const auto fused_run = run(false), observed_run = run(true);
  ASSERT_EQ(fused_run.size(), observed_run.size());
  EXPECT_EQ(std::memcmp(fused_run.data(), observed_run.data(), fused_run.size() * 4), 0);
}

}  // namespace

TEST(Conv2dOp, GradientsAndThreadInvariance) {
  auto f = [](const std::vector<Tensor>& in) {
    return ops::conv2d(in[0], in[1], in[2], {2, 0, true});
  };
  std::vector<Tensor> in = {random_tensor({2, 3, 7, 5}, 1), random_tensor({4, 3, 3, 3}, 2),
                            random_tensor({4}, 3)};
  expect_gradients_match(f, in);
  expect_thread_invariant(f, in);
  auto g = [](const std::vector<Tensor>& in) {
    return ops::conv2d(in[0], in[1], Tensor(), {1, 1, false});
  };
  expect_gradients_match(g, {random_tensor({1, 2, 4, 4}, 4), random_tensor({3, 2, 3, 3}, 5)});
  EXPECT_THROW(
      ops::conv2d(random_tensor({1, 2, 4, 4}, 6), random_tensor({3, 5, 3, 3}, 7), Tensor(), {}),
      std::invalid_argument);
}

TEST(PoolOps, GradientsAndThreadInvariance) {
  // Distinct values keep max pooling away from ties, where finite differences jump.
  Tensor x = Tensor::empty({2, 3, 6, 5});
  for (std::int64_t i = 0; i < x.numel(); ++i)
    x.f32()[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  auto mp = [](const std::vector<Tensor>& in) {
    return ops::max_pool2d(in[0], {2, 2, 0, false, false});
  };
  expect_gradients_match(mp, {x}, 1e-3f);
  expect_thread_invariant(mp, {x});
  auto ap = [](const std::vector<Tensor>& in) {
    return ops::avg_pool2d(in[0], {3, 2, 1, false, false});
  };
  expect_gradients_match(ap, {random_tensor({1, 2, 5, 5}, 8)});
  expect_thread_invariant(ap, {random_tensor({2, 3, 6, 5}, 8)});
  auto gp = [](const std::vector<Tensor>& in) { return ops::global_avg_pool2d(in[0]); };
  expect_gradients_match(gp, {random_tensor({2, 3, 4, 3}, 9)});
}

// The fused relu + max pool: by finite differences (values away from 0 and from ties, where
// the derivative jumps), on 1..3 threads, and bit for bit the two ops in turn (output and
// input gradient), also with zeros, NaN and overlapping windows; and a Sequential of a relu
// layer then a max pool runs it, unless an activation observer asks to see the relu's
// output, with the same bits either way.
TEST(PoolOps, ReluMaxPoolIsReluThenMaxPool) {
  Tensor x = Tensor::empty({2, 3, 6, 5});
  for (std::int64_t i = 0; i < x.numel(); ++i)
    x.f32()[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.01f;
  const ops::Pool2dOptions two{2, 2, 0, false, false}, three{3, 2, 1, false, false};
  auto fused = [&](const std::vector<Tensor>& in) { return ops::relu_max_pool2d(in[0], two); };
  expect_gradients_match(fused, {x}, 1e-3f);
  expect_thread_invariant(fused, {x});
  Tensor z = random_tensor({2, 3, 7, 6}, 21);
  z.f32()[0] = 0.0f, z.f32()[1] = -0.0f, z.f32()[5] = std::numeric_limits<float>::quiet_NaN();
  z.f32()[8] = std::numeric_limits<float>::infinity();
  for (const auto& o : {two, three}) {
    const auto a =
        forward_backward([&](const auto& in) { return ops::relu_max_pool2d(in[0], o); }, {z}, 1);
    const auto b = forward_backward(
        [&](const auto& in) { return ops::max_pool2d(ops::relu(in[0]), o); }, {z}, 1);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << "kernel " << o.kernel;
  }
  Sequential seq;
  seq.emplace<Act>(Activation::relu);
  seq.emplace<MaxPool2d>(two);
  expect_fused_as_observed(seq, z);
  // One tape node when fused, two (relu, then the pool) when the observer watches.
  Tensor w = z.clone();
  w.set_requires_grad(true);
  clear_tape();
  seq.forward(w);
  EXPECT_EQ(tape_size(), 1u);
  clear_tape();
  {
    ActivationObserverScope scope([](const Act&, const Tensor&) {});
    seq.forward(w);
  }
  EXPECT_EQ(tape_size(), 2u);
  clear_tape();
}

// The fused convolution, relu and max pool (each sample pooled right after its convolution):
// bit for bit conv2d then relu_max_pool2d, output and every input's gradient, on 1 and 2
// threads, at LeNet-5's layers (the direct kernels' per-position and channel-lane forwards),
// with overlapping windows, zeros, a NaN and an infinity; the shapes it does not fuse (1x1:
// the pointwise kernels) and `emulated` draws run the two ops. A Sequential of Conv2d, relu
// and MaxPool2d runs it, unless an activation observer asks to see the relu's output.
TEST(Conv2dReluMaxPool, IsConv2dThenReluMaxPool) {
  struct Case {
    const char* name;
    std::vector<std::int64_t> x, w;
    ops::Conv2dOptions conv;
    ops::Pool2dOptions pool;
    bool fused;  // runs conv2d_forward_each_sample
  };
  const ops::Pool2dOptions two{2, 2, 0, false, false}, three{3, 2, 1, false, false};
  const std::vector<Case> cases = {
      {"lenet5_c1", {5, 1, 28, 28}, {6, 1, 5, 5}, {1, 0, true}, two, true},
      {"lenet5_c2", {4, 6, 14, 14}, {16, 6, 5, 5}, {1, 0, true}, two, true},
      {"valid_odd_overlapping", {3, 2, 11, 9}, {5, 2, 3, 3}, {1, 0, false}, three, true},
      {"pointwise_1x1", {2, 3, 6, 6}, {4, 3, 1, 1}, {1, 0, false}, two, false},
  };
  for (const Case& c : cases) {
    Tensor x = random_tensor(c.x, 31), w = random_tensor(c.w, 32), b = random_tensor({c.w[0]}, 33);
    x.f32()[0] = -0.0f, x.f32()[3] = std::numeric_limits<float>::quiet_NaN();
    x.f32()[x.numel() - 1] = std::numeric_limits<float>::infinity();
    const Conv2dShape s = c.conv.same ? conv2d_shape_same(c.x[0], c.x[1], c.x[2], c.x[3], c.w[0],
                                                          c.w[2], c.w[3], c.conv.stride)
                                      : conv2d_shape(c.x[0], c.x[1], c.x[2], c.x[3], c.w[0], c.w[2],
                                                     c.w[3], c.conv.stride, c.conv.pad);
    EXPECT_EQ(cpu::conv2d_forward_each_sample_applies(s), c.fused) << c.name;
    auto fused = [&](const std::vector<Tensor>& in) {
      return ops::conv2d_relu_max_pool2d(in[0], in[1], in[2], c.conv, c.pool);
    };
    auto apart = [&](const std::vector<Tensor>& in) {
      return ops::relu_max_pool2d(ops::conv2d(in[0], in[1], in[2], c.conv), c.pool);
    };
    for (int threads : {1, 2}) {
      const auto a = forward_backward(fused, {x, w, b}, threads);
      const auto e = forward_backward(apart, {x, w, b}, threads);
      ASSERT_EQ(a.size(), e.size());
      EXPECT_EQ(std::memcmp(a.data(), e.data(), a.size() * 4), 0)
          << c.name << " threads " << threads;
    }
    RunContext emulated;
    emulated.set_level(Level::emulated);
    emulated.impl_seed = 7;
    std::vector<float> a, e;
    {
      ContextGuard g(emulated);
      a = forward_backward(fused, {x, w, b}, 1);
    }
    {
      ContextGuard g(emulated);
      e = forward_backward(apart, {x, w, b}, 1);
    }
    EXPECT_EQ(std::memcmp(a.data(), e.data(), a.size() * 4), 0) << c.name << " emulated";
  }
  Sequential seq;
  seq.emplace<Conv2d>(1, 6, 5, ops::Conv2dOptions{1, 0, true});
  seq.emplace<Act>(Activation::relu);
  seq.emplace<MaxPool2d>(two);
  const Tensor x = random_tensor({3, 1, 12, 12}, 34);
  expect_fused_as_observed(seq, x);
}

// Inference mode (running statistics as constants): the training monitor's probe takes
// gradients through it, as AutoTrainer's Keras learning phase 0 did.
TEST(BatchNormOp, EvalModeGradientsMatchFiniteDifferences) {
  const Tensor rm = random_tensor({3}, 14), rv = random_tensor({3}, 15, 0.3f, 2.0f);
  auto f = [&](const std::vector<Tensor>& in) {
    Tensor m = rm.clone(), v = rv.clone();
    return ops::batch_norm(in[0], in[1], in[2], m, v, false, 0.1f, 1e-5f);
  };
  std::vector<Tensor> in = {random_tensor({4, 3, 3, 2}, 16), random_tensor({3}, 17, 0.5f, 1.5f),
                            random_tensor({3}, 18)};
  expect_gradients_match(f, in, 1e-2f, 3e-2f, 5e-3f);
  expect_thread_invariant(f, in);
  expect_gradients_match(f, {random_tensor({7, 3}, 19), in[1], in[2]}, 1e-2f, 3e-2f, 5e-3f);
}

TEST(BatchNormOp, TrainingGradientsRunningStatsAndEval) {
  Tensor rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.0f);
  auto f = [&](const std::vector<Tensor>& in) {
    Tensor m = Tensor::zeros({3}), v = Tensor::full({3}, 1.0f);
    return ops::batch_norm(in[0], in[1], in[2], m, v, true, 0.1f, 1e-5f);
  };
  std::vector<Tensor> in = {random_tensor({4, 3, 3, 2}, 10), random_tensor({3}, 11, 0.5f, 1.5f),
                            random_tensor({3}, 12)};
  expect_gradients_match(f, in, 1e-2f, 3e-2f, 5e-3f);
  expect_thread_invariant(f, in);
  // Dense input (N, C), and the running statistics move towards the batch's.
  Tensor x = random_tensor({50, 3}, 13, 2.0f, 4.0f);
  Tensor y =
      ops::batch_norm(x, Tensor::full({3}, 1.0f), Tensor::zeros({3}), rm, rv, true, 0.1f, 1e-5f);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(rm.f32()[c], 0.3f, 0.05f);  // 0.9 * 0 + 0.1 * ~3
    double mean = 0;
    for (int n = 0; n < 50; ++n) mean += y.f32()[n * 3 + c];
    EXPECT_NEAR(mean / 50, 0.0, 1e-5);
  }
  // Eval mode uses the running statistics: y = (x - rm) / sqrt(rv + eps).
  Tensor ye =
      ops::batch_norm(x, Tensor::full({3}, 1.0f), Tensor::zeros({3}), rm, rv, false, 0.1f, 1e-5f);
  EXPECT_NEAR(ye.f32()[0], (x.f32()[0] - rm.f32()[0]) / std::sqrt(rv.f32()[0] + 1e-5f), 1e-5f);
  EXPECT_THROW(
      ops::batch_norm(x, Tensor::full({4}, 1.0f), Tensor::zeros({3}), rm, rv, true, 0.1f, 1e-5f),
      std::invalid_argument);
}

TEST(ActivationOps, GradientsOfEveryKind) {
  for (int k = 0; k < kActivationCount; ++k) {  // every kind, so a new one is checked here
    const Activation a = static_cast<Activation>(k);
    // Keep inputs away from 0, where ReLU-like functions have a kink.
    Tensor x = random_tensor({13}, 20 + static_cast<int>(a), 0.1f, 2.0f);
    for (std::int64_t i = 0; i < 13; i += 2) x.f32()[i] = -x.f32()[i];
    expect_gradients_match(
        [a](const std::vector<Tensor>& in) { return ops::activation(in[0], a, 0.2f); }, {x}, 1e-3f);
  }
}

TEST(LossOps, GradientsAndValues) {
  Tensor labels = Tensor::from_vector_i32({4}, {0, 2, 1, 2});
  expect_gradients_match(
      [&](const std::vector<Tensor>& in) { return ops::softmax_cross_entropy(in[0], labels); },
      {random_tensor({4, 3}, 30, -2.0f, 2.0f)});
  Tensor t = random_tensor({5, 2}, 31, 0.0f, 1.0f);
  expect_gradients_match(
      [&](const std::vector<Tensor>& in) { return ops::binary_cross_entropy(in[0], t, true); },
      {random_tensor({5, 2}, 32, -2.0f, 2.0f)});
  expect_gradients_match(
      [&](const std::vector<Tensor>& in) { return ops::binary_cross_entropy(in[0], t, false); },
      {random_tensor({5, 2}, 33, 0.1f, 0.9f)}, 1e-3f);
  expect_gradients_match(
      [&](const std::vector<Tensor>& in) { return ops::mean_squared_error(in[0], t); },
      {random_tensor({5, 2}, 34)});
  expect_gradients_match([](const std::vector<Tensor>& in) { return ops::l2_penalty(in[0], 0.3f); },
                         {random_tensor({6}, 35)});
  Tensor w = random_tensor({6}, 36, 0.1f, 1.0f);
  w.f32()[1] = -w.f32()[1];
  expect_gradients_match([](const std::vector<Tensor>& in) { return ops::l1_penalty(in[0], 0.3f); },
                         {w}, 1e-3f);
  // Cross-entropy of uniform logits is log(K).
  EXPECT_NEAR(
      ops::softmax_cross_entropy(Tensor::zeros({2, 4}), Tensor::from_vector_i32({2}, {1, 3}))
          .item(),
      std::log(4.0), 1e-6);
  EXPECT_THROW(
      ops::softmax_cross_entropy(Tensor::zeros({2, 4}), Tensor::from_vector_i32({2}, {1, 4})),
      std::invalid_argument);
  EXPECT_THROW(
      ops::softmax_cross_entropy(Tensor::zeros({2, 4}), Tensor::from_vector_i32({3}, {1, 1, 1})),
      std::invalid_argument);
}

TEST(DropoutOp, KeyedByStepAndLayerAndIdentityInEval) {
  RunContext c;
  c.dropout_seed = 5;
  c.step = 3;
  ContextGuard guard(c);
  Tensor x = Tensor::full({1000}, 1.0f);
  context().dropout_layer = 0;
  const auto a = ops::dropout(x, 0.5f).to_vector();
  context().dropout_layer = 0;
  const auto b = ops::dropout(x, 0.5f).to_vector();
  EXPECT_EQ(a, b);                                    // same (seed, step, layer): same mask
  const auto c2 = ops::dropout(x, 0.5f).to_vector();  // next layer
  EXPECT_NE(a, c2);
  std::int64_t kept = 0;
  for (float v : a) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f);
    kept += v != 0.0f;
  }
  EXPECT_NEAR(kept, 500, 60);
  context().training = false;
  EXPECT_EQ(ops::dropout(x, 0.5f).to_vector(), x.to_vector());
  context().training = true;
  context().dropout_layer = 0;
  expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        context().dropout_layer = 0;  // the same mask on every evaluation
        return ops::dropout(in[0], 0.3f);
      },
      {random_tensor({20}, 40)});
}
