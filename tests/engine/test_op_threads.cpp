// Thread-count invariance of the ops whose kernels tests/engine/test_ops_nn.cpp and
// test_dense.cpp do not already run on several thread counts: the output and every input's
// gradient are the same bits on 1, 2 and 3 threads. Sizes are odd and large enough that the
// CPU kernels split their ranges. engine/ops/registry.h names these tests per op.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/context.h"
#include "engine/ops/ops.h"
#include "gradcheck.h"
#include "kernels/cpu/parallel.h"

using namespace detdl;
using detdl::testing::random_tensor;

namespace {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// f forward and backward (loss = sum(f(x) * r)) on `threads` threads: the output followed
// by every input's gradient, flattened.
std::vector<float> forward_backward(const OpFn& f, std::vector<Tensor> inputs, int threads) {
  cpu::set_num_threads(threads);
  for (auto& t : inputs) {
    t.zero_grad();
    t.set_requires_grad(true);
  }
  Tensor y = f(inputs);
  std::vector<float> out = y.to_vector();
  backward(ops::sum(ops::mul(y, random_tensor(y.shape(), 99))));
  for (const auto& t : inputs) {
    const auto g = t.grad().to_vector();
    out.insert(out.end(), g.begin(), g.end());
  }
  cpu::set_num_threads(1);
  return out;
}

void expect_thread_invariant(const char* what, const OpFn& f, const std::vector<Tensor>& inputs) {
  const auto ref = forward_backward(f, inputs, 1);
  for (int threads : {2, 3}) {
    const auto got = forward_backward(f, inputs, threads);
    ASSERT_EQ(got.size(), ref.size()) << what;
    EXPECT_EQ(std::memcmp(got.data(), ref.data(), ref.size() * 4), 0)
        << what << ", threads " << threads;
  }
}

}  // namespace

TEST(ArithOps, ThreadInvariant) {
  const std::vector<Tensor> two{random_tensor({4099}, 1), random_tensor({4099}, 2)};
  expect_thread_invariant(
      "add", [](const std::vector<Tensor>& x) { return ops::add(x[0], x[1]); }, two);
  expect_thread_invariant(
      "sub", [](const std::vector<Tensor>& x) { return ops::sub(x[0], x[1]); }, two);
  expect_thread_invariant(
      "mul", [](const std::vector<Tensor>& x) { return ops::mul(x[0], x[1]); }, two);
  expect_thread_invariant(
      "scale", [](const std::vector<Tensor>& x) { return ops::scale(x[0], 0.37f); }, {two[0]});
  expect_thread_invariant("sum", [](const std::vector<Tensor>& x) { return ops::sum(x[0]); },
                          {two[0]});
  expect_thread_invariant("mean", [](const std::vector<Tensor>& x) { return ops::mean(x[0]); },
                          {two[0]});
}

TEST(ShapeOps, ThreadInvariant) {
  expect_thread_invariant("reshape+concat",
                          [](const std::vector<Tensor>& x) {
                            return ops::reshape(ops::concat({x[0], x[1]}, 1), {-1});
                          },
                          {random_tensor({17, 33, 5}, 3), random_tensor({17, 7, 5}, 4)});
}

TEST(MatmulOp, ThreadInvariant) {
  expect_thread_invariant("matmul",
                          [](const std::vector<Tensor>& x) { return ops::matmul(x[0], x[1]); },
                          {random_tensor({33, 65}, 5), random_tensor({65, 19}, 6)});
}

TEST(ActivationOps, ThreadInvariant) {
  for (int i = 0; i < kActivationCount; ++i) {  // every kind, so a new one is covered here
    const Activation a = static_cast<Activation>(i);
    expect_thread_invariant(
        "activation", [a](const std::vector<Tensor>& x) { return ops::activation(x[0], a, 0.2f); },
        {random_tensor({4099}, 7 + i)});
  }
}

TEST(SoftmaxOp, ThreadInvariant) {
  const Tensor logits = random_tensor({97, 13}, 20, -3.0f, 3.0f);
  cpu::set_num_threads(1);
  const auto ref = ops::softmax(logits).to_vector();
  for (int threads : {2, 3}) {
    cpu::set_num_threads(threads);
    const auto got = ops::softmax(logits).to_vector();
    EXPECT_EQ(std::memcmp(got.data(), ref.data(), ref.size() * 4), 0) << "threads " << threads;
  }
  cpu::set_num_threads(1);
}

// softmax is the registry's one op without a backward (ops.h: use the losses): it must not
// put a node on the tape, so a gradient can never silently stop at it.
TEST(SoftmaxOp, NotDifferentiableRecordsNothing) {
  clear_tape();
  Tensor logits = random_tensor({4, 3}, 21);
  logits.set_requires_grad(true);
  (void)ops::softmax(logits);
  EXPECT_EQ(tape_size(), 0u);
}

TEST(LossOps, ThreadInvariant) {
  std::vector<std::int32_t> many(257);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = static_cast<std::int32_t>((i * 7) % 11);
  const Tensor big_labels = Tensor::from_vector_i32({257}, many);
  expect_thread_invariant(
      "softmax_cross_entropy",
      [&](const std::vector<Tensor>& x) { return ops::softmax_cross_entropy(x[0], big_labels); },
      {random_tensor({257, 11}, 30, -2.0f, 2.0f)});
  const Tensor t = random_tensor({1031, 3}, 31, 0.0f, 1.0f);
  expect_thread_invariant(
      "binary_cross_entropy (logits)",
      [&](const std::vector<Tensor>& x) { return ops::binary_cross_entropy(x[0], t, true); },
      {random_tensor({1031, 3}, 32, -2.0f, 2.0f)});
  expect_thread_invariant(
      "binary_cross_entropy (probabilities)",
      [&](const std::vector<Tensor>& x) { return ops::binary_cross_entropy(x[0], t, false); },
      {random_tensor({1031, 3}, 33, 0.1f, 0.9f)});
  expect_thread_invariant(
      "mean_squared_error",
      [&](const std::vector<Tensor>& x) { return ops::mean_squared_error(x[0], t); },
      {random_tensor({1031, 3}, 34)});
  expect_thread_invariant("l1_penalty",
                          [](const std::vector<Tensor>& x) { return ops::l1_penalty(x[0], 0.3f); },
                          {random_tensor({4099}, 35)});
  expect_thread_invariant("l2_penalty",
                          [](const std::vector<Tensor>& x) { return ops::l2_penalty(x[0], 0.3f); },
                          {random_tensor({4099}, 36)});
}

TEST(DropoutOp, ThreadInvariant) {
  RunContext c;
  c.dropout_seed = 5;
  c.step = 3;
  ContextGuard guard(c);
  expect_thread_invariant("dropout",
                          [](const std::vector<Tensor>& x) {
                            context().dropout_layer = 0;  // the same mask on every run
                            return ops::dropout(x[0], 0.3f);
                          },
                          {random_tensor({4099}, 40)});
}
