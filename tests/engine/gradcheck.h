// Finite-difference gradient checks for engine ops: the analytic gradient from the tape
// against central differences of the same float32 forward (step h, tolerance scaled to
// the gradient's size).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/tensor.h"
#include "kernels/common/philox.h"

namespace detdl::testing {

inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, float lo = -1.0f,
                            float hi = 1.0f) {
  Tensor t = Tensor::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.f32()[i] =
        lo + (hi - lo) * philox_uniform(seed, RandomStream::test, 0, static_cast<std::uint64_t>(i));
  return t;
}

// f maps the inputs to any tensor; the checked scalar is sum(f(inputs) * r) for a fixed
// random r, so every output element's gradient matters.
inline void expect_gradients_match(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                   std::vector<Tensor> inputs, float h = 1e-2f, float rtol = 2e-2f,
                                   float atol = 2e-3f) {
  for (auto& t : inputs) t.set_requires_grad(true);
  Tensor probe;
  {
    NoGradGuard ng;
    probe = f(inputs);
  }
  const Tensor r = random_tensor(probe.shape(), 4242);
  auto objective = [&]() -> double {
    NoGradGuard ng;
    const Tensor y = f(inputs);
    double s = 0;
    for (std::int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(y.f32()[i]) * r.f32()[i];
    return s;
  };
  for (auto& t : inputs) t.zero_grad();
  {
    Tensor y = f(inputs);
    Tensor rr = r.clone();
    Tensor loss = ops::sum(ops::mul(y, rr));
    backward(loss);
  }
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    Tensor& t = inputs[k];
    ASSERT_TRUE(t.grad().defined()) << "input " << k << " got no gradient";
    const Tensor g = t.grad().clone();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      float* p = t.f32() + i;
      const float saved = *p;
      *p = saved + h;
      const double up = objective();
      *p = saved - h;
      const double down = objective();
      *p = saved;
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(g.f32()[i], numeric, atol + rtol * std::fabs(numeric))
          << "input " << k << " element " << i;
    }
  }
}

}  // namespace detdl::testing
