#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "engine/tensor.h"

using namespace detdl;

TEST(Tensor, CreationShapesAndErrors) {
  Tensor t = Tensor::zeros({2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.dim(-1), 3);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.f32()) % 64, 0u);
  EXPECT_THROW(t.dim(2), std::out_of_range);
  EXPECT_THROW(t.i32(), std::invalid_argument);
  EXPECT_THROW(Tensor::from_vector({2, 2}, {1, 2, 3}), std::invalid_argument);
  EXPECT_THROW(Tensor::empty({-1}), std::invalid_argument);
  Tensor v = t.view({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 2}));
  EXPECT_EQ(v.f32(), t.f32());  // a view aliases
  EXPECT_THROW(t.view({4, -1}), std::invalid_argument);
  Tensor c = t.clone();
  EXPECT_NE(c.f32(), t.f32());
  EXPECT_THROW(Tensor().shape(), std::logic_error);
}

TEST(Tensor, ShapeMismatchMessagesNameTheShapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 2});
  try {
    ops::add(a, b);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3, 2]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::matmul(a, a), std::invalid_argument);
  EXPECT_THROW(ops::linear(a, Tensor::zeros({4, 2}), Tensor()), std::invalid_argument);
}

TEST(Autograd, AccumulatesInTapeOrderAndClearsTheTape) {
  Tensor x = Tensor::from_vector({3}, {1, 2, 3}).set_requires_grad();
  // y = x*x + x: x gets gradients from two nodes; d/dx sum(y) = 2x + 1.
  Tensor y = ops::add(ops::mul(x, x), x);
  EXPECT_GT(tape_size(), 0u);
  backward(ops::sum(y));
  EXPECT_EQ(tape_size(), 0u);
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{3, 5, 7}));
  // A second backward accumulates into the leaf until zero_grad.
  backward(ops::sum(ops::scale(x, 2.0f)));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{5, 7, 9}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, ResidualAddGivesIndependentGradients) {
  Tensor a = Tensor::from_vector({2}, {1, 2}).set_requires_grad();
  Tensor b = Tensor::from_vector({2}, {3, 4}).set_requires_grad();
  Tensor y = ops::add(a, b);
  Tensor z = ops::add(ops::scale(y, 3.0f), a);  // a reached twice
  backward(ops::sum(z));
  EXPECT_EQ(a.grad().to_vector(), (std::vector<float>{4, 4}));
  EXPECT_EQ(b.grad().to_vector(), (std::vector<float>{3, 3}));
  EXPECT_NE(a.grad().f32(), b.grad().f32());
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = Tensor::from_vector({2}, {1, 2}).set_requires_grad();
  {
    NoGradGuard ng;
    Tensor y = ops::mul(x, x);
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_EQ(tape_size(), 0u);
  EXPECT_THROW(backward(Tensor::scalar(1.0f)), std::invalid_argument);
  EXPECT_THROW(backward(ops::mul(x, x)), std::invalid_argument);  // not a scalar
  clear_tape();
}
