// The BUTTER metrics' per-sample formulas (engine/metrics.cpp) on eight samples at once, one
// per lane, written once for the two callers whose lanes differ in meaning: metric_values8
// (eight samples of one run) and lanes::softmax_ce (one sample of eight runs trained
// together, kernels/cpu/lanes_loss.h). Each lane is the scalar formula's IEEE operations in
// the scalar order (every sum over the k outputs a chain from +0.0f: the canonical order for
// k <= 256), so each value is engine/metrics.cpp's bit for bit.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <limits>

#include "kernels/cpu/metrics_avx2.h"

namespace detdl::cpu::metrics_core {

// max_keep_nan(x, lo): (isnan(x) || x > lo) ? x : lo.
inline __m256 max_keep_nan(__m256 x, __m256 lo) {
  return _mm256_blendv_ps(lo, x, _mm256_cmp_ps(x, lo, _CMP_NLE_UQ));
}
// clip_keep_nan(x, lo, hi): (x > hi) ? hi : max_keep_nan(x, lo).
inline __m256 clip_keep_nan(__m256 x, __m256 lo, __m256 hi) {
  return _mm256_blendv_ps(max_keep_nan(x, lo), hi, _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
}

// One output's five columns for the eight lanes: prediction, target, and the logarithms
// det_logf(clip(y, eps, 1) / clip(p, eps, 1)), det_logf(max(p, eps) + 1),
// det_logf(max(y, eps) + 1).
struct Columns {
  __m256 p, y, kl_log, p_log, y_log;
};

// out[m] for the kMetricValues values in engine/metrics.h's Metric order (accuracy, cosine
// similarity, hinge, KL, MAE, MSE, MSLE, the sum of squared errors, squared hinge); NaN in
// every value of a lane whose prediction or target holds a NaN. col(j) gives output j's
// Columns (j < k); binary_targets: hinge's -1/+1 form of 0/1 targets.
template <class Col>
inline void values8(std::int64_t k, bool binary_targets, Col col, __m256 out[kMetricValues]) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f),
               eps = _mm256_set1_ps(kMetricEps), half = _mm256_set1_ps(0.5f),
               kf = _mm256_set1_ps(static_cast<float>(k));
  const __m256 nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  // NaN anywhere in the row; sums of squares; the first maxima (argmax_first).
  const Columns c0 = col(0);
  __m256 any_nan = zero, ssy = zero, ssp = zero;
  __m256 best_p = c0.p, best_y = c0.y;
  __m256 arg_p = zero, arg_y = zero;
  for (std::int64_t j = 0; j < k; ++j) {
    const Columns c = col(j);
    const __m256 pj = c.p, yj = c.y;
    any_nan = _mm256_or_ps(any_nan, _mm256_cmp_ps(pj, yj, _CMP_UNORD_Q));
    ssy = _mm256_add_ps(ssy, _mm256_mul_ps(yj, yj));
    ssp = _mm256_add_ps(ssp, _mm256_mul_ps(pj, pj));
    const __m256 jf = _mm256_set1_ps(static_cast<float>(j));
    const __m256 gp = _mm256_cmp_ps(pj, best_p, _CMP_GT_OQ),
                 gy = _mm256_cmp_ps(yj, best_y, _CMP_GT_OQ);
    best_p = _mm256_blendv_ps(best_p, pj, gp), arg_p = _mm256_blendv_ps(arg_p, jf, gp);
    best_y = _mm256_blendv_ps(best_y, yj, gy), arg_y = _mm256_blendv_ps(arg_y, jf, gy);
  }
  __m256 acc;
  if (k == 1) {
    acc = _mm256_and_ps(_mm256_xor_ps(_mm256_xor_ps(_mm256_cmp_ps(c0.p, half, _CMP_GT_OQ),
                                                    _mm256_cmp_ps(c0.y, half, _CMP_GT_OQ)),
                                      _mm256_castsi256_ps(_mm256_set1_epi32(-1))),
                        one);
  } else {
    acc = _mm256_and_ps(_mm256_cmp_ps(arg_p, arg_y, _CMP_EQ_OQ), one);
  }
  const __m256 norm_y = _mm256_sqrt_ps(max_keep_nan(ssy, _mm256_set1_ps(kMetricNormFloor)));
  const __m256 norm_p = _mm256_sqrt_ps(max_keep_nan(ssp, _mm256_set1_ps(kMetricNormFloor)));
  __m256 cos = zero, hinge = zero, sq_hinge = zero, kl = zero, mae = zero, se = zero, msle = zero;
  for (std::int64_t j = 0; j < k; ++j) {
    const Columns c = col(j);
    const __m256 pj = c.p, yj = c.y;
    cos = _mm256_add_ps(cos, _mm256_mul_ps(_mm256_div_ps(yj, norm_y), _mm256_div_ps(pj, norm_p)));
    const __m256 ys =
        binary_targets ? _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), yj), one) : yj;
    const __m256 h = max_keep_nan(_mm256_sub_ps(one, _mm256_mul_ps(ys, pj)), zero);
    hinge = _mm256_add_ps(hinge, h);
    sq_hinge = _mm256_add_ps(sq_hinge, _mm256_mul_ps(h, h));
    kl = _mm256_add_ps(kl, _mm256_mul_ps(clip_keep_nan(yj, eps, one), c.kl_log));
    const __m256 d = _mm256_sub_ps(pj, yj);
    mae = _mm256_add_ps(mae, _mm256_and_ps(d, abs_mask));
    se = _mm256_add_ps(se, _mm256_mul_ps(d, d));
    const __m256 dl = _mm256_sub_ps(c.p_log, c.y_log);
    msle = _mm256_add_ps(msle, _mm256_mul_ps(dl, dl));
  }
  const __m256 values[kMetricValues] = {acc,
                                        cos,
                                        _mm256_div_ps(hinge, kf),
                                        kl,
                                        _mm256_div_ps(mae, kf),
                                        _mm256_div_ps(se, kf),
                                        _mm256_div_ps(msle, kf),
                                        se,
                                        _mm256_div_ps(sq_hinge, kf)};
  for (int m = 0; m < kMetricValues; ++m) out[m] = _mm256_blendv_ps(values[m], nan, any_nan);
}

}  // namespace detdl::cpu::metrics_core
