// Element-wise activations on the CPU: loops over the shared formulas of
// kernels/common/activation.h. No reductions: bits never depend on the thread count.
#pragma once
#include <cstdint>

#include "kernels/common/activation.h"

namespace detdl::cpu {

void activation_forward(Activation a, float alpha,
                        const float* x,  // (n)
                        float* y,        // (n)
                        std::int64_t n);

void activation_backward(Activation a, float alpha,
                         const float* x,   // (n) forward input
                         const float* y,   // (n) forward output
                         const float* dy,  // (n)
                         float* dx,        // (n)
                         std::int64_t n);

// The `emulated` level's variants (ActImpl from kernels/common/activation.h: the second
// math implementation, the contraction of tanh's gradient); impl = {} is the above.
void activation_forward(Activation a, float alpha,
                        const float* x,  // (n)
                        float* y,        // (n)
                        std::int64_t n, ActImpl impl);

void activation_backward(Activation a, float alpha,
                         const float* x,   // (n) forward input
                         const float* y,   // (n) forward output
                         const float* dy,  // (n)
                         float* dx,        // (n)
                         std::int64_t n, ActImpl impl);

}  // namespace detdl::cpu
