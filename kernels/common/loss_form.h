// The `emulated` level's per-element choices of a loss (the loss and math families; see
// kernels/cpu/loss.h "The emulated level" for what each stands for): the part of
// cpu::LossImpl that the CUDA kernels take too (kernels/cuda/loss.h). LossForm{} is the
// canonical loss. The reduction's tree shape (the reduce family) is not here: the CUDA
// backend does not emulate it.
#pragma once

#include "kernels/common/hd.h"

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

}  // namespace detdl
