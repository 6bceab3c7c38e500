// Optimizer updates of one element, written once for the CPU and the CUDA kernels
// (docs/determinism.md, "Element-wise arithmetic"). Each function's comment is its exact
// operation order: evaluate left to right as C++ does, every operation rounded to float,
// no fma (the builds forbid contraction) unless an _c variant's `fuse` asks for one (the
// `emulated` level's contraction family, below). Host scalars (the learning rate, Adam's bias
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
#include <cstdint>

#include "kernels/common/hd.h"

namespace detdl {

// ---- contraction sites (the `emulated` level's contraction family) ----
// Each a*b + c in a formula is a site that a compiler may fuse into one fmaf (g++ with
// -ffp-contract=fast, nvcc's default --fmad=true) or leave as a rounded product and a
// rounded add. The *_c variants below take `fuse`: bit s set fuses site s. A sum of two
// products a*b + c*d (a site and the bit after it) fuses one of them, as compilers do:
// bit s + 1 picks which. fuse = 0 is the written order, bit for bit the functions without
// _c (which call the _c variants with 0). The same bit layout for every optimizer:
enum OptimSite : std::uint32_t {
  kOptimSiteDecay = 0,  // g + wd * p, or decoupled p - (lr * wd) * p
  kOptimSiteA = 1,      // the first state update: SGD's buffer / velocity, Adam's m,
                        // RMSprop's v (two-product sites use bits 1 and 2)
  kOptimSiteB = 3,      // the second: Adam's v (bits 3 and 4), RMSprop's momentum buffer,
                        // SGD's Nesterov direction
  kOptimSiteC = 5,      // the parameter step p - lr * d
};
inline constexpr int kOptimFuseBits = 6;

DETDL_HD bool optim_fused(std::uint32_t fuse, std::uint32_t site) { return (fuse >> site) & 1u; }
// c + a * b
DETDL_HD float optim_add_mul(std::uint32_t fuse, std::uint32_t site, float c, float a, float b) {
  return optim_fused(fuse, site) ? fmaf(a, b, c) : c + a * b;
}
// a * b + c
DETDL_HD float optim_mul_add(std::uint32_t fuse, std::uint32_t site, float a, float b, float c) {
  return optim_fused(fuse, site) ? fmaf(a, b, c) : a * b + c;
}
// c - a * b
DETDL_HD float optim_sub_mul(std::uint32_t fuse, std::uint32_t site, float c, float a, float b) {
  return optim_fused(fuse, site) ? fmaf(-a, b, c) : c - a * b;
}
// a * b + c * d: unfused, or one product kept exact inside fmaf (bit site + 1: which).
DETDL_HD float optim_dot2(std::uint32_t fuse, std::uint32_t site, float a, float b, float c,
                          float d) {
  if (!optim_fused(fuse, site)) return a * b + c * d;
  return optim_fused(fuse, site + 1) ? fmaf(c, d, a * b) : fmaf(a, b, c * d);
}
// a * b - c * d, the same way.
DETDL_HD float optim_dot2_sub(std::uint32_t fuse, std::uint32_t site, float a, float b, float c,
                              float d) {
  if (!optim_fused(fuse, site)) return a * b - c * d;
  return optim_fused(fuse, site + 1) ? fmaf(-c, d, a * b) : fmaf(a, b, -(c * d));
}

// ---- each framework's form of an update (the `emulated` level's optimizer family) ----
// SGD and RMSprop have two forms each, selected by their params' keras flag; Adam three:
//   textbook: adam_element (Kingma & Ba, the formula PyTorch documents)
//   torch:    adam_element_torch (the operation order of torch.optim.Adam's code)
//   keras:    adam_element_keras (Keras's lr_t)
enum class AdamForm : std::uint8_t { textbook, torch, keras };
inline constexpr int kAdamFormCount = 3;

DETDL_HD float weight_decayed_grad_c(float g, float p, float wd, std::uint32_t fuse) {
  return wd != 0.0f ? optim_add_mul(fuse, kOptimSiteDecay, g, wd, p) : g;
}
DETDL_HD float weight_decayed_grad(float g, float p, float wd) {
  return weight_decayed_grad_c(g, p, wd, 0u);
}

// SGD, PyTorch's form (torch.optim.SGD, dampening 0):
//   g' = g + wd * p
//   momentum != 0:  buf = first ? g' : momentum * buf + g'      (PyTorch's first step
//                   stores g' itself, not (1 - dampening) * g')
//                   d = nesterov ? g' + momentum * buf : buf
//   momentum == 0:  d = g'   (buf untouched)
//   p = p - lr * d
// Sites: decay, A = momentum * buf + g', B = g' + momentum * buf, C = p - lr * d.
DETDL_HD void sgd_element_c(float& p, float g, float& buf, float lr, float momentum, float wd,
                            bool nesterov, bool first, std::uint32_t fuse) {
  const float gw = weight_decayed_grad_c(g, p, wd, fuse);
  float d = gw;
  if (momentum != 0.0f) {
    buf = first ? gw : optim_mul_add(fuse, kOptimSiteA, momentum, buf, gw);
    d = nesterov ? optim_add_mul(fuse, kOptimSiteB, gw, momentum, buf) : buf;
  }
  p = optim_sub_mul(fuse, kOptimSiteC, p, lr, d);
}
DETDL_HD void sgd_element(float& p, float g, float& buf, float lr, float momentum, float wd,
                          bool nesterov, bool first) {
  sgd_element_c(p, g, buf, lr, momentum, wd, nesterov, first, 0u);
}

// SGD, Keras's form (keras.optimizers.SGD; v starts at 0, so the first step is
// v = -lr * g'):
//   g' = g + wd * p
//   momentum != 0:  v = momentum * v - lr * g'
//                   p = nesterov ? p + (momentum * v - lr * g') : p + v
//   momentum == 0:  p = p - lr * g'   (v untouched)
// Sites: decay, A = momentum * v - lr * g' (two products), B = the same in the Nesterov
// step (two products), C = p - lr * g'.
DETDL_HD void sgd_element_keras_c(float& p, float g, float& v, float lr, float momentum, float wd,
                                  bool nesterov, std::uint32_t fuse) {
  const float gw = weight_decayed_grad_c(g, p, wd, fuse);
  if (momentum == 0.0f) {
    p = optim_sub_mul(fuse, kOptimSiteC, p, lr, gw);
    return;
  }
  v = optim_dot2_sub(fuse, kOptimSiteA, momentum, v, lr, gw);
  p = nesterov ? p + optim_dot2_sub(fuse, kOptimSiteB, momentum, v, lr, gw) : p + v;
}
DETDL_HD void sgd_element_keras(float& p, float g, float& v, float lr, float momentum, float wd,
                                bool nesterov) {
  sgd_element_keras_c(p, g, v, lr, momentum, wd, nesterov, 0u);
}

// Adam's moments, both forms (Kingma & Ba's textbook order; PyTorch writes m as
// m.lerp_(g', 1 - b1) and Keras as m + (g' - m) * (1 - b1): equal in exact arithmetic):
//   m = b1 * m + (1 - b1) * g'
//   v = b2 * v + (1 - b2) * (g' * g')
// Sites: A = m's two products, B = v's.
DETDL_HD void adam_moments_c(float g, float& m, float& v, float b1, float b2, std::uint32_t fuse) {
  m = optim_dot2(fuse, kOptimSiteA, b1, m, 1.0f - b1, g);
  v = optim_dot2(fuse, kOptimSiteB, b2, v, 1.0f - b2, g * g);
}
DETDL_HD void adam_moments(float g, float& m, float& v, float b1, float b2) {
  adam_moments_c(g, m, v, b1, b2, 0u);
}

// Adam's weight decay (site decay): decoupled shrinks p (p - (lr * wd) * p), else L2
// returns g + wd * p.
DETDL_HD float adam_decay_c(float& p, float g, float lr, float wd, bool decoupled,
                            std::uint32_t fuse) {
  if (!decoupled) return weight_decayed_grad_c(g, p, wd, fuse);
  if (wd != 0.0f) p = optim_sub_mul(fuse, kOptimSiteDecay, p, lr * wd, p);
  return g;
}

// Adam, PyTorch's form (torch.optim.Adam; decoupled: AdamW):
//   decoupled: p = p - (lr * wd) * p;   else g' = g + wd * p
//   moments as adam_moments
//   p = p - ((lr * (m / bc1)) / (sqrtf(v / bc2) + eps))      bc1 = 1 - b1^t, bc2 = 1 - b2^t
// (PyTorch's code arranges the same step as (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).)
// First step (m = v = 0): m / bc1 = g', v / bc2 = g'^2 up to rounding, so
// p moves by about lr * g' / (|g'| + eps), i.e. lr * sign(g').
DETDL_HD void adam_element_c(float& p, float g, float& m, float& v, float lr, float b1, float b2,
                             float eps, float bc1, float bc2, float wd, bool decoupled,
                             std::uint32_t fuse) {
  const float gw = adam_decay_c(p, g, lr, wd, decoupled, fuse);
  adam_moments_c(gw, m, v, b1, b2, fuse);
  p = p - (lr * (m / bc1)) / (sqrtf(v / bc2) + eps);
}
DETDL_HD void adam_element(float& p, float g, float& m, float& v, float lr, float b1, float b2,
                           float eps, float bc1, float bc2, float wd, bool decoupled) {
  adam_element_c(p, g, m, v, lr, b1, b2, eps, bc1, bc2, wd, decoupled, 0u);
}

// Adam in the operation order of torch.optim.Adam's code (_single_tensor_adam, not
// capturable): the host computes step_size = lr / bc1 and bc2_sqrt = sqrt(bc2) in double
// (Python floats) and rounds each to float once (adam_torch_scalars); AdamW decays with
// p * (1 - lr * wd), that factor also a host scalar (decay_mul):
//   decoupled: p = p * decay_mul;   else g' = g + wd * p
//   moments as adam_moments
//   denom = sqrtf(v) / bc2_sqrt + eps
//   p = p + ((-step_size) * m) / denom      (ATen's addcdiv: self + value * t1 / t2)
DETDL_HD void adam_element_torch_c(float& p, float g, float& m, float& v, float step_size,
                                   float bc2_sqrt, float decay_mul, float b1, float b2, float eps,
                                   float wd, bool decoupled, std::uint32_t fuse) {
  float gw = g;
  if (decoupled) {
    if (wd != 0.0f) p = p * decay_mul;
  } else {
    gw = weight_decayed_grad_c(g, p, wd, fuse);
  }
  adam_moments_c(gw, m, v, b1, b2, fuse);
  const float denom = sqrtf(v) / bc2_sqrt + eps;
  p = p + ((-step_size) * m) / denom;
}

// torch.optim.Adam's host scalars from the float lr, bias corrections and weight decay:
// {lr / bc1, sqrt(bc2), 1 - lr * wd}, each in double and rounded to float once.
struct AdamTorchScalars {
  float step_size, bc2_sqrt, decay_mul;
};
inline AdamTorchScalars adam_torch_scalars(float lr, float bc1, float bc2, float wd) {
  const double l = lr;
  return {static_cast<float>(l / static_cast<double>(bc1)),
          static_cast<float>(std::sqrt(static_cast<double>(bc2))),
          static_cast<float>(1.0 - l * static_cast<double>(wd))};
}

// Adam, Keras's form (keras.optimizers.Adam, default eps 1e-7): the bias corrections are
// folded into lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) by the host (adam_keras_lr):
//   weight decay and moments as adam_element
//   p = p - ((lr_t * m) / (sqrtf(v) + eps))
DETDL_HD void adam_element_keras_c(float& p, float g, float& m, float& v, float lr_t, float lr,
                                   float b1, float b2, float eps, float wd, bool decoupled,
                                   std::uint32_t fuse) {
  const float gw = adam_decay_c(p, g, lr, wd, decoupled, fuse);
  adam_moments_c(gw, m, v, b1, b2, fuse);
  p = p - (lr_t * m) / (sqrtf(v) + eps);
}
DETDL_HD void adam_element_keras(float& p, float g, float& m, float& v, float lr_t, float lr,
                                 float b1, float b2, float eps, float wd, bool decoupled) {
  adam_element_keras_c(p, g, m, v, lr_t, lr, b1, b2, eps, wd, decoupled, 0u);
}

// The configured Adam (no contraction): Keras's form with its lr_t when keras, else the
// textbook form. The CPU kernels' scalar tail and the CUDA kernel both call this.
DETDL_HD void adam_element_configured(bool keras, float& p, float g, float& m, float& v, float lr_t,
                                      float lr, float b1, float b2, float eps, float bc1, float bc2,
                                      float wd, bool decoupled) {
  if (keras)
    adam_element_keras(p, g, m, v, lr_t, lr, b1, b2, eps, wd, decoupled);
  else
    adam_element(p, g, m, v, lr, b1, b2, eps, bc1, bc2, wd, decoupled);
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
// Sites: decay, A = v's two products, B = momentum * buf + g' / a, C = p - lr * (...).
DETDL_HD void rmsprop_element_c(float& p, float g, float& v, float& buf, float lr, float alpha,
                                float eps, float momentum, float wd, std::uint32_t fuse) {
  const float gw = weight_decayed_grad_c(g, p, wd, fuse);
  v = optim_dot2(fuse, kOptimSiteA, alpha, v, 1.0f - alpha, gw * gw);
  const float a = sqrtf(v) + eps;
  if (momentum > 0.0f) {
    buf = optim_mul_add(fuse, kOptimSiteB, momentum, buf, gw / a);
    p = optim_sub_mul(fuse, kOptimSiteC, p, lr, buf);
  } else {
    p = optim_sub_mul(fuse, kOptimSiteC, p, lr, gw / a);
  }
}
DETDL_HD void rmsprop_element(float& p, float g, float& v, float& buf, float lr, float alpha,
                              float eps, float momentum, float wd) {
  rmsprop_element_c(p, g, v, buf, lr, alpha, eps, momentum, wd, 0u);
}

// RMSprop, Keras's form (keras.optimizers.RMSprop; defaults rho 0.9, eps 1e-7; eps goes
// INSIDE the square root and the momentum buffer holds lr-scaled steps):
//   g' = g + wd * p
//   v = rho * v + (1 - rho) * (g' * g')
//   step = (lr * g') / sqrtf(v + eps)
//   momentum > 0:  buf = momentum * buf + step;   p = p - buf
//   else:          p = p - step
// Sites: decay, A = v's two products, B = momentum * buf + step.
DETDL_HD void rmsprop_element_keras_c(float& p, float g, float& v, float& buf, float lr, float rho,
                                      float eps, float momentum, float wd, std::uint32_t fuse) {
  const float gw = weight_decayed_grad_c(g, p, wd, fuse);
  v = optim_dot2(fuse, kOptimSiteA, rho, v, 1.0f - rho, gw * gw);
  const float step = (lr * gw) / sqrtf(v + eps);
  if (momentum > 0.0f) {
    buf = optim_mul_add(fuse, kOptimSiteB, momentum, buf, step);
    p = p - buf;
  } else {
    p = p - step;
  }
}
DETDL_HD void rmsprop_element_keras(float& p, float g, float& v, float& buf, float lr, float rho,
                                    float eps, float momentum, float wd) {
  rmsprop_element_keras_c(p, g, v, buf, lr, rho, eps, momentum, wd, 0u);
}

}  // namespace detdl
