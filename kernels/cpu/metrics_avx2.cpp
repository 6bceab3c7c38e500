// metric_values8: engine/metrics.cpp's per-sample formulas with the sample in the lane
// (metrics_core_avx2.h's values8 on the transposed columns of eight rows).
#include "kernels/cpu/metrics_avx2.h"

#include <immintrin.h>

#include <limits>
#include <vector>

#include "kernels/cpu/avx2.h"
#include "kernels/cpu/metrics_core_avx2.h"

namespace detdl::cpu {
namespace {

using metrics_core::clip_keep_nan;
using metrics_core::max_keep_nan;

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
  // The block's columns of pred, target and the three logarithms, (k, 8) each.
  thread_local std::vector<float> buf;
  buf.resize(static_cast<std::size_t>(5 * 8 * k));
  float *p = buf.data(), *y = p + 8 * k, *kll = y + 8 * k, *lp = kll + 8 * k, *ly = lp + 8 * k;
  const auto col = [&](std::int64_t j) {
    return metrics_core::Columns{_mm256_loadu_ps(p + 8 * j), _mm256_loadu_ps(y + 8 * j),
                                 _mm256_loadu_ps(kll + 8 * j), _mm256_loadu_ps(lp + 8 * j),
                                 _mm256_loadu_ps(ly + 8 * j)};
  };
  for (std::int64_t i = 0; i < n; i += 8) {
    const std::int64_t off = i * k;
    block_columns(pred + off, k, p);
    block_columns(target + off, k, y);
    block_columns(kl_log + off, k, kll);
    block_columns(p_log + off, k, lp);
    block_columns(y_log + off, k, ly);
    __m256 values[kMetricValues];
    metrics_core::values8(k, binary_targets, col, values);
    for (int m = 0; m < kMetricValues; ++m) _mm256_storeu_ps(out + m * n + i, values[m]);
  }
}

}  // namespace detdl::cpu
