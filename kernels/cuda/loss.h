// CUDA softmax, losses and weight penalties with the CPU's formulas and orders
// (kernels/cpu/loss.h): det_expf / det_logf / det_log1pf from kernels/common/detmath.h,
// the same expressions evaluated with IEEE division.
//   softmax rows: one thread per row, exactly the CPU's row loop (max in k order, e_k,
//     canonical_sum of the row's e_k, p_k = e_k / s).
//   means and penalty sums (OpFamily::loss_reduce): `portable` = `repeatable` = the
//     canonical sum of values over samples / elements (reduce.h value_reduce: chunk
//     partials in parallel, ChunkTree in chunk order); the mean divides the root by the
//     float count on the host after it, as the CPU does. `fast`: chunk partials combined by
//     atomicAdd in arrival order.
// The functions returning a float synchronise `stream` (the value comes back to the host).
// loss / gradient outputs may be nullptr as on the CPU. Pointers are device pointers.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/cross_entropy.h"
#include "kernels/common/level.h"
#include "kernels/common/reduce_shape.h"
#include "kernels/common/loss_form.h"

namespace detdl::cuda {

void softmax_forward(std::int64_t N, std::int64_t K,
                     const float* logits,  // (N, K)
                     float* probs,         // (N, K)
                     cudaStream_t stream);

// Labels outside [0, K) throw std::invalid_argument naming the first such sample and its
// label (checked before anything is written), as the CPU does.
// form: as the CPU's (kernels/common/cross_entropy.h), one thread per row.
float softmax_cross_entropy(Level level, std::int64_t N, std::int64_t K,
                            const float* logits,         // (N, K)
                            const std::int32_t* labels,  // (N)
                            float* loss_per_sample,      // (N) or nullptr
                            float* dlogits,              // (N, K) or nullptr
                            CrossEntropyForm form, cudaStream_t stream);

float binary_cross_entropy(Level level, std::int64_t n,
                           const float* input,   // (n) logits or probabilities
                           const float* target,  // (n)
                           bool from_logits,
                           float* loss_per_element,  // (n) or nullptr
                           float* dinput,            // (n) or nullptr
                           cudaStream_t stream);

float mean_squared_error(Level level, std::int64_t n,
                         const float* pred,        // (n)
                         const float* target,      // (n)
                         float* loss_per_element,  // (n) or nullptr
                         float* dpred,             // (n) or nullptr
                         cudaStream_t stream);

// The sums of |w| and w^2 in order's order (a level, or the reduce family's drawn shape).
float l1_penalty(const SumOrder& order, std::int64_t n, const float* w /*(n)*/,
                 cudaStream_t stream);
float l2_penalty(const SumOrder& order, std::int64_t n, const float* w /*(n)*/,
                 cudaStream_t stream);

void l1_penalty_grad_add(std::int64_t n, const float* w /*(n)*/, float lambda,
                         float* g /*(n) accumulated*/, cudaStream_t stream);
void l2_penalty_grad_add(std::int64_t n, const float* w /*(n)*/, float lambda,
                         float* g /*(n) accumulated*/, cudaStream_t stream);

// The `emulated` level's forms (kernels/common/loss_form.h: the loss and math families'
// choices) and the mean's order (a level, or the reduce family's drawn shape): the CPU's
// LossImpl, its emulated rows, elements and sums bit for bit. A level and LossForm{} is the
// functions above.
void softmax_forward(std::int64_t N, std::int64_t K, const float* logits /*(N, K)*/,
                     float* probs /*(N, K)*/, const LossForm& f, cudaStream_t stream);
float softmax_cross_entropy(const SumOrder& order, std::int64_t N, std::int64_t K,
                            const float* logits /*(N, K)*/, const std::int32_t* labels /*(N)*/,
                            float* loss_per_sample /*(N) or nullptr*/,
                            float* dlogits /*(N, K) or nullptr*/, CrossEntropyForm form,
                            const LossForm& f, cudaStream_t stream);
float binary_cross_entropy(const SumOrder& order, std::int64_t n, const float* input /*(n)*/,
                           const float* target /*(n)*/, bool from_logits,
                           float* loss_per_element /*(n) or nullptr*/,
                           float* dinput /*(n) or nullptr*/, const LossForm& f,
                           cudaStream_t stream);
float mean_squared_error(const SumOrder& order, std::int64_t n, const float* pred /*(n)*/,
                         const float* target /*(n)*/, float* loss_per_element /*(n) or nullptr*/,
                         float* dpred /*(n) or nullptr*/, const LossForm& f, cudaStream_t stream);

}  // namespace detdl::cuda
