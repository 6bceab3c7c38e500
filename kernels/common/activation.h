// Activation functions and their derivatives, written once for the CPU and CUDA kernels
// (docs/determinism.md, "Element-wise arithmetic"). Each formula's comment gives its exact
// operation order; kernels/cpu/activation.cpp and the CUDA kernel call these functions and
// nothing else, so both give the same bits. Transcendentals come from detmath.h, or from
// detmath_alt.h when the `emulated` level's math family draws the second implementation.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

#include "kernels/common/detmath.h"
#include "kernels/common/detmath_alt.h"
#include "kernels/common/hd.h"

namespace detdl {

// thresholded_relu is Keras's ThresholdedReLU (one of AutoTrainer's repairs); appended last
// so that the earlier values keep their numbers.
enum class Activation : unsigned char {
  identity,
  relu,
  leaky_relu,
  elu,
  selu,
  tanh,
  sigmoid,
  thresholded_relu
};
inline constexpr int kActivationCount = 8;  // keep in step with the enum and the name table

constexpr std::string_view activation_name(Activation a) {
  switch (a) {
    case Activation::identity: return "identity";
    case Activation::relu: return "relu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::elu: return "elu";
    case Activation::selu: return "selu";
    case Activation::tanh: return "tanh";
    case Activation::sigmoid: return "sigmoid";
    case Activation::thresholded_relu: return "thresholded_relu";
  }
  return "?";
}
static_assert(activation_name(static_cast<Activation>(kActivationCount - 1)) == "thresholded_relu",
              "kActivationCount must match the enum");

// The activation whose activation_name is `s`, or nullopt.
inline std::optional<Activation> parse_activation(std::string_view s) {
  for (int i = 0; i < kActivationCount; ++i)
    if (activation_name(static_cast<Activation>(i)) == s) return static_cast<Activation>(i);
  return std::nullopt;
}

// Keras's default parameter of each layer: LeakyReLU(alpha=0.3), ELU(alpha=1.0),
// ThresholdedReLU(theta=1.0); 0 where the kind has none. (ops::leaky_relu's own default,
// 0.01, is PyTorch's.)
constexpr float default_alpha(Activation a) {
  return a == Activation::leaky_relu                                 ? 0.3f
         : a == Activation::elu || a == Activation::thresholded_relu ? 1.0f
                                                                     : 0.0f;
}

// SELU's constants (Klambauer et al. 2017) rounded to float; their product is rounded to
// float once, at compile time, and used as one constant.
inline constexpr float kSeluAlpha = 1.6732632423543772848170429916717f;
inline constexpr float kSeluScale = 1.0507009873554804934193349852946f;
inline constexpr float kSeluScaleAlpha = kSeluScale * kSeluAlpha;

// Forward y = f(x). alpha: leaky_relu's negative slope, elu's alpha, thresholded_relu's
// theta; ignored otherwise.
//   identity:   x
//   relu:       x > 0 ? x : 0                       (NaN -> 0: the comparison is false)
//   leaky_relu: x > 0 ? x : alpha * x
//   elu:        x > 0 ? x : alpha * expm1(x)
//   selu:       x > 0 ? kSeluScale * x : kSeluScaleAlpha * expm1(x)
//   tanh:       det_tanhf(x)
//   sigmoid:    e = exp(-|x|);  x >= 0 ? 1 / (1 + e) : e / (1 + e)   (never overflows)
//   thresholded_relu: x > alpha ? x : 0
// alt_math takes exp, expm1 and tanh from detmath_alt.h (see ActImpl below); act_forward
// is the canonical alt_math = false.
DETDL_HD float act_forward_impl(Activation a, float x, float alpha, bool alt_math) {
  switch (a) {
    case Activation::identity: return x;
    case Activation::relu: return x > 0.0f ? x : 0.0f;
    case Activation::leaky_relu: return x > 0.0f ? x : alpha * x;
    case Activation::elu: return x > 0.0f ? x : alpha * impl_expm1f(alt_math, x);
    case Activation::selu:
      return x > 0.0f ? kSeluScale * x : kSeluScaleAlpha * impl_expm1f(alt_math, x);
    case Activation::tanh: return impl_tanhf(alt_math, x);
    case Activation::sigmoid: {
      const float e = impl_expf(alt_math, -det_fabsf(x));
      return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
    case Activation::thresholded_relu: return x > alpha ? x : 0.0f;
  }
  return x;
}
DETDL_HD float act_forward(Activation a, float x, float alpha) {
  return act_forward_impl(a, x, alpha, false);
}

// The `emulated` level's choices for one activation call (kernels/common/impl_choice.h):
// alt_math: transcendentals from detmath_alt.h (math family); fuse: bit kActSiteTanhGrad
// computes tanh's 1 - y * y as fmaf(-y, y, 1) (contraction family; the only a*b+c site of
// these formulas: the others are single products, quotients or selections). {} is the
// canonical kernel.
inline constexpr std::uint32_t kActSiteTanhGrad = 0;
struct ActImpl {
  bool alt_math = false;
  std::uint32_t fuse = 0;
  bool canonical() const { return !alt_math && fuse == 0; }
};
// Which of the families an activation's formulas depend on.
constexpr bool act_uses_math(Activation a) {
  return a == Activation::elu || a == Activation::selu || a == Activation::tanh ||
         a == Activation::sigmoid;
}
constexpr bool act_has_contraction(Activation a) { return a == Activation::tanh; }

// Backward dx = f'(x) * dy from input x, output y = act_forward(a, x, alpha) and upstream
// dy. The output is used where it gives the derivative in one or two exact-enough
// operations (tanh, sigmoid); elu and selu use exp(x) itself because y + alpha cancels
// for very negative x.
//   identity:   dy
//   relu:       x > 0 ? dy : 0                      (the derivative at 0 is taken as 0)
//   leaky_relu: x > 0 ? dy : alpha * dy
//   elu:        x > 0 ? dy : dy * (alpha * exp(x))
//   selu:       x > 0 ? dy * kSeluScale : dy * (kSeluScaleAlpha * exp(x))
//   tanh:       dy * (1 - y * y)
//   sigmoid:    dy * (y * (1 - y))
//   thresholded_relu: x > alpha ? dy : 0
// alt_math and fuse as in ActImpl; act_backward is the canonical (false, 0).
DETDL_HD float act_backward_impl(Activation a, float x, float y, float dy, float alpha,
                                 bool alt_math, std::uint32_t fuse) {
  switch (a) {
    case Activation::identity: return dy;
    case Activation::relu: return x > 0.0f ? dy : 0.0f;
    case Activation::leaky_relu: return x > 0.0f ? dy : alpha * dy;
    case Activation::elu: return x > 0.0f ? dy : dy * (alpha * impl_expf(alt_math, x));
    case Activation::selu:
      return x > 0.0f ? dy * kSeluScale : dy * (kSeluScaleAlpha * impl_expf(alt_math, x));
    case Activation::tanh:
      return dy * (((fuse >> kActSiteTanhGrad) & 1u) ? fmaf(-y, y, 1.0f) : 1.0f - y * y);
    case Activation::sigmoid: return dy * (y * (1.0f - y));
    case Activation::thresholded_relu: return x > alpha ? dy : 0.0f;
  }
  return dy;
}
DETDL_HD float act_backward(Activation a, float x, float y, float dy, float alpha) {
  return act_backward_impl(a, x, y, dy, alpha, false, 0u);
}

}  // namespace detdl
