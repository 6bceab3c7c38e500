#include "kernels/cpu/activation.h"

#include <immintrin.h>

#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

// Elements per task: tensors below this stay on one thread (waking the pool costs more
// than the work). Each element is computed by the shared formula alone, so any split
// gives the same bits.
constexpr std::int64_t kGrain = 1 << 14;

// Runs body(b, e) over [0, n) in tasks of kGrain elements.
template <class Body>
void for_ranges(std::int64_t n, const Body& body) {
  if (n <= 0) return;
  parallel_ranges((n + kGrain - 1) / kGrain, [&](std::int64_t t0, std::int64_t t1, int) {
    body(t0 * kGrain, t1 * kGrain < n ? t1 * kGrain : n);
  });
}

// Runs body(i) for every i in [0, n).
template <class Body>
void for_elements(std::int64_t n, const Body& body) {
  for_ranges(n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) body(i);
  });
}

// One loop per activation kind and variant, so the kind's switch and the variant's choices
// are resolved outside the loop and the compiler can vectorise the simple ones (ReLU: a
// compare and a blend per 8 lanes). Each lane still runs exactly the shared formula, so
// the bits are those of the scalar loop.
template <Activation A, bool Alt>
void forward_as(float alpha, const float* x, float* y, std::int64_t n) {
  if constexpr (A == Activation::relu) {
    // x > 0 ? x : 0 as (x > 0 mask) & x: the same bits (a false compare, NaN included,
    // gives +0.0f). Written out because GCC left this loop scalar.
    for_ranges(n, [&](std::int64_t b, std::int64_t e) {
      std::int64_t i = b;
      for (; i + 8 <= e; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i,
                         _mm256_and_ps(v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ)));
      }
      for (; i < e; ++i) y[i] = act_forward_impl(A, x[i], alpha, Alt);
    });
    return;
  }
  for_elements(n, [&](std::int64_t i) { y[i] = act_forward_impl(A, x[i], alpha, Alt); });
}

template <Activation A, bool Alt, std::uint32_t Fuse>
void backward_as(float alpha, const float* x, const float* y, const float* dy, float* dx,
                 std::int64_t n) {
  if constexpr (A == Activation::relu) {  // x > 0 ? dy : 0 as (x > 0 mask) & dy
    for_ranges(n, [&](std::int64_t b, std::int64_t e) {
      std::int64_t i = b;
      for (; i + 8 <= e; i += 8) {
        const __m256 m = _mm256_cmp_ps(_mm256_loadu_ps(x + i), _mm256_setzero_ps(), _CMP_GT_OQ);
        _mm256_storeu_ps(dx + i, _mm256_and_ps(_mm256_loadu_ps(dy + i), m));
      }
      for (; i < e; ++i) dx[i] = act_backward_impl(A, x[i], y[i], dy[i], alpha, Alt, Fuse);
    });
    return;
  }
  for_elements(n, [&](std::int64_t i) {
    dx[i] = act_backward_impl(A, x[i], y[i], dy[i], alpha, Alt, Fuse);
  });
}

// The kinds whose formulas read the choice get both instantiations; the others ignore it.
template <Activation A>
void forward_variant(float alpha, const float* x, float* y, std::int64_t n, ActImpl impl) {
  if (act_uses_math(A) && impl.alt_math) return forward_as<A, true>(alpha, x, y, n);
  forward_as<A, false>(alpha, x, y, n);
}

template <Activation A>
void backward_variant(float alpha, const float* x, const float* y, const float* dy, float* dx,
                      std::int64_t n, ActImpl impl) {
  constexpr std::uint32_t kTanhFused = 1u << kActSiteTanhGrad;
  if (act_has_contraction(A) && (impl.fuse & kTanhFused))
    return backward_as<A, false, kTanhFused>(alpha, x, y, dy, dx, n);
  if (act_uses_math(A) && impl.alt_math) return backward_as<A, true, 0>(alpha, x, y, dy, dx, n);
  backward_as<A, false, 0>(alpha, x, y, dy, dx, n);
}

}  // namespace

void activation_forward(Activation a, float alpha, const float* x, float* y, std::int64_t n,
                        ActImpl impl) {
  switch (a) {
    case Activation::identity: return forward_variant<Activation::identity>(alpha, x, y, n, impl);
    case Activation::relu: return forward_variant<Activation::relu>(alpha, x, y, n, impl);
    case Activation::leaky_relu:
      return forward_variant<Activation::leaky_relu>(alpha, x, y, n, impl);
    case Activation::elu: return forward_variant<Activation::elu>(alpha, x, y, n, impl);
    case Activation::selu: return forward_variant<Activation::selu>(alpha, x, y, n, impl);
    case Activation::tanh: return forward_variant<Activation::tanh>(alpha, x, y, n, impl);
    case Activation::sigmoid: return forward_variant<Activation::sigmoid>(alpha, x, y, n, impl);
    case Activation::thresholded_relu:
      return forward_variant<Activation::thresholded_relu>(alpha, x, y, n, impl);
  }
  for_elements(n, [&](std::int64_t i) { y[i] = act_forward_impl(a, x[i], alpha, impl.alt_math); });
}

void activation_backward(Activation a, float alpha, const float* x, const float* y, const float* dy,
                         float* dx, std::int64_t n, ActImpl impl) {
  switch (a) {
    case Activation::identity:
      return backward_variant<Activation::identity>(alpha, x, y, dy, dx, n, impl);
    case Activation::relu: return backward_variant<Activation::relu>(alpha, x, y, dy, dx, n, impl);
    case Activation::leaky_relu:
      return backward_variant<Activation::leaky_relu>(alpha, x, y, dy, dx, n, impl);
    case Activation::elu: return backward_variant<Activation::elu>(alpha, x, y, dy, dx, n, impl);
    case Activation::selu: return backward_variant<Activation::selu>(alpha, x, y, dy, dx, n, impl);
    case Activation::tanh: return backward_variant<Activation::tanh>(alpha, x, y, dy, dx, n, impl);
    case Activation::sigmoid:
      return backward_variant<Activation::sigmoid>(alpha, x, y, dy, dx, n, impl);
    case Activation::thresholded_relu:
      return backward_variant<Activation::thresholded_relu>(alpha, x, y, dy, dx, n, impl);
  }
  for_elements(n, [&](std::int64_t i) {
    dx[i] = act_backward_impl(a, x[i], y[i], dy[i], alpha, impl.alt_math, impl.fuse);
  });
}

void activation_forward(Activation a, float alpha, const float* x, float* y, std::int64_t n) {
  activation_forward(a, alpha, x, y, n, ActImpl{});
}

void activation_backward(Activation a, float alpha, const float* x, const float* y, const float* dy,
                         float* dx, std::int64_t n) {
  activation_backward(a, alpha, x, y, dy, dx, n, ActImpl{});
}

}  // namespace detdl::cpu
