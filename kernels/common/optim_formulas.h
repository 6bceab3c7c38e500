// Optimizer updates of one element, written once for the CPU and the CUDA kernels
// (docs/determinism.md, "Element-wise arithmetic"). Each function's comment is its exact
// operation order: evaluate left to right as C++ does, every operation rounded to float,
// no fma (the builds forbid contraction). Host scalars (the learning rate, Adam's bias
// corrections, Keras's lr_t) are computed once per step on the host and passed in; the
// per-element constants written here, such as (1 - b1), are single IEEE operations on
// those floats and so the same on every device.
//
// Weight decay wd: added to the gradient (L2, PyTorch's weight_decay) as g' = g + wd * p,
// only when wd != 0 (as PyTorch, so wd = 0 leaves an inf/NaN parameter out of g');
// Adam/AdamW with decoupled = true instead shrinks the parameter first:
// p = p - (lr * wd) * p (PyTorch AdamW writes p * (1 - lr * wd): equal in exact
// arithmetic, not bit for bit). keras_form changes the update formula only, never the
// weight-decay rule.
#pragma once
#include <cmath>

#include "kernels/common/hd.h"

namespace detdl {

DETDL_HD float weight_decayed_grad(float g, float p, float wd) {
  return wd != 0.0f ? g + wd * p : g;
}

// SGD, PyTorch's form (torch.optim.SGD, dampening 0):
//   g' = g + wd * p
//   momentum != 0:  buf = first ? g' : momentum * buf + g'      (PyTorch's first step
//                   stores g' itself, not (1 - dampening) * g')
//                   d = nesterov ? g' + momentum * buf : buf
//   momentum == 0:  d = g'   (buf untouched)
//   p = p - lr * d
DETDL_HD void sgd_element(float& p, float g, float& buf, float lr, float momentum, float wd,
                          bool nesterov, bool first) {
  const float gw = weight_decayed_grad(g, p, wd);
  float d = gw;
  if (momentum != 0.0f) {
    buf = first ? gw : momentum * buf + gw;
    d = nesterov ? gw + momentum * buf : buf;
  }
  p = p - lr * d;
}

// SGD, Keras's form (keras.optimizers.SGD; v starts at 0, so the first step is
// v = -lr * g'):
//   g' = g + wd * p
//   momentum != 0:  v = momentum * v - lr * g'
//                   p = nesterov ? p + (momentum * v - lr * g') : p + v
//   momentum == 0:  p = p - lr * g'   (v untouched)
DETDL_HD void sgd_element_keras(float& p, float g, float& v, float lr, float momentum, float wd,
                                bool nesterov) {
  const float gw = weight_decayed_grad(g, p, wd);
  if (momentum == 0.0f) {
    p = p - lr * gw;
    return;
  }
  v = momentum * v - lr * gw;
  p = nesterov ? p + (momentum * v - lr * gw) : p + v;
}

// Adam's moments, both forms (Kingma & Ba's textbook order; PyTorch writes m as
// m.lerp_(g', 1 - b1) and Keras as m + (g' - m) * (1 - b1): equal in exact arithmetic):
//   m = b1 * m + (1 - b1) * g'
//   v = b2 * v + (1 - b2) * (g' * g')
DETDL_HD void adam_moments(float g, float& m, float& v, float b1, float b2) {
  m = b1 * m + (1.0f - b1) * g;
  v = b2 * v + (1.0f - b2) * (g * g);
}

// Adam, PyTorch's form (torch.optim.Adam; decoupled: AdamW):
//   decoupled: p = p - (lr * wd) * p;   else g' = g + wd * p
//   moments as adam_moments
//   p = p - ((lr * (m / bc1)) / (sqrtf(v / bc2) + eps))      bc1 = 1 - b1^t, bc2 = 1 - b2^t
// (PyTorch's code arranges the same step as (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).)
// First step (m = v = 0): m / bc1 = g', v / bc2 = g'^2 up to rounding, so
// p moves by about lr * g' / (|g'| + eps), i.e. lr * sign(g').
DETDL_HD void adam_element(float& p, float g, float& m, float& v, float lr, float b1, float b2,
                           float eps, float bc1, float bc2, float wd, bool decoupled) {
  float gw = g;
  if (decoupled) {
    if (wd != 0.0f) p = p - (lr * wd) * p;
  } else {
    gw = weight_decayed_grad(g, p, wd);
  }
  adam_moments(gw, m, v, b1, b2);
  p = p - (lr * (m / bc1)) / (sqrtf(v / bc2) + eps);
}

// Adam, Keras's form (keras.optimizers.Adam, default eps 1e-7): the bias corrections are
// folded into lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) by the host (adam_keras_lr):
//   weight decay and moments as adam_element
//   p = p - ((lr_t * m) / (sqrtf(v) + eps))
DETDL_HD void adam_element_keras(float& p, float g, float& m, float& v, float lr_t, float lr,
                                 float b1, float b2, float eps, float wd, bool decoupled) {
  float gw = g;
  if (decoupled) {
    if (wd != 0.0f) p = p - (lr * wd) * p;
  } else {
    gw = weight_decayed_grad(g, p, wd);
  }
  adam_moments(gw, m, v, b1, b2);
  p = p - (lr_t * m) / (sqrtf(v) + eps);
}

// Keras's lr_t on the host from the float bias corrections: every operation in double
// (IEEE, sqrt correctly rounded), rounded to float once.
inline float adam_keras_lr(float lr, float bc1, float bc2) {
  return static_cast<float>(static_cast<double>(lr) * std::sqrt(static_cast<double>(bc2)) /
                            static_cast<double>(bc1));
}

// RMSprop, PyTorch's form (torch.optim.RMSprop, not centered; defaults alpha 0.99,
// eps 1e-8):
//   g' = g + wd * p
//   v = alpha * v + (1 - alpha) * (g' * g')
//   a = sqrtf(v) + eps
//   momentum > 0:  buf = momentum * buf + g' / a;   p = p - lr * buf
//   else:          p = p - lr * (g' / a)            (buf untouched)
// (so with momentum the first step equals the plain step bit for bit, as in PyTorch).
DETDL_HD void rmsprop_element(float& p, float g, float& v, float& buf, float lr, float alpha,
                              float eps, float momentum, float wd) {
  const float gw = weight_decayed_grad(g, p, wd);
  v = alpha * v + (1.0f - alpha) * (gw * gw);
  const float a = sqrtf(v) + eps;
  if (momentum > 0.0f) {
    buf = momentum * buf + gw / a;
    p = p - lr * buf;
  } else {
    p = p - lr * (gw / a);
  }
}

// RMSprop, Keras's form (keras.optimizers.RMSprop; defaults rho 0.9, eps 1e-7; eps goes
// INSIDE the square root and the momentum buffer holds lr-scaled steps):
//   g' = g + wd * p
//   v = rho * v + (1 - rho) * (g' * g')
//   step = (lr * g') / sqrtf(v + eps)
//   momentum > 0:  buf = momentum * buf + step;   p = p - buf
//   else:          p = p - step
DETDL_HD void rmsprop_element_keras(float& p, float g, float& v, float& buf, float lr, float rho,
                                    float eps, float momentum, float wd) {
  const float gw = weight_decayed_grad(g, p, wd);
  v = rho * v + (1.0f - rho) * (gw * gw);
  const float step = (lr * gw) / sqrtf(v + eps);
  if (momentum > 0.0f) {
    buf = momentum * buf + step;
    p = p - buf;
  } else {
    p = p - step;
  }
}

}  // namespace detdl
