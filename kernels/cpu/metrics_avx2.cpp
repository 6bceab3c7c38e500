// metric_values8: engine/metrics.cpp's per-sample formulas with the sample in the lane.
#include "kernels/cpu/metrics_avx2.h"

#include <immintrin.h>

#include <limits>
#include <vector>

#include "kernels/cpu/avx2.h"

namespace detdl::cpu {
namespace {

// max_keep_nan(x, lo): (isnan(x) || x > lo) ? x : lo.
__m256 max_keep_nan(__m256 x, __m256 lo) {
  return _mm256_blendv_ps(lo, x, _mm256_cmp_ps(x, lo, _CMP_NLE_UQ));
}
// clip_keep_nan(x, lo, hi): (x > hi) ? hi : max_keep_nan(x, lo).
__m256 clip_keep_nan(__m256 x, __m256 lo, __m256 hi) {
  return _mm256_blendv_ps(max_keep_nan(x, lo), hi, _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
}

// The columns of 8 rows of k floats at base (rows k apart): cols[j * 8 + s] = base[s * k + j],
// by 8 x 8 transposes of the rows' blocks of 8 columns (the last block's loads masked, so
// nothing past a row is read). Element j of the 8 samples is then one load; a gather per
// element and array (seven per element) took most of metric_values8's time.
void block_columns(const float* base, std::int64_t k, float* cols) {
  for (std::int64_t jb = 0; jb < k; jb += 8) {
    const std::int64_t w = k - jb < 8 ? k - jb : 8;
    const __m256i m = avx2::first_lanes(w);
    __m256 r[8];
    for (int s = 0; s < 8; ++s) r[s] = _mm256_maskload_ps(base + s * k + jb, m);
    avx2::transpose8(r);
    for (std::int64_t c = 0; c < w; ++c) _mm256_storeu_ps(cols + (jb + c) * 8, r[c]);
  }
}

}  // namespace

void metric_log_args(const float* pred, const float* target, std::int64_t n, float* kl_arg,
                     float* p_arg, float* y_arg) {
  const __m256 eps = _mm256_set1_ps(kMetricEps), one = _mm256_set1_ps(1.0f);
  std::int64_t e = 0;
  for (; e + 8 <= n; e += 8) {
    const __m256 p = _mm256_loadu_ps(pred + e), y = _mm256_loadu_ps(target + e);
    _mm256_storeu_ps(kl_arg + e,
                     _mm256_div_ps(clip_keep_nan(y, eps, one), clip_keep_nan(p, eps, one)));
    _mm256_storeu_ps(p_arg + e, _mm256_add_ps(max_keep_nan(p, eps), one));
    _mm256_storeu_ps(y_arg + e, _mm256_add_ps(max_keep_nan(y, eps), one));
  }
  for (; e < n; ++e) {
    kl_arg[e] =
        clip_keep_nan(target[e], kMetricEps, 1.0f) / clip_keep_nan(pred[e], kMetricEps, 1.0f);
    p_arg[e] = max_keep_nan(pred[e], kMetricEps) + 1.0f;
    y_arg[e] = max_keep_nan(target[e], kMetricEps) + 1.0f;
  }
}

void metric_values8(const float* pred, const float* target, const float* kl_log, const float* p_log,
                    const float* y_log, std::int64_t n, std::int64_t k, bool binary_targets,
                    float* out) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f),
               eps = _mm256_set1_ps(kMetricEps), half = _mm256_set1_ps(0.5f),
               kf = _mm256_set1_ps(static_cast<float>(k));
  const __m256 nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  // The block's columns of pred, target and the three logarithms, (k, 8) each.
  thread_local std::vector<float> buf;
  buf.resize(static_cast<std::size_t>(5 * 8 * k));
  float *p = buf.data(), *y = p + 8 * k, *kll = y + 8 * k, *lp = kll + 8 * k, *ly = lp + 8 * k;
  const auto column = [](const float* cols, std::int64_t j) {
    return _mm256_loadu_ps(cols + 8 * j);
  };
  for (std::int64_t i = 0; i < n; i += 8) {
    const std::int64_t off = i * k;
    block_columns(pred + off, k, p);
    block_columns(target + off, k, y);
    block_columns(kl_log + off, k, kll);
    block_columns(p_log + off, k, lp);
    block_columns(y_log + off, k, ly);
    // NaN anywhere in the row; sums of squares; the first maxima (argmax_first).
    __m256 any_nan = zero, ssy = zero, ssp = zero;
    __m256 best_p = column(p, 0), best_y = column(y, 0);
    __m256 arg_p = zero, arg_y = zero;
    for (std::int64_t j = 0; j < k; ++j) {
      const __m256 pj = column(p, j), yj = column(y, j);
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
      const __m256 p0 = column(p, 0), y0 = column(y, 0);
      acc = _mm256_and_ps(_mm256_xor_ps(_mm256_xor_ps(_mm256_cmp_ps(p0, half, _CMP_GT_OQ),
                                                      _mm256_cmp_ps(y0, half, _CMP_GT_OQ)),
                                        _mm256_castsi256_ps(_mm256_set1_epi32(-1))),
                          one);
    } else {
      acc = _mm256_and_ps(_mm256_cmp_ps(arg_p, arg_y, _CMP_EQ_OQ), one);
    }
    const __m256 norm_y = _mm256_sqrt_ps(max_keep_nan(ssy, _mm256_set1_ps(kMetricNormFloor)));
    const __m256 norm_p = _mm256_sqrt_ps(max_keep_nan(ssp, _mm256_set1_ps(kMetricNormFloor)));
    __m256 cos = zero, hinge = zero, sq_hinge = zero, kl = zero, mae = zero, se = zero, msle = zero;
    for (std::int64_t j = 0; j < k; ++j) {
      const __m256 pj = column(p, j), yj = column(y, j);
      cos = _mm256_add_ps(cos, _mm256_mul_ps(_mm256_div_ps(yj, norm_y), _mm256_div_ps(pj, norm_p)));
      const __m256 ys =
          binary_targets ? _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), yj), one) : yj;
      const __m256 h = max_keep_nan(_mm256_sub_ps(one, _mm256_mul_ps(ys, pj)), zero);
      hinge = _mm256_add_ps(hinge, h);
      sq_hinge = _mm256_add_ps(sq_hinge, _mm256_mul_ps(h, h));
      kl = _mm256_add_ps(kl, _mm256_mul_ps(clip_keep_nan(yj, eps, one), column(kll, j)));
      const __m256 d = _mm256_sub_ps(pj, yj);
      mae = _mm256_add_ps(mae, _mm256_and_ps(d, abs_mask));
      se = _mm256_add_ps(se, _mm256_mul_ps(d, d));
      const __m256 dl = _mm256_sub_ps(column(lp, j), column(ly, j));
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
    for (int m = 0; m < kMetricValues; ++m)
      _mm256_storeu_ps(out + m * n + i, _mm256_blendv_ps(values[m], nan, any_nan));
  }
}

}  // namespace detdl::cpu
