// The BUTTER metrics' per-sample values (engine/metrics.h), eight samples at a time: each
// lane is one sample, and each per-sample sum over its k outputs is the same chain as the
// scalar code's (p = p + term(j) for j = 0..k-1 from +0.0f, the canonical order for k <=
// 256), so every value is the scalar one bit for bit (tests/engine/test_metrics.cpp).
#pragma once
#include <cstdint>

namespace detdl::cpu {

inline constexpr int kMetricValues = 9;

// The metrics' constants and NaN-keeping clamps, shared with engine/metrics.cpp's scalar
// path (so the lanes and the scalar code cannot drift apart).
inline constexpr float kMetricEps = 1e-7f;         // Keras backend epsilon (kld clip, msle floor)
inline constexpr float kMetricNormFloor = 1e-12f;  // tf.math.l2_normalize's epsilon (squared norm)
// max / clip that keep a NaN argument (as tf.maximum and tf.clip_by_value do), where
// std::max's result would depend on the argument order.
inline float max_keep_nan(float x, float lo) { return (x != x || x > lo) ? x : lo; }
inline float clip_keep_nan(float x, float lo, float hi) {
  return (x > hi) ? hi : max_keep_nan(x, lo);
}

// The logarithms' arguments for n elements of pred and target: kl_arg = clip(y, eps, 1) /
// clip(p, eps, 1), p_arg = max(p, eps) + 1, y_arg = max(y, eps) + 1 (NaN kept, as
// engine/metrics.cpp's clip_keep_nan and max_keep_nan), eight at a time.
void metric_log_args(const float* pred, const float* target, std::int64_t n, float* kl_arg,
                     float* p_arg, float* y_arg);

// Samples [0, n) with n a multiple of 8 and 1 <= k <= 256. pred, target (n, k) row-major;
// kl_log, p_log, y_log (n, k): det_logf of clip(y, eps, 1) / clip(p, eps, 1), of
// max(p, eps) + 1 and of max(y, eps) + 1 (eps = 1e-7). binary_targets: hinge's -1/+1 form.
// out (kMetricValues, n): per sample, in engine/metrics.h's Metric order: accuracy, cosine
// similarity, hinge, KL divergence, MAE, MSE, MSLE, the sum of squared errors (RMSE's
// pooled value), squared hinge. A sample with a NaN in its pred or target row gets NaN in
// all nine.
void metric_values8(const float* pred, const float* target, const float* kl_log, const float* p_log,
                    const float* y_log, std::int64_t n, std::int64_t k, bool binary_targets,
                    float* out);

}  // namespace detdl::cpu
