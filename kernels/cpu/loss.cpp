#include "kernels/cpu/loss.h"

#include <immintrin.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/cross_entropy.h"
#include "kernels/common/detmath.h"
#include "kernels/common/detmath_alt.h"
#include "kernels/common/loss_form.h"
#include "kernels/common/reduction.h"
#include "kernels/cpu/avx2.h"
#include "kernels/cpu/detmath_avx2.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

// dst[k] = src[k] / s for k < K, and with `grad` (the exact form's gradient)
// (src[k] / s - (k == label ? 1 : 0)) / count instead: eight lanes at a time, each lane the
// scalar formula's IEEE operations (the same bits). The scalar loop waited on two dependent
// divisions per element (two thirds of a BUTTER batch's loss time).
void row_divide(const float* src, i64 K, float s, float* dst, bool grad = false, i64 label = -1,
                float count = 1.0f) {
  const __m256 vs = _mm256_set1_ps(s), vc = _mm256_set1_ps(count), one = _mm256_set1_ps(1.0f);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (i64 k = 0; k < K; k += 8) {
    const i64 n = std::min<i64>(8, K - k);
    const __m256i m = avx2::first_lanes(n);
    __m256 v = _mm256_div_ps(_mm256_maskload_ps(src + k, m), vs);
    if (grad) {
      const __m256i hit = _mm256_cmpeq_epi32(lanes, _mm256_set1_epi32(static_cast<int>(label - k)));
      const __m256 onehot = _mm256_and_ps(_mm256_castsi256_ps(hit), one);  // 1.0f or +0.0f
      v = _mm256_div_ps(_mm256_sub_ps(v, onehot), vc);
    }
    avx2::store_first(dst + k, v, n);
  }
}

// Element ranges below this run on the calling thread: a pool job costs more.
constexpr i64 kSerialElements = 1 << 14;

template <class Fn>
void for_ranges(i64 n, Fn fn) {
  if (n < kSerialElements) {
    fn(0, n);
    return;
  }
  parallel_ranges(n, [&](i64 b, i64 e, int) { fn(b, e); });
}

// Sum of term(i) over i in [0, n) in the order the header gives for `level`.
template <class Term>
float reduce_values(Level level, i64 n, Term term) {
  const int T = num_threads();
  if (level == Level::fast && T > 1 && n >= 4 * kChunkValues) {
    const i64 piece = std::max<i64>(kChunkValues, n / (8 * T));
    const i64 pieces = (n + piece - 1) / piece;
    std::vector<float> part(static_cast<std::size_t>(T), 0.0f);
    parallel_dynamic(pieces, [&](i64 q, int w) {
      float acc = part[w];
      for (i64 i = q * piece; i < std::min(n, (q + 1) * piece); ++i) acc = acc + term(i);
      part[w] = acc;
    });
    float total = 0.0f;
    for (float p : part) total = total + p;
    return total;
  }
  const i64 chunks = (n + kChunkValues - 1) / kChunkValues;
  if (chunks <= 16) return canonical_sum_of(n, term);
  // Chunk partials in parallel (each one the in-order chain of its chunk), tree in order.
  std::vector<float> part(static_cast<std::size_t>(chunks));
  parallel_for(chunks, [&](i64 c) {
    float p = 0.0f;
    for (i64 i = c * kChunkValues; i < std::min(n, (c + 1) * kChunkValues); ++i) p = p + term(i);
    part[c] = p;
  });
  ChunkTree tree;
  for (float p : part) tree.push(p);
  return tree.root();
}

void check_labels(i64 N, i64 K, const std::int32_t* labels) {
  for (i64 i = 0; i < N; ++i)
    if (labels[i] < 0 || labels[i] >= K)
      throw std::invalid_argument("softmax_cross_entropy: sample " + std::to_string(i) +
                                  " has label " + std::to_string(labels[i]) + ", outside [0, " +
                                  std::to_string(K) + ")");
}

// Softmax rows [r0, r1) of x (N, K): m[i - r0] = max_k x[i][k], e (r1 - r0, K) the
// det_expf(x[i][k] - m) (eight at a time across rows: det_expf_n is det_expf bit for bit),
// s[i - r0] = their canonical sum.
void rows_exp(const float* x, i64 r0, i64 r1, i64 K, float* e, float* m, float* s) {
  for (i64 i = r0; i < r1; ++i) {
    const float* xi = x + i * K;
    float* ei = e + (i - r0) * K;
    float mi = xi[0];
    for (i64 k = 1; k < K; ++k) mi = xi[k] > mi ? xi[k] : mi;
    for (i64 k = 0; k < K; ++k) ei[k] = xi[k] - mi;
    m[i - r0] = mi;
  }
  det_expf_n(e, e, (r1 - r0) * K);
  for (i64 i = r0; i < r1; ++i) s[i - r0] = canonical_sum(e + (i - r0) * K, K);
}

}  // namespace

void softmax_forward(i64 N, i64 K, const float* logits, float* probs) {
  if (K <= 0) return;
  parallel_ranges(N, [&](i64 r0, i64 r1, int) {
    std::vector<float> m(static_cast<std::size_t>(r1 - r0)), s(m.size());
    rows_exp(logits, r0, r1, K, probs + r0 * K, m.data(), s.data());
    for (i64 i = r0; i < r1; ++i) {
      float* p = probs + i * K;
      for (i64 k = 0; k < K; ++k) p[k] = p[k] / s[i - r0];
    }
  });
}

float softmax_cross_entropy(Level level, i64 N, i64 K, const float* logits,
                            const std::int32_t* labels, float* loss_per_sample, float* dlogits,
                            CrossEntropyForm form, float* probs) {
  check_labels(N, K, labels);
  if (N == 0) return 0.0f;
  std::vector<float> own;
  float* loss = loss_per_sample;
  if (!loss) {
    own.resize(static_cast<std::size_t>(N));
    loss = own.data();
  }
  const float count = static_cast<float>(N);
  parallel_ranges(N, [&](i64 r0, i64 r1, int) {
    std::vector<float> scratch(dlogits ? 0 : static_cast<std::size_t>((r1 - r0) * K));
    std::vector<float> ms(static_cast<std::size_t>(r1 - r0)), ss(ms.size());
    float* exps = dlogits ? dlogits + r0 * K : scratch.data();  // exps, then the gradient
    rows_exp(logits, r0, r1, K, exps, ms.data(), ss.data());
    // The exact form's log s of every row, eight at a time (det_logf_n is det_logf bit for bit).
    std::vector<float> log_s(form == CrossEntropyForm::exact ? ss.size() : 0);
    if (!log_s.empty()) det_logf_n(ss.data(), log_s.data(), r1 - r0);
    for (i64 i = r0; i < r1; ++i) {
      const float* x = logits + i * K;
      float* e = exps + (i - r0) * K;
      const float m = ms[i - r0], s = ss[i - r0];
      if (probs) row_divide(e, K, s, probs + i * K);  // as softmax_forward
      if (form == CrossEntropyForm::keras_clipped) {
        row_divide(e, K, s, e);  // the softmax output p
        const KerasRow r = keras_row(e, K, labels[i], [](float v) { return det_logf(v); });
        loss[i] = r.loss;
        if (dlogits)
          for (i64 k = 0; k < K; ++k)
            e[k] = keras_grad(r, e[k], k == labels[i], [count](float v) { return v / count; });
        continue;
      }
      loss[i] = log_s[i - r0] - (x[labels[i]] - m);
      if (dlogits) row_divide(e, K, s, e, /*grad=*/true, labels[i], count);
    }
  });
  return reduce_values(level, N, [loss](i64 i) { return loss[i]; }) / count;
}

float binary_cross_entropy(Level level, i64 n, const float* input, const float* target,
                           bool from_logits, float* loss_per_element, float* dinput) {
  if (n == 0) return 0.0f;
  std::vector<float> own;
  float* loss = loss_per_element;
  if (!loss) {
    own.resize(static_cast<std::size_t>(n));
    loss = own.data();
  }
  const float count = static_cast<float>(n);
  constexpr float kEps = 1e-7f;
  constexpr float kOneMinusEps = 1.0f - kEps;
  for_ranges(n, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) {
      const float x = input[i], t = target[i];
      if (from_logits) {
        const float ex = det_expf(-det_fabsf(x));
        loss[i] = ((x > 0.0f ? x : 0.0f) - x * t) + det_log1pf(ex);
        if (dinput) {
          const float sig = x >= 0.0f ? 1.0f / (1.0f + ex) : ex / (1.0f + ex);
          dinput[i] = (sig - t) / count;
        }
      } else {
        const bool below = x<kEps, above = x> kOneMinusEps;
        const float q = below ? kEps : (above ? kOneMinusEps : x);
        loss[i] = -(t * det_logf(q) + (1.0f - t) * det_logf(1.0f - q));
        if (dinput) dinput[i] = below || above ? 0.0f : ((q - t) / (q * (1.0f - q))) / count;
      }
    }
  });
  return reduce_values(level, n, [loss](i64 i) { return loss[i]; }) / count;
}

float mean_squared_error(Level level, i64 n, const float* pred, const float* target,
                         float* loss_per_element, float* dpred) {
  if (n == 0) return 0.0f;
  const float count = static_cast<float>(n);
  if (loss_per_element || dpred)
    for_ranges(n, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; ++i) {
        const float d = pred[i] - target[i];
        if (loss_per_element) loss_per_element[i] = d * d;
        if (dpred) dpred[i] = (2.0f * d) / count;
      }
    });
  return reduce_values(level, n,
                       [pred, target](i64 i) {
                         const float d = pred[i] - target[i];
                         return d * d;
                       }) /
         count;
}

float l1_penalty(Level level, i64 n, const float* w) {
  return reduce_values(level, n, [w](i64 i) { return det_fabsf(w[i]); });
}

float l2_penalty(Level level, i64 n, const float* w) {
  return reduce_values(level, n, [w](i64 i) { return w[i] * w[i]; });
}

void l1_penalty_grad_add(i64 n, const float* w, float lambda, float* g) {
  for_ranges(n, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) {
      const float v = w[i];
      const float sign = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : (v == 0.0f ? 0.0f : v));
      g[i] = g[i] + lambda * sign;
    }
  });
}

void l2_penalty_grad_add(i64 n, const float* w, float lambda, float* g) {
  const float twice = 2.0f * lambda;
  for_ranges(n, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) g[i] = g[i] + twice * w[i];
  });
}

// ---- The `emulated` level (loss.h, "The emulated level") ----

namespace {

// Sum of term(i), i in [0, n), in impl's shape (sum k of the call: its own arrival order).
template <class Term>
float impl_sum(const LossImpl& impl, i64 n, std::uint32_t k, Term term) {
  const std::vector<i64> order = arrival_order(impl.reduce, impl.reduce_draw, n, k);
  return shaped_sum_of(impl.reduce, order.data(), n, term);
}

// The per-element part of impl (kernels/common/loss_form.h), and its mean over n.
LossForm form_of(const LossImpl& impl) {
  return {impl.subtract_max, impl.log_of_softmax, impl.reciprocal_mean, impl.log_softmax_grad,
          impl.alt_exp,      impl.alt_log,        impl.alt_log1p};
}
LossMean mean_of(const LossImpl& impl, i64 n) {
  return LossMean(form_of(impl), static_cast<float>(n));
}

}  // namespace

LossImpl loss_impl(const ImplDraw* loss, const ImplDraw* math, const ImplDraw* reduce) {
  LossImpl impl;
  if (loss) {
    impl.subtract_max = !loss->coin(0);
    impl.log_of_softmax = loss->coin(1);
    impl.reciprocal_mean = loss->coin(2);
    impl.log_softmax_grad = loss->coin(3);
  }
  if (math) {  // one library supplies all three functions (as activation.cpp's one coin)
    impl.alt_exp = impl.alt_log = impl.alt_log1p = math->coin(0);
  }
  if (reduce) {
    impl.reduce = reduce_shape(*reduce);
    impl.reduce_draw = *reduce;
  }
  return impl;
}

void softmax_forward(const LossImpl& impl, i64 N, i64 K, const float* logits, float* probs) {
  if (K <= 0) return;
  const LossForm f = form_of(impl);
  parallel_ranges(N, [&](i64 r0, i64 r1, int) {
    for (i64 i = r0; i < r1; ++i) {
      float m;
      float* p = probs + i * K;
      const float s = loss_row_exp(f, logits + i * K, K, p, m);
      for (i64 k = 0; k < K; ++k) p[k] = p[k] / s;
    }
  });
}

float softmax_cross_entropy(const LossImpl& impl, i64 N, i64 K, const float* logits,
                            const std::int32_t* labels, float* loss_per_sample, float* dlogits,
                            CrossEntropyForm form) {
  check_labels(N, K, labels);
  if (N == 0) return 0.0f;
  std::vector<float> own;
  float* loss = loss_per_sample;
  if (!loss) {
    own.resize(static_cast<std::size_t>(N));
    loss = own.data();
  }
  const LossForm f = form_of(impl);
  const LossMean mean = mean_of(impl, N);
  const float nll_grad = -1.0f / static_cast<float>(N);  // PyTorch's -weight / total_weight
  const bool keras = form == CrossEntropyForm::keras_clipped;
  parallel_ranges(N, [&](i64 r0, i64 r1, int) {
    std::vector<float> scratch(dlogits ? 0 : static_cast<std::size_t>(K));
    for (i64 i = r0; i < r1; ++i) {
      const float* x = logits + i * K;
      float* e = dlogits ? dlogits + i * K : scratch.data();  // exps, then the gradient
      float m;
      const float s = loss_row_exp(f, x, K, e, m);
      loss[i] =
          cross_entropy_row(f, x, K, labels[i], e, s, m, dlogits != nullptr, keras, mean, nll_grad);
    }
  });
  return mean(impl_sum(impl, N, 0, [loss](i64 i) { return loss[i]; }));
}

float binary_cross_entropy(const LossImpl& impl, i64 n, const float* input, const float* target,
                           bool from_logits, float* loss_per_element, float* dinput) {
  if (n == 0) return 0.0f;
  std::vector<float> own;
  float* loss = loss_per_element;
  if (!loss) {
    own.resize(static_cast<std::size_t>(n));
    loss = own.data();
  }
  const LossMean mean = mean_of(impl, n);
  constexpr float kEps = 1e-7f;
  constexpr float kOneMinusEps = 1.0f - kEps;
  for_ranges(n, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) {
      const float x = input[i], t = target[i];
      if (from_logits) {
        const float ex = impl_expf(impl.alt_exp, -det_fabsf(x));
        loss[i] = ((x > 0.0f ? x : 0.0f) - x * t) + impl_log1pf(impl.alt_log1p, ex);
        if (dinput) {
          const float sig = x >= 0.0f ? 1.0f / (1.0f + ex) : ex / (1.0f + ex);
          dinput[i] = mean(sig - t);
        }
      } else {
        const bool below = x<kEps, above = x> kOneMinusEps;
        const float q = below ? kEps : (above ? kOneMinusEps : x);
        loss[i] =
            -(t * impl_logf(impl.alt_log, q) + (1.0f - t) * impl_logf(impl.alt_log, 1.0f - q));
        if (dinput) dinput[i] = below || above ? 0.0f : mean((q - t) / (q * (1.0f - q)));
      }
    }
  });
  return mean(impl_sum(impl, n, 0, [loss](i64 i) { return loss[i]; }));
}

float mean_squared_error(const LossImpl& impl, i64 n, const float* pred, const float* target,
                         float* loss_per_element, float* dpred) {
  if (n == 0) return 0.0f;
  const LossMean mean = mean_of(impl, n);
  if (loss_per_element || dpred)
    for_ranges(n, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; ++i) {
        const float d = pred[i] - target[i];
        if (loss_per_element) loss_per_element[i] = d * d;
        if (dpred) dpred[i] = mean(2.0f * d);
      }
    });
  return mean(impl_sum(impl, n, 0, [pred, target](i64 i) {
    const float d = pred[i] - target[i];
    return d * d;
  }));
}

float l1_penalty(const LossImpl& impl, i64 n, const float* w) {
  return impl_sum(impl, n, 0, [w](i64 i) { return det_fabsf(w[i]); });
}

float l2_penalty(const LossImpl& impl, i64 n, const float* w) {
  return impl_sum(impl, n, 0, [w](i64 i) { return w[i] * w[i]; });
}

}  // namespace detdl::cpu
