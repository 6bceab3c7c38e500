#include "kernels/cpu/activation.h"

#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

// Elements per task: tensors below this stay on one thread (waking the pool costs more
// than the work). Each element is computed by the shared formula alone, so any split
// gives the same bits.
constexpr std::int64_t kGrain = 1 << 14;

template <class Body>
void for_elements(std::int64_t n, const Body& body) {
  if (n <= 0) return;
  parallel_ranges((n + kGrain - 1) / kGrain, [&](std::int64_t t0, std::int64_t t1, int) {
    const std::int64_t end = t1 * kGrain < n ? t1 * kGrain : n;
    for (std::int64_t i = t0 * kGrain; i < end; ++i) body(i);
  });
}

// One loop per activation kind, so the kind's switch is resolved outside the loop and the
// compiler can vectorise the simple ones (ReLU: a compare and a blend per 8 lanes). Each
// lane still runs exactly the shared formula, so the bits are those of the scalar loop.
template <Activation A>
void forward_as(float alpha, const float* x, float* y, std::int64_t n) {
  for_elements(n, [&](std::int64_t i) { y[i] = act_forward(A, x[i], alpha); });
}

template <Activation A>
void backward_as(float alpha, const float* x, const float* y, const float* dy, float* dx,
                 std::int64_t n) {
  for_elements(n, [&](std::int64_t i) { dx[i] = act_backward(A, x[i], y[i], dy[i], alpha); });
}

}  // namespace

void activation_forward(Activation a, float alpha, const float* x, float* y, std::int64_t n) {
  switch (a) {
    case Activation::identity: return forward_as<Activation::identity>(alpha, x, y, n);
    case Activation::relu: return forward_as<Activation::relu>(alpha, x, y, n);
    case Activation::leaky_relu: return forward_as<Activation::leaky_relu>(alpha, x, y, n);
    case Activation::elu: return forward_as<Activation::elu>(alpha, x, y, n);
    case Activation::selu: return forward_as<Activation::selu>(alpha, x, y, n);
    case Activation::tanh: return forward_as<Activation::tanh>(alpha, x, y, n);
    case Activation::sigmoid: return forward_as<Activation::sigmoid>(alpha, x, y, n);
  }
  for_elements(n, [&](std::int64_t i) { y[i] = act_forward(a, x[i], alpha); });
}

void activation_backward(Activation a, float alpha, const float* x, const float* y, const float* dy,
                         float* dx, std::int64_t n) {
  switch (a) {
    case Activation::identity: return backward_as<Activation::identity>(alpha, x, y, dy, dx, n);
    case Activation::relu: return backward_as<Activation::relu>(alpha, x, y, dy, dx, n);
    case Activation::leaky_relu: return backward_as<Activation::leaky_relu>(alpha, x, y, dy, dx, n);
    case Activation::elu: return backward_as<Activation::elu>(alpha, x, y, dy, dx, n);
    case Activation::selu: return backward_as<Activation::selu>(alpha, x, y, dy, dx, n);
    case Activation::tanh: return backward_as<Activation::tanh>(alpha, x, y, dy, dx, n);
    case Activation::sigmoid: return backward_as<Activation::sigmoid>(alpha, x, y, dy, dx, n);
  }
  for_elements(n, [&](std::int64_t i) { dx[i] = act_backward(a, x[i], y[i], dy[i], alpha); });
}

}  // namespace detdl::cpu
