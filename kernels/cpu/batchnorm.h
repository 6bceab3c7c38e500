// Batch normalisation on the CPU. x is (N, C, HW): HW = H*W for images (NCHW), 1 for dense
// layers (N, C). Statistics are per channel c over count = N*HW values.
//
// Reduction order (the determinism contract, docs/determinism.md): every per-channel sum
// is a canonical sum of values (chunks of kChunkValues = 256, plain adds from +0.0f in
// index order, pairwise tree over chunks) over the index k = n*HW + hw, i.e. (batch, row,
// col) row-major. The sums are:
//   forward:  S1 = sum x;                 mean    = S1 / count
//             S2 = sum d*d, d = x - mean; var     = S2 / count   (two-pass, biased)
//             inv_std = 1.0f / sqrtf(var + eps)
//             y = (((x - mean) * inv_std) * gamma) + beta         (left to right, no fma)
//   backward: xhat = (x - mean) * inv_std
//             dbeta  = sum dy
//             dgamma = sum (dy * xhat)       (the product rounded, then added: a value sum)
//             k = (gamma * inv_std) / count                     (once per channel)
//             dx = k * (((count * dy) - dbeta) - (xhat * dgamma))
// count is used as the float static_cast<float>(N*HW) (exact below 2^24).
// `portable` / `repeatable`: channels are split across threads (a fixed partition); each
// channel's sums are the canonical order above, so bits never depend on the thread count.
// `fast` (OpFamily::norm_stats) with 2+ threads and N >= 2: the batch index n is cut into
// pieces handed to threads dynamically (parallel_dynamic); each worker adds its pieces'
// values into one per-channel partial (a sequential chain in the order it got its pieces),
// and the partials are added, from +0.0f, in worker index order. Which pieces land in
// which partial depends on timing, so 2+ threads give run-to-run variation. With 1
// thread, `fast` equals `portable`.
//
// Gradients of gamma and beta are written (=), not accumulated: the caller accumulates.
#pragma once
#include <cstdint>

#include "kernels/common/impl_choice.h"
#include "kernels/common/level.h"
#include "kernels/cpu/emulated_reduce.h"

namespace detdl::cpu {

// Training forward: batch statistics. batch_var may be nullptr.
void batchnorm_forward_train(Level level, std::int64_t N, std::int64_t C, std::int64_t HW,
                             const float* x,      // (N, C, HW)
                             const float* gamma,  // (C)
                             const float* beta,   // (C)
                             float eps,
                             float* y,             // (N, C, HW)
                             float* save_mean,     // (C) batch mean
                             float* save_inv_std,  // (C) 1 / sqrt(biased var + eps)
                             float* batch_var);    // (C) biased batch variance, or nullptr

// running = running * (1 - momentum) + stat * momentum, with (1 - momentum) computed once
// as a float. This is PyTorch's convention: momentum is the weight of the NEW statistic
// (PyTorch default 0.1). Keras's BatchNormalization(momentum=m) is the weight of the OLD
// value (Keras default 0.99), i.e. PyTorch momentum = 1 - m.
// unbiased (PyTorch): the variance stat is batch_var * f with f = float(count) /
// float(count - 1) computed once as a float (one correctly rounded division); count <= 1
// uses f = 1. unbiased = false (Keras) uses the biased batch variance.
void batchnorm_update_running(std::int64_t C, std::int64_t count, float momentum,
                              const float* batch_mean,  // (C)
                              const float* batch_var,   // (C) biased
                              float* running_mean,      // (C) updated in place
                              float* running_var,       // (C) updated in place
                              bool unbiased);

// Keras 2.2.2's moving statistics (kernels/common/batchnorm_keras.h): the variance scaled by
// n / (n - (1 + eps)), zero-debiased averages kept in biased_mean / biased_var (start at 0)
// with the step count in steps[0] (a float, exact to 2^24 steps), incremented here.
// momentum: the new value's weight (PyTorch's convention). count: N*HW values per channel.
void batchnorm_update_running_keras(std::int64_t C, std::int64_t count, float momentum, float eps,
                                    const float* batch_mean,  // (C)
                                    const float* batch_var,   // (C) biased
                                    float* biased_mean,       // (C) updated in place
                                    float* biased_var,        // (C) updated in place
                                    float* steps,             // (1) updated in place
                                    float* running_mean,      // (C) updated in place
                                    float* running_var);      // (C) updated in place

// Inference forward with running statistics: inv_std = 1.0f / sqrtf(running_var + eps)
// once per channel, then y = (((x - running_mean) * inv_std) * gamma) + beta.
// Element-wise: the same bits at every level and thread count.
void batchnorm_forward_eval(std::int64_t N, std::int64_t C, std::int64_t HW,
                            const float* x,             // (N, C, HW)
                            const float* gamma,         // (C)
                            const float* beta,          // (C)
                            const float* running_mean,  // (C)
                            const float* running_var,   // (C)
                            float eps,
                            float* y);  // (N, C, HW)

// Inference backward (running statistics, constants): dx = (dy * gamma) * inv_std,
// dgamma = canonical sum over (n, hw) of dy * ((x - running_mean) * inv_std), dbeta =
// canonical sum of dy, with inv_std as the forward's. The training monitor's probe is its
// user (engine/monitor.h: AutoTrainer took gradients in inference mode). Canonical at every
// level: the same bits on any thread count.
void batchnorm_backward_eval(std::int64_t N, std::int64_t C, std::int64_t HW,
                             const float* x,             // (N, C, HW)
                             const float* dy,            // (N, C, HW)
                             const float* gamma,         // (C)
                             const float* running_mean,  // (C)
                             const float* running_var,   // (C)
                             float eps,
                             float* dx,      // (N, C, HW)
                             float* dgamma,  // (C)
                             float* dbeta);  // (C)

// Training backward (batch statistics). dgamma / dbeta are written (=); either may be
// nullptr when not wanted (they are still computed for dx).
void batchnorm_backward(Level level, std::int64_t N, std::int64_t C, std::int64_t HW,
                        const float* x,             // (N, C, HW)
                        const float* dy,            // (N, C, HW)
                        const float* gamma,         // (C)
                        const float* save_mean,     // (C) from the forward
                        const float* save_inv_std,  // (C) from the forward
                        float* dx,                  // (N, C, HW)
                        float* dgamma,              // (C) or nullptr
                        float* dbeta);              // (C) or nullptr

// ---- The `emulated` level (kernels/common/impl_choice.h) ----
// One batch-norm call's implementation; BatchnormImpl{} is the canonical kernel, bit for bit.
//   ImplFamily::reduce: every per-channel sum of the call (forward S1, S2; backward dbeta,
//     dgamma, the k-th sum with arrival decision k) in the drawn tree shape
//     (emulated_reduce.h), one channel per task.
//   ImplFamily::contraction, one coin per formula site (whether a compiler, or nvcc's
//     default --fmad=true, fuses a*b+c into an FMA there):
//     coin 0, forward affine:  y = fmaf(xhat, gamma, beta) instead of (xhat * gamma) + beta
//     coin 1, backward:        fmaf(count, dy, -dbeta) instead of (count * dy) - dbeta
//     coin 2, backward:        fmaf(-xhat, dgamma, t) instead of t - (xhat * dgamma)
// The emulated kernels ignore Level: they are thread-count invariant at any level.
struct BatchnormImpl {
  ReduceShape reduce = ReduceShape::canonical;
  ImplDraw reduce_draw{};  // block_atomic's per-step arrival orders
  bool fma_affine = false;
  bool fma_count_dy = false;
  bool fma_xhat_dgamma = false;
};

// The draw -> choice mapping; a null draw leaves that family canonical.
BatchnormImpl batchnorm_impl(const ImplDraw* reduce, const ImplDraw* contraction);

void batchnorm_forward_train(const BatchnormImpl& impl, std::int64_t N, std::int64_t C,
                             std::int64_t HW,
                             const float* x,      // (N, C, HW)
                             const float* gamma,  // (C)
                             const float* beta,   // (C)
                             float eps,
                             float* y,             // (N, C, HW)
                             float* save_mean,     // (C)
                             float* save_inv_std,  // (C)
                             float* batch_var);    // (C) or nullptr

// Only the forward affine's contraction applies (no sums).
void batchnorm_forward_eval(const BatchnormImpl& impl, std::int64_t N, std::int64_t C,
                            std::int64_t HW,
                            const float* x,             // (N, C, HW)
                            const float* gamma,         // (C)
                            const float* beta,          // (C)
                            const float* running_mean,  // (C)
                            const float* running_var,   // (C)
                            float eps,
                            float* y);  // (N, C, HW)

void batchnorm_backward(const BatchnormImpl& impl, std::int64_t N, std::int64_t C, std::int64_t HW,
                        const float* x,             // (N, C, HW)
                        const float* dy,            // (N, C, HW)
                        const float* gamma,         // (C)
                        const float* save_mean,     // (C)
                        const float* save_inv_std,  // (C)
                        float* dx,                  // (N, C, HW)
                        float* dgamma,              // (C) or nullptr
                        float* dbeta);              // (C) or nullptr

}  // namespace detdl::cpu
