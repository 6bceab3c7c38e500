// Keras 2.2.2's moving statistics for batch normalisation (TensorFlow backend), one channel,
// written once for the CPU and CUDA kernels. keras/layers/normalization.py does, after the
// batch moments (biased variance):
//     variance *= sample_size / (sample_size - (1.0 + epsilon))
//     K.moving_average_update(moving_mean, mean, momentum)
//     K.moving_average_update(moving_variance, variance, momentum)
// and the backend's moving_average_update is TensorFlow's assign_moving_average(...,
// zero_debias=True): with d = 1 - momentum (the new value's weight; detdl's BatchNorm
// momentum, PyTorch's convention) it keeps a biased accumulator that starts at 0 and a step
// count t, and sets the moving value to the debiased average:
//     biased -= (biased - value) * d;  t += 1;  f = 1 - (1 - d)^t;
//     moving -= moving - biased / f
// so the initial moving values (0 and 1) are forgotten at the first step, unlike PyTorch's
// running = (1 - d) running + d value. Arithmetic in float32 as TensorFlow's ops, except
// (1 - d)^t, which is computed by squaring in double and rounded once (TensorFlow's pow is
// its library's; the value is the same to within an ulp).
#pragma once
#include <cstdint>

#include "kernels/common/hd.h"

namespace detdl {

// sample_size / (sample_size - (1 + eps)) in float32, as Keras's graph computes it.
DETDL_HD float keras_variance_factor(std::int64_t count, float eps) {
  const float n = static_cast<float>(count);
  return n / (n - (1.0f + eps));
}

// 1 - keep^t in float (keep^t by binary exponentiation in double).
DETDL_HD float keras_debias_factor(float keep, std::int64_t t) {
  double base = keep, power = 1.0;
  for (std::int64_t e = t; e > 0; e >>= 1) {
    if (e & 1) power *= base;
    base *= base;
  }
  return 1.0f - static_cast<float>(power);
}

// One channel's update. d: the new value's weight; factor: keras_variance_factor;
// debias: keras_debias_factor(1 - d, t) with t the updated step count.
DETDL_HD void keras_moving_update(float d, float factor, float debias, float batch_mean,
                                  float batch_var, float& biased_mean, float& biased_var,
                                  float& moving_mean, float& moving_var) {
  biased_mean = biased_mean - (biased_mean - batch_mean) * d;
  biased_var = biased_var - (biased_var - batch_var * factor) * d;
  moving_mean = moving_mean - (moving_mean - biased_mean / debias);
  moving_var = moving_var - (moving_var - biased_var / debias);
}

}  // namespace detdl
