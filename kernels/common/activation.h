// Activation functions and their derivatives, written once for the CPU and CUDA kernels
// (docs/determinism.md, "Element-wise arithmetic"). Each formula's comment gives its exact
// operation order; kernels/cpu/activation.cpp and the CUDA kernel call these functions and
// nothing else, so both give the same bits. Transcendentals come from detmath.h.
#pragma once
#include <optional>
#include <string_view>

#include "kernels/common/detmath.h"
#include "kernels/common/hd.h"

namespace detdl {

enum class Activation : unsigned char { identity, relu, leaky_relu, elu, selu, tanh, sigmoid };
inline constexpr int kActivationCount = 7;  // keep in step with the enum and the name table

constexpr std::string_view activation_name(Activation a) {
  switch (a) {
    case Activation::identity: return "identity";
    case Activation::relu: return "relu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::elu: return "elu";
    case Activation::selu: return "selu";
    case Activation::tanh: return "tanh";
    case Activation::sigmoid: return "sigmoid";
  }
  return "?";
}
static_assert(activation_name(static_cast<Activation>(kActivationCount - 1)) == "sigmoid",
              "kActivationCount must match the enum");

// The activation whose activation_name is `s`, or nullopt.
inline std::optional<Activation> parse_activation(std::string_view s) {
  for (int i = 0; i < kActivationCount; ++i)
    if (activation_name(static_cast<Activation>(i)) == s) return static_cast<Activation>(i);
  return std::nullopt;
}

// SELU's constants (Klambauer et al. 2017) rounded to float; their product is rounded to
// float once, at compile time, and used as one constant.
inline constexpr float kSeluAlpha = 1.6732632423543772848170429916717f;
inline constexpr float kSeluScale = 1.0507009873554804934193349852946f;
inline constexpr float kSeluScaleAlpha = kSeluScale * kSeluAlpha;

// Forward y = f(x). alpha: leaky_relu's negative slope, elu's alpha; ignored otherwise.
//   identity:   x
//   relu:       x > 0 ? x : 0                       (NaN -> 0: the comparison is false)
//   leaky_relu: x > 0 ? x : alpha * x
//   elu:        x > 0 ? x : alpha * expm1(x)
//   selu:       x > 0 ? kSeluScale * x : kSeluScaleAlpha * expm1(x)
//   tanh:       det_tanhf(x)
//   sigmoid:    e = exp(-|x|);  x >= 0 ? 1 / (1 + e) : e / (1 + e)   (never overflows)
DETDL_HD float act_forward(Activation a, float x, float alpha) {
  switch (a) {
    case Activation::identity: return x;
    case Activation::relu: return x > 0.0f ? x : 0.0f;
    case Activation::leaky_relu: return x > 0.0f ? x : alpha * x;
    case Activation::elu: return x > 0.0f ? x : alpha * det_expm1f(x);
    case Activation::selu: return x > 0.0f ? kSeluScale * x : kSeluScaleAlpha * det_expm1f(x);
    case Activation::tanh: return det_tanhf(x);
    case Activation::sigmoid: {
      const float e = det_expf(-det_fabsf(x));
      return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
  }
  return x;
}

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
DETDL_HD float act_backward(Activation a, float x, float y, float dy, float alpha) {
  switch (a) {
    case Activation::identity: return dy;
    case Activation::relu: return x > 0.0f ? dy : 0.0f;
    case Activation::leaky_relu: return x > 0.0f ? dy : alpha * dy;
    case Activation::elu: return x > 0.0f ? dy : dy * (alpha * det_expf(x));
    case Activation::selu: return x > 0.0f ? dy * kSeluScale : dy * (kSeluScaleAlpha * det_expf(x));
    case Activation::tanh: return dy * (1.0f - y * y);
    case Activation::sigmoid: return dy * (y * (1.0f - y));
  }
  return dy;
}

}  // namespace detdl
