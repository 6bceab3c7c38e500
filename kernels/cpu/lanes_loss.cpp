// lanes::softmax_ce: loss.cpp's softmax cross-entropy, count_correct and the metrics'
// per-sample values with a repetition in each lane. Eight lanes per AVX2 vector; a 16-lane
// group is two halves of eight, each element's halves 8 floats apart.
#include "kernels/cpu/lanes_loss.h"

#include <immintrin.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/detmath.h"
#include "kernels/common/reduction.h"
#include "kernels/cpu/detmath_avx2.h"
#include "kernels/cpu/metrics_core_avx2.h"

namespace detdl::cpu::lanes {
namespace {

using i64 = std::int64_t;

void check_labels(int lanes, i64 count, i64 K, const std::int32_t* labels) {
  for (i64 i = 0; i < count; ++i)
    for (int l = 0; l < lanes; ++l) {
      const std::int32_t y = labels[i * lanes + l];
      if (y < 0 || y >= K)
        throw std::invalid_argument("lanes::softmax_ce: row " + std::to_string(i) + " lane " +
                                    std::to_string(l) + " has label " + std::to_string(y) +
                                    ", outside [0, " + std::to_string(K) + ")");
    }
}

// [k == label] as 1.0f or +0.0f (row_divide's one-hot).
__m256 one_hot(__m256i label, i64 k) {
  const __m256i hit = _mm256_cmpeq_epi32(label, _mm256_set1_epi32(static_cast<int>(k)));
  return _mm256_and_ps(_mm256_castsi256_ps(hit), _mm256_set1_ps(1.0f));
}

}  // namespace

ClassLoss softmax_ce(int lanes, i64 count, i64 K, const float* logits, const std::int32_t* labels,
                     CrossEntropyForm form, float* dlogits, float* probs, float* metric_values) {
  if (lanes != 8 && lanes != 16)
    throw std::invalid_argument("lanes::softmax_ce: lanes must be 8 or 16, not " +
                                std::to_string(lanes));
  if (K > kChunkValues)  // each row's sums below are single chains
    throw std::invalid_argument("lanes::softmax_ce: K = " + std::to_string(K) +
                                " outputs, more than " + std::to_string(kChunkValues));
  check_labels(lanes, count, K, labels);
  ClassLoss out{};
  if (count == 0 || K == 0) return out;
  const i64 L = lanes, row = K * L;
  const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 vcount = _mm256_set1_ps(static_cast<float>(count));
  thread_local std::vector<float> ms, ss, row_loss;
  ms.resize(static_cast<std::size_t>(count * L));
  ss.resize(ms.size());
  row_loss.resize(ms.size());

  // The rows' maxima (the first largest: rows_exp's x[k] > m ? x[k] : m) and x - m into probs,
  // then their det_expf, then s = the chain of each row's exponentials from +0.0f.
  for (i64 i = 0; i < count; ++i)
    for (int h = 0; h < L; h += 8) {
      const float* x = logits + i * row + h;
      __m256 m = _mm256_loadu_ps(x);
      for (i64 k = 1; k < K; ++k) {
        const __m256 v = _mm256_loadu_ps(x + k * L);
        m = _mm256_blendv_ps(m, v, _mm256_cmp_ps(v, m, _CMP_GT_OQ));
      }
      _mm256_storeu_ps(ms.data() + i * L + h, m);
      float* e = probs + i * row + h;
      for (i64 k = 0; k < K; ++k)
        _mm256_storeu_ps(e + k * L, _mm256_sub_ps(_mm256_loadu_ps(x + k * L), m));
    }
  det_expf_n(probs, probs, count * row);
  for (i64 i = 0; i < count; ++i)
    for (int h = 0; h < L; h += 8) {
      const float* e = probs + i * row + h;
      __m256 s = _mm256_setzero_ps();
      for (i64 k = 0; k < K; ++k) s = _mm256_add_ps(s, _mm256_loadu_ps(e + k * L));
      _mm256_storeu_ps(ss.data() + i * L + h, s);
    }

  if (form == CrossEntropyForm::exact) {
    // loss = log s - (x_y - m); probs = e / s; dlogits = (e / s - [k == y]) / count.
    det_logf_n(ss.data(), row_loss.data(), count * L);
    for (i64 i = 0; i < count; ++i)
      for (int h = 0; h < L; h += 8) {
        const i64 r = i * L + h;
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(labels + r));
        const __m256 x_y = _mm256_i32gather_ps(
            logits + i * row + h,
            _mm256_add_epi32(_mm256_mullo_epi32(y, _mm256_set1_epi32(static_cast<int>(L))),
                             lane_index),
            4);
        const __m256 m = _mm256_loadu_ps(ms.data() + r), s = _mm256_loadu_ps(ss.data() + r);
        _mm256_storeu_ps(row_loss.data() + r, _mm256_sub_ps(_mm256_loadu_ps(row_loss.data() + r),
                                                            _mm256_sub_ps(x_y, m)));
        float* p = probs + i * row + h;
        float* d = dlogits + i * row + h;
        for (i64 k = 0; k < K; ++k) {
          const __m256 v = _mm256_div_ps(_mm256_loadu_ps(p + k * L), s);
          _mm256_storeu_ps(p + k * L, v);
          _mm256_storeu_ps(d + k * L, _mm256_div_ps(_mm256_sub_ps(v, one_hot(y, k)), vcount));
        }
      }
  } else {
    // Keras's clipped form (cross_entropy.h): p = e / s; S = the chain of the p; q = p_y / S
    // clipped to [eps, 1 - eps]; loss = -log(clip(q)); dlogits = (p / S - [k == y]) / count
    // where eps <= q <= 1 - eps, +0.0f elsewhere.
    const __m256 eps = _mm256_set1_ps(kKerasEpsilon), top = _mm256_set1_ps(kKerasOneMinusEpsilon);
    for (i64 i = 0; i < count; ++i)
      for (int h = 0; h < L; h += 8) {
        const i64 r = i * L + h;
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(labels + r));
        const __m256 s = _mm256_loadu_ps(ss.data() + r);
        float* p = probs + i * row + h;
        __m256 S = _mm256_setzero_ps();
        for (i64 k = 0; k < K; ++k) {
          const __m256 v = _mm256_div_ps(_mm256_loadu_ps(p + k * L), s);
          _mm256_storeu_ps(p + k * L, v);
          S = _mm256_add_ps(S, v);
        }
        const __m256 p_y = _mm256_i32gather_ps(
            p,
            _mm256_add_epi32(_mm256_mullo_epi32(y, _mm256_set1_epi32(static_cast<int>(L))),
                             lane_index),
            4);
        const __m256 q = _mm256_div_ps(p_y, S);
        const __m256 below = _mm256_cmp_ps(q, eps, _CMP_LT_OQ),
                     above = _mm256_cmp_ps(q, top, _CMP_GT_OQ);
        const __m256 clipped = _mm256_blendv_ps(_mm256_blendv_ps(q, top, above), eps, below);
        _mm256_storeu_ps(row_loss.data() + r, clipped);
        float* d = dlogits + i * row + h;
        // eps <= q <= 1 - eps (the clip passes the gradient) as a mask.
        const __m256 on = _mm256_andnot_ps(_mm256_or_ps(below, above),
                                           _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
        for (i64 k = 0; k < K; ++k) {
          const __m256 v = _mm256_div_ps(
              _mm256_sub_ps(_mm256_div_ps(_mm256_loadu_ps(p + k * L), S), one_hot(y, k)), vcount);
          _mm256_storeu_ps(d + k * L, _mm256_and_ps(v, on));
        }
      }
    det_logf_n(row_loss.data(), row_loss.data(), count * L);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (i64 r = 0; r < count * L; r += 8)
      _mm256_storeu_ps(row_loss.data() + r,
                       _mm256_xor_ps(_mm256_loadu_ps(row_loss.data() + r), sign));
  }

  // The mean: each lane's canonical sum of its rows' losses (chains of kChunkValues rows, the
  // tree over them), divided by count.
  for (int l = 0; l < L; ++l) {
    ChunkTree tree;
    for (i64 s0 = 0; s0 < count; s0 += kChunkValues) {
      const i64 s1 = s0 + kChunkValues < count ? s0 + kChunkValues : count;
      float p = 0.0f;
      for (i64 i = s0; i < s1; ++i) p = p + row_loss[static_cast<std::size_t>(i * L + l)];
      tree.push(p);
    }
    out.loss[l] = tree.root() / static_cast<float>(count);
  }

  // count_correct: the logits' first maximum against the label; a row with a NaN is wrong.
  for (int h = 0; h < L; h += 8) {
    __m256i correct = _mm256_setzero_si256();
    for (i64 i = 0; i < count; ++i) {
      const float* x = logits + i * row + h;
      __m256 best = _mm256_loadu_ps(x);
      __m256i arg = _mm256_setzero_si256();
      __m256 nan = _mm256_cmp_ps(best, best, _CMP_UNORD_Q);
      for (i64 k = 1; k < K; ++k) {
        const __m256 v = _mm256_loadu_ps(x + k * L);
        const __m256 above = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
        best = _mm256_blendv_ps(best, v, above);
        arg = _mm256_blendv_epi8(arg, _mm256_set1_epi32(static_cast<int>(k)),
                                 _mm256_castps_si256(above));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      }
      const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(labels + i * L + h));
      const __m256i hit = _mm256_andnot_si256(_mm256_castps_si256(nan), _mm256_cmpeq_epi32(arg, y));
      correct = _mm256_sub_epi32(correct, hit);  // hit lanes are -1
    }
    alignas(32) std::int32_t c[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(c), correct);
    for (int l = 0; l < 8; ++l) out.correct[h + l] = c[l];
  }

  if (metric_values == nullptr) return out;
  // The metrics on the softmax against the one-hot targets (MetricAccumulator::add with
  // binary targets): the KL and MSLE logarithms of every element, then values8 per row.
  thread_local std::vector<float> kl_log, p_log;
  kl_log.resize(static_cast<std::size_t>(count * row));
  p_log.resize(kl_log.size());
  const __m256 eps = _mm256_set1_ps(kMetricEps), one = _mm256_set1_ps(1.0f);
  for (i64 i = 0; i < count; ++i)
    for (int h = 0; h < L; h += 8) {
      const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(labels + i * L + h));
      for (i64 k = 0; k < K; ++k) {
        const i64 e = i * row + k * L + h;
        const __m256 p = _mm256_loadu_ps(probs + e), t = one_hot(y, k);
        _mm256_storeu_ps(kl_log.data() + e,
                         _mm256_div_ps(metrics_core::clip_keep_nan(t, eps, one),
                                       metrics_core::clip_keep_nan(p, eps, one)));
        _mm256_storeu_ps(p_log.data() + e, _mm256_add_ps(metrics_core::max_keep_nan(p, eps), one));
      }
    }
  det_logf_n(kl_log.data(), kl_log.data(), count * row);
  det_logf_n(p_log.data(), p_log.data(), count * row);
  const __m256 y_log0 = _mm256_set1_ps(det_logf(max_keep_nan(0.0f, kMetricEps) + 1.0f));
  const __m256 y_log1 = _mm256_set1_ps(det_logf(max_keep_nan(1.0f, kMetricEps) + 1.0f));
  for (i64 i = 0; i < count; ++i)
    for (int h = 0; h < L; h += 8) {
      const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(labels + i * L + h));
      const i64 base = i * row + h;
      const auto col = [&](i64 k) {
        const __m256 t = one_hot(y, k);
        return metrics_core::Columns{
            _mm256_loadu_ps(probs + base + k * L), t, _mm256_loadu_ps(kl_log.data() + base + k * L),
            _mm256_loadu_ps(p_log.data() + base + k * L),
            _mm256_blendv_ps(y_log0, y_log1, _mm256_cmp_ps(t, one, _CMP_EQ_OQ))};
      };
      __m256 values[kMetricValues];
      metrics_core::values8(K, /*binary_targets=*/true, col, values);
      for (int m = 0; m < kMetricValues; ++m)
        _mm256_storeu_ps(metric_values + (m * count + i) * L + h, values[m]);
    }
  return out;
}

}  // namespace detdl::cpu::lanes
