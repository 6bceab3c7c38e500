// The `emulated` level's contraction choices in batch normalisation (kernels/cpu/batchnorm.h,
// "The emulated level": one coin per formula site), shared by the CPU's BatchnormImpl and
// the CUDA kernels (kernels/cuda/batchnorm.h). BatchnormFma{} is the canonical formula.
#pragma once

namespace detdl {

struct BatchnormFma {
  bool affine = false;       // y = fmaf(xhat, gamma, beta) instead of (xhat * gamma) + beta
  bool count_dy = false;     // fmaf(count, dy, -dbeta) instead of (count * dy) - dbeta
  bool xhat_dgamma = false;  // fmaf(-xhat, dgamma, t) instead of t - (xhat * dgamma)
};

}  // namespace detdl
