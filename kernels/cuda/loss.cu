// CUDA softmax and losses; the orders are in loss.h (and kernels/cpu/loss.h).
#include "kernels/cuda/loss.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/common/detmath.h"
#include "kernels/common/detmath_alt.h"
#include "kernels/common/loss_form.h"
#include "kernels/common/reduction.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.h"

namespace detdl::cuda {
namespace {

using i64 = std::int64_t;

__global__ void softmax_kernel(i64 N, i64 K, const float* logits, float* probs, LossForm f) {
  DETDL_GRID_STRIDE(i, N) {
    float m;
    float* p = probs + i * K;
    const float s = loss_row_exp(f, logits + i * K, K, p, m);
    for (i64 k = 0; k < K; ++k) p[k] = p[k] / s;
  }
}

// First sample (lowest index) whose label is outside [0, K), or `none`.
__global__ void check_labels_kernel(i64 N, i64 K, const std::int32_t* labels,
                                    unsigned long long* first_bad) {
  DETDL_GRID_STRIDE(i, N) {
    if (labels[i] < 0 || labels[i] >= K) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

// One thread per row: loss_form.h's row functions, as the CPU's (kernels/cpu/loss.cpp). The
// exps live in dlogits (or in scratch) and become the gradient.
__global__ void cross_entropy_kernel(i64 N, i64 K, const float* logits, const std::int32_t* labels,
                                     float* loss, float* e_rows, bool write_grad, bool keras,
                                     LossForm f) {
  const LossMean mean(f, static_cast<float>(N));
  const float nll_grad = -1.0f / static_cast<float>(N);  // PyTorch's -weight / total_weight
  DETDL_GRID_STRIDE(i, N) {
    const float* x = logits + i * K;
    float* e = e_rows + i * K;
    float m;
    const float s = loss_row_exp(f, x, K, e, m);
    loss[i] = cross_entropy_row(f, x, K, labels[i], e, s, m, write_grad, keras, mean, nll_grad);
  }
}

__global__ void bce_kernel(i64 n, const float* input, const float* target, bool from_logits,
                           float* loss, float* dinput, LossForm f) {
  constexpr float kEps = 1e-7f;
  constexpr float kOneMinusEps = 1.0f - kEps;
  const LossMean mean(f, static_cast<float>(n));
  DETDL_GRID_STRIDE(i, n) {
    const float x = input[i], t = target[i];
    if (from_logits) {
      const float ex = impl_expf(f.alt_exp, -det_fabsf(x));
      loss[i] = ((x > 0.0f ? x : 0.0f) - x * t) + impl_log1pf(f.alt_log1p, ex);
      if (dinput) {
        const float sig = x >= 0.0f ? 1.0f / (1.0f + ex) : ex / (1.0f + ex);
        dinput[i] = mean(sig - t);
      }
    } else {
      const bool below = x<kEps, above = x> kOneMinusEps;
      const float q = below ? kEps : (above ? kOneMinusEps : x);
      loss[i] = -(t * impl_logf(f.alt_log, q) + (1.0f - t) * impl_logf(f.alt_log, 1.0f - q));
      if (dinput) dinput[i] = below || above ? 0.0f : mean((q - t) / (q * (1.0f - q)));
    }
  }
}

__global__ void mse_kernel(i64 n, const float* pred, const float* target, float* loss, float* dpred,
                           LossForm f) {
  const LossMean mean(f, static_cast<float>(n));
  DETDL_GRID_STRIDE(i, n) {
    const float d = pred[i] - target[i];
    if (loss) loss[i] = d * d;
    if (dpred) dpred[i] = mean(2.0f * d);
  }
}

__global__ void l1_grad_kernel(i64 n, const float* w, float lambda, float* g) {
  DETDL_GRID_STRIDE(i, n) {
    const float v = w[i];
    const float sign = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : (v == 0.0f ? 0.0f : v));
    g[i] = g[i] + lambda * sign;
  }
}

__global__ void l2_grad_kernel(i64 n, const float* w, float twice, float* g) {
  DETDL_GRID_STRIDE(i, n) g[i] = g[i] + twice * w[i];
}

struct ValueTerm {
  const float* v;
  __device__ float operator()(i64 k) const { return v[k]; }
};
struct SquaredDifferenceTerm {
  const float* p;
  const float* t;
  __device__ float operator()(i64 k) const {
    const float d = p[k] - t[k];
    return d * d;
  }
};
struct AbsTerm {
  const float* w;
  __device__ float operator()(i64 k) const { return det_fabsf(w[k]); }
};
struct SquareTerm {
  const float* w;
  __device__ float operator()(i64 k) const { return w[k] * w[k]; }
};

}  // namespace

void softmax_forward(i64 N, i64 K, const float* logits, float* probs, cudaStream_t stream) {
  softmax_forward(N, K, logits, probs, LossForm{}, stream);
}

void softmax_forward(i64 N, i64 K, const float* logits, float* probs, const LossForm& f,
                     cudaStream_t stream) {
  if (K <= 0 || N <= 0) return;
  DETDL_LAUNCH(grid_for(N), kBlock, 0, stream, softmax_kernel)(N, K, logits, probs, f);
  DETDL_CUDA_CHECK_LAUNCH("softmax_kernel");
}

float softmax_cross_entropy(Level level, i64 N, i64 K, const float* logits,
                            const std::int32_t* labels, float* loss_per_sample, float* dlogits,
                            CrossEntropyForm form, cudaStream_t stream) {
  return softmax_cross_entropy(level, N, K, logits, labels, loss_per_sample, dlogits, form,
                               LossForm{}, stream);
}

float softmax_cross_entropy(const SumOrder& order, i64 N, i64 K, const float* logits,
                            const std::int32_t* labels, float* loss_per_sample, float* dlogits,
                            CrossEntropyForm form, const LossForm& f, cudaStream_t stream) {
  if (N <= 0) return 0.0f;
  {
    constexpr unsigned long long kNone = ~0ull;
    DeviceBuffer<unsigned long long> first_bad(1, stream);
    DETDL_CUDA_CHECK(
        cudaMemcpyAsync(first_bad.get(), &kNone, sizeof kNone, cudaMemcpyHostToDevice, stream));
    DETDL_LAUNCH(grid_for(N), kBlock, 0, stream, check_labels_kernel)
    (N, K, labels, first_bad.get());
    DETDL_CUDA_CHECK_LAUNCH("check_labels_kernel");
    unsigned long long bad = kNone;
    DETDL_CUDA_CHECK(
        cudaMemcpyAsync(&bad, first_bad.get(), sizeof bad, cudaMemcpyDeviceToHost, stream));
    DETDL_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (bad != kNone) {
      std::int32_t label = 0;
      DETDL_CUDA_CHECK(cudaMemcpy(&label, labels + bad, sizeof label, cudaMemcpyDeviceToHost));
      throw std::invalid_argument("softmax_cross_entropy: sample " + std::to_string(bad) +
                                  " has label " + std::to_string(label) + ", outside [0, " +
                                  std::to_string(K) + ")");
    }
  }
  DeviceBuffer<float> own_loss(loss_per_sample ? 0 : static_cast<std::size_t>(N), stream);
  DeviceBuffer<float> own_e(dlogits ? 0 : static_cast<std::size_t>(N * K), stream);
  float* loss = loss_per_sample ? loss_per_sample : own_loss.get();
  DETDL_LAUNCH(grid_for(N), kBlock, 0, stream, cross_entropy_kernel)
  (N, K, logits, labels, loss, dlogits ? dlogits : own_e.get(), dlogits != nullptr,
   form == CrossEntropyForm::keras_clipped, f);
  DETDL_CUDA_CHECK_LAUNCH("cross_entropy_kernel");
  const LossMean mean(f, static_cast<float>(N));
  return mean(detail::scalar_reduce(order, N, ValueTerm{loss}, stream));
}

float binary_cross_entropy(Level level, i64 n, const float* input, const float* target,
                           bool from_logits, float* loss_per_element, float* dinput,
                           cudaStream_t stream) {
  return binary_cross_entropy(level, n, input, target, from_logits, loss_per_element, dinput,
                              LossForm{}, stream);
}

float binary_cross_entropy(const SumOrder& order, i64 n, const float* input, const float* target,
                           bool from_logits, float* loss_per_element, float* dinput,
                           const LossForm& f, cudaStream_t stream) {
  if (n <= 0) return 0.0f;
  DeviceBuffer<float> own(loss_per_element ? 0 : static_cast<std::size_t>(n), stream);
  float* loss = loss_per_element ? loss_per_element : own.get();
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, bce_kernel)
  (n, input, target, from_logits, loss, dinput, f);
  DETDL_CUDA_CHECK_LAUNCH("bce_kernel");
  const LossMean mean(f, static_cast<float>(n));
  return mean(detail::scalar_reduce(order, n, ValueTerm{loss}, stream));
}

float mean_squared_error(Level level, i64 n, const float* pred, const float* target,
                         float* loss_per_element, float* dpred, cudaStream_t stream) {
  return mean_squared_error(level, n, pred, target, loss_per_element, dpred, LossForm{}, stream);
}

float mean_squared_error(const SumOrder& order, i64 n, const float* pred, const float* target,
                         float* loss_per_element, float* dpred, const LossForm& f,
                         cudaStream_t stream) {
  if (n <= 0) return 0.0f;
  if (loss_per_element || dpred) {
    DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, mse_kernel)
    (n, pred, target, loss_per_element, dpred, f);
    DETDL_CUDA_CHECK_LAUNCH("mse_kernel");
  }
  const LossMean mean(f, static_cast<float>(n));
  return mean(detail::scalar_reduce(order, n, SquaredDifferenceTerm{pred, target}, stream));
}

float l1_penalty(const SumOrder& order, i64 n, const float* w, cudaStream_t stream) {
  return detail::scalar_reduce(order, n, AbsTerm{w}, stream);
}

float l2_penalty(const SumOrder& order, i64 n, const float* w, cudaStream_t stream) {
  return detail::scalar_reduce(order, n, SquareTerm{w}, stream);
}

void l1_penalty_grad_add(i64 n, const float* w, float lambda, float* g, cudaStream_t stream) {
  if (n <= 0) return;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, l1_grad_kernel)(n, w, lambda, g);
  DETDL_CUDA_CHECK_LAUNCH("l1_grad_kernel");
}

void l2_penalty_grad_add(i64 n, const float* w, float lambda, float* g, cudaStream_t stream) {
  if (n <= 0) return;
  const float twice = 2.0f * lambda;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, l2_grad_kernel)(n, w, twice, g);
  DETDL_CUDA_CHECK_LAUNCH("l2_grad_kernel");
}

}  // namespace detdl::cuda
