// detmath.h's det_logf and det_expf eight lanes at a time (AVX2 + FMA): each lane is the scalar
// function's result bit for bit (the same operations in the same order, fmaf where the
// scalar code calls fmaf, IEEE division), so callers may use either. For loops of many
// transcendentals (the BUTTER metrics take three logs per output per sample).
#pragma once
#include <cstdint>

namespace detdl::cpu {

// y[i] = det_logf(x[i]) for i in [0, n); x and y may be the same array.
void det_logf_n(const float* x,  // (n)
                float* y,        // (n)
                std::int64_t n);

// y[i] = det_expf(x[i]) for i in [0, n); x and y may be the same array.
void det_expf_n(const float* x,  // (n)
                float* y,        // (n)
                std::int64_t n);

}  // namespace detdl::cpu
