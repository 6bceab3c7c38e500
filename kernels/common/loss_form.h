// The `emulated` level's per-element choices of a loss (the loss and math families; see
// kernels/cpu/loss.h "The emulated level" for what each stands for): the part of
// cpu::LossImpl that the CUDA kernels take too (kernels/cuda/loss.h). LossForm{} is the
// canonical loss. The reduction's tree shape (the reduce family) is not here: the CUDA
// backend does not emulate it.
#pragma once
#include <cstdint>

#include "kernels/common/cross_entropy.h"
#include "kernels/common/detmath_alt.h"
#include "kernels/common/hd.h"
#include "kernels/common/reduction.h"

namespace detdl {

struct LossForm {
  bool subtract_max = true;       // softmax with the max subtracted (false: inside the guard, not)
  bool log_of_softmax = false;    // cross-entropy as -log(p_y)
  bool reciprocal_mean = false;   // a mean as root * (1 / n)
  bool log_softmax_grad = false;  // PyTorch's nll_loss + log_softmax backward
  bool alt_exp = false, alt_log = false, alt_log1p = false;  // detmath_alt.h's functions
};

// Beyond this max logit the fast softmax would overflow (exp(88.7) = inf) or underflow the
// whole row, so it subtracts the max as the canonical form does.
inline constexpr float kFastSoftmaxGuard = 80.0f;

// root / n, or root * (1 / n) with the reciprocal computed once (reciprocal_mean).
struct LossMean {
  float count, inv;
  bool reciprocal;
  DETDL_HD LossMean(const LossForm& f, float n)
      : count(n), inv(1.0f / n), reciprocal(f.reciprocal_mean) {}
  DETDL_HD float operator()(float v) const { return reciprocal ? v * inv : v / count; }
};

// One softmax row in form f: the max in k order, m = the max (or 0 in the fast form inside
// its guard), e_k = exp(x_k - m) into e; returns s = the canonical sum of the e_k.
DETDL_HD float loss_row_exp(const LossForm& f, const float* x, std::int64_t K, float* e, float& m) {
  float mx = x[0];
  for (std::int64_t k = 1; k < K; ++k) mx = x[k] > mx ? x[k] : mx;
  const bool fast = !f.subtract_max && mx <= kFastSoftmaxGuard && mx >= -kFastSoftmaxGuard;
  m = fast ? 0.0f : mx;
  for (std::int64_t k = 0; k < K; ++k) e[k] = impl_expf(f.alt_exp, x[k] - m);
  return canonical_sum(e, K);
}

// One row of softmax cross-entropy in form f, from loss_row_exp's e, s and m: returns the
// row's loss and, with grad, overwrites e with d(loss mean)/d(logits). keras: Keras's
// clipped form (cross_entropy.h); else -log(p_y) (log_of_softmax, where p_y > 0) or
// log(s) - (x_y - m), and the gradient as PyTorch's nll_loss + log_softmax backward
// (log_softmax_grad, nll_grad = -1 / N) or mean(p_k - [k == y]). The CPU's emulated kernel
// and the CUDA kernel both call this.
DETDL_HD float cross_entropy_row(const LossForm& f, const float* x, std::int64_t K,
                                 std::int32_t label, float* e, float s, float m, bool grad,
                                 bool keras, const LossMean& mean, float nll_grad) {
  if (keras) {
    for (std::int64_t k = 0; k < K; ++k) e[k] = e[k] / s;
    const bool alt = f.alt_log;
    const KerasRow r = keras_row(e, K, label, [alt](float v) { return impl_logf(alt, v); });
    if (grad)
      for (std::int64_t k = 0; k < K; ++k) e[k] = keras_grad(r, e[k], k == label, mean);
    return r.loss;
  }
  const float p = e[label] / s;
  const float loss = f.log_of_softmax && p > 0.0f ? -impl_logf(f.alt_log, p)
                                                  : impl_logf(f.alt_log, s) - (x[label] - m);
  if (grad && f.log_softmax_grad) {
    const float ls = impl_logf(f.alt_log, s);
    for (std::int64_t k = 0; k < K; ++k)
      e[k] = (k == label ? nll_grad : 0.0f) - impl_expf(f.alt_exp, (x[k] - m) - ls) * nll_grad;
  } else if (grad) {
    for (std::int64_t k = 0; k < K; ++k) e[k] = mean(e[k] / s - (k == label ? 1.0f : 0.0f));
  }
  return loss;
}

}  // namespace detdl
