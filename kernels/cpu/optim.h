// Optimizer updates over arrays on the CPU: loops over the per-element formulas of
// kernels/common/optim_formulas.h (which give the exact operation orders). No
// reductions, so the bits never depend on the thread count or the level; arrays are split
// into fixed blocks of 32768 elements across threads.
#pragma once
#include <cstdint>
#include <utility>

#include "kernels/common/optim_formulas.h"
#include "kernels/common/optim_params.h"

namespace detdl::cpu {

// The parameter structs (SgdParams, AdamParams, RmspropParams) are in
// kernels/common/optim_params.h, shared with the CUDA kernels.

void sgd_update(std::int64_t n,
                float* p,        // (n) parameters, updated
                const float* g,  // (n) gradients
                float* buf,      // (n) momentum buffer / Keras velocity (unused when momentum == 0)
                const SgdParams& s);

void adam_update(std::int64_t n,
                 float* p,        // (n) parameters, updated
                 const float* g,  // (n) gradients
                 float* m,        // (n) first moment (exp_avg)
                 float* v,        // (n) second moment (exp_avg_sq)
                 const AdamParams& a);

void rmsprop_update(std::int64_t n,
                    float* p,        // (n) parameters, updated
                    const float* g,  // (n) gradients
                    float* v,        // (n) square average
                    float* buf,      // (n) momentum buffer (unused when momentum == 0)
                    const RmspropParams& r);

// The `emulated` level's variants (kernels/common/impl_choice.h): `fuse` fuses the
// formula's contraction sites (kernels/common/optim_formulas.h, OptimSite); sgd and rmsprop
// take their framework's form from the params' keras flag, Adam from `form` (a.keras is
// ignored). fuse = 0 with the configured form is the update above, bit for bit.
void sgd_update(std::int64_t n,
                float* p,        // (n) parameters, updated
                const float* g,  // (n) gradients
                float* buf,      // (n) momentum buffer / Keras velocity
                const SgdParams& s, std::uint32_t fuse);
void adam_update(std::int64_t n,
                 float* p,        // (n) parameters, updated
                 const float* g,  // (n) gradients
                 float* m,        // (n) first moment
                 float* v,        // (n) second moment
                 const AdamParams& a, AdamForm form, std::uint32_t fuse);
void rmsprop_update(std::int64_t n,
                    float* p,        // (n) parameters, updated
                    const float* g,  // (n) gradients
                    float* v,        // (n) square average
                    float* buf,      // (n) momentum buffer
                    const RmspropParams& r, std::uint32_t fuse);

// Adam's bias corrections for step t >= 1: {1 - b1^t, 1 - b2^t}. b1 and b2 are widened
// exactly to double; the powers are computed by binary exponentiation in double (for each
// bit of t from the lowest: if the bit is set, r = r * b; then b = b * b), a fixed
// sequence of IEEE multiplications, so the same on every machine (unlike libm's pow);
// then 1 - power in double, rounded once to float.
std::pair<float, float> adam_bias_corrections(float beta1, float beta2, std::int64_t t);

}  // namespace detdl::cpu
