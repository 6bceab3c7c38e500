#include "kernels/cpu/optim.h"

#include <immintrin.h>

#include <algorithm>

#include "kernels/common/optim_formulas.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

constexpr i64 kGrain = 1 << 15;

// Fixed blocks of kGrain elements, one task each, handed whole to f(begin, end) (a single
// block runs on the calling thread).
template <class F>
void for_blocks(i64 n, F f) {
  const i64 blocks = (n + kGrain - 1) / kGrain;
  if (blocks <= 1) {
    if (n > 0) f(0, n);
    return;
  }
  parallel_for(blocks, [&](i64 t) { f(t * kGrain, std::min(n, (t + 1) * kGrain)); });
}

template <class F>
void for_elements(i64 n, F f) {
  for_blocks(n, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) f(i);
  });
}

// Adam's configured update (the textbook or Keras form, no contraction) on [b, e), eight
// elements at a time: optim_formulas.h's adam_element / adam_element_keras with fuse = 0,
// operation for operation (products rounded before the adds, IEEE sqrt and division), so
// every lane is the scalar formula's bits; the tail takes the scalar formula itself.
void adam_lanes(i64 b, i64 e, float* p, const float* g, float* m, float* v, const AdamParams& a,
                float lr_t) {
  const __m256 b1 = _mm256_set1_ps(a.beta1), b2 = _mm256_set1_ps(a.beta2),
               c1 = _mm256_set1_ps(1.0f - a.beta1), c2 = _mm256_set1_ps(1.0f - a.beta2),
               eps = _mm256_set1_ps(a.eps), wd = _mm256_set1_ps(a.weight_decay),
               lrwd = _mm256_set1_ps(a.lr * a.weight_decay), lr = _mm256_set1_ps(a.lr),
               lrt = _mm256_set1_ps(lr_t), bc1 = _mm256_set1_ps(a.bc1), bc2 = _mm256_set1_ps(a.bc2);
  const bool decay = a.weight_decay != 0.0f;
  i64 i = b;
  for (; i + 8 <= e; i += 8) {
    __m256 pv = _mm256_loadu_ps(p + i), gw = _mm256_loadu_ps(g + i);
    if (decay) {
      if (a.decoupled)  // p = p - (lr * wd) * p
        pv = _mm256_sub_ps(pv, _mm256_mul_ps(lrwd, pv));
      else  // g' = g + wd * p
        gw = _mm256_add_ps(gw, _mm256_mul_ps(wd, pv));
    }
    const __m256 mv =
        _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(c1, gw));
    const __m256 vv = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)),
                                    _mm256_mul_ps(c2, _mm256_mul_ps(gw, gw)));
    const __m256 step =
        a.keras ? _mm256_div_ps(_mm256_mul_ps(lrt, mv), _mm256_add_ps(_mm256_sqrt_ps(vv), eps))
                : _mm256_div_ps(_mm256_mul_ps(lr, _mm256_div_ps(mv, bc1)),
                                _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vv, bc2)), eps));
    _mm256_storeu_ps(m + i, mv);
    _mm256_storeu_ps(v + i, vv);
    _mm256_storeu_ps(p + i, _mm256_sub_ps(pv, step));
  }
  for (; i < e; ++i)
    adam_element_configured(a.keras, p[i], g[i], m[i], v[i], lr_t, a.lr, a.beta1, a.beta2, a.eps,
                            a.bc1, a.bc2, a.weight_decay, a.decoupled);
}

// SGD's configured update (PyTorch's or Keras's form, no contraction) on [b, e), eight
// elements at a time: sgd_element / sgd_element_keras with fuse = 0, operation for operation
// (each product rounded before its add), so every lane is the scalar formula's bits; the tail
// takes the scalar formula itself. The scalar loop had been 1.5% of a LeNet-5 epoch.
void sgd_lanes(i64 b, i64 e, float* p, const float* g, float* buf, const SgdParams& s) {
  const __m256 lr = _mm256_set1_ps(s.lr), mu = _mm256_set1_ps(s.momentum),
               wd = _mm256_set1_ps(s.weight_decay);
  const bool decay = s.weight_decay != 0.0f, momentum = s.momentum != 0.0f;
  i64 i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256 pv = _mm256_loadu_ps(p + i);
    __m256 gw = _mm256_loadu_ps(g + i);
    if (decay) gw = _mm256_add_ps(gw, _mm256_mul_ps(wd, pv));  // g' = g + wd * p
    if (s.keras) {
      if (!momentum) {  // p = p - lr * g'
        _mm256_storeu_ps(p + i, _mm256_sub_ps(pv, _mm256_mul_ps(lr, gw)));
        continue;
      }
      // v = momentum * v - lr * g'; p = nesterov ? p + (momentum * v - lr * g') : p + v
      const __m256 v =
          _mm256_sub_ps(_mm256_mul_ps(mu, _mm256_loadu_ps(buf + i)), _mm256_mul_ps(lr, gw));
      _mm256_storeu_ps(buf + i, v);
      const __m256 step =
          s.nesterov ? _mm256_sub_ps(_mm256_mul_ps(mu, v), _mm256_mul_ps(lr, gw)) : v;
      _mm256_storeu_ps(p + i, _mm256_add_ps(pv, step));
      continue;
    }
    __m256 d = gw;
    if (momentum) {  // buf = first ? g' : momentum * buf + g'; d = nesterov ? g' + momentum * buf : buf
      const __m256 bv =
          s.first ? gw : _mm256_add_ps(_mm256_mul_ps(mu, _mm256_loadu_ps(buf + i)), gw);
      _mm256_storeu_ps(buf + i, bv);
      d = s.nesterov ? _mm256_add_ps(gw, _mm256_mul_ps(mu, bv)) : bv;
    }
    _mm256_storeu_ps(p + i, _mm256_sub_ps(pv, _mm256_mul_ps(lr, d)));  // p = p - lr * d
  }
  for (; i < e; ++i) {
    if (s.keras)
      sgd_element_keras(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov);
    else
      sgd_element(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov, s.first);
  }
}

}  // namespace

void sgd_update(i64 n, float* p, const float* g, float* buf, const SgdParams& s) {
  for_blocks(n, [&](i64 b, i64 e) { sgd_lanes(b, e, p, g, buf, s); });
}

void adam_update(i64 n, float* p, const float* g, float* m, float* v, const AdamParams& a) {
  const float lr_t = a.keras ? adam_keras_lr(a.lr, a.bc1, a.bc2) : 0.0f;
  for_blocks(n, [&](i64 b, i64 e) { adam_lanes(b, e, p, g, m, v, a, lr_t); });
}

void rmsprop_update(i64 n, float* p, const float* g, float* v, float* buf, const RmspropParams& r) {
  if (r.keras)
    for_elements(n, [&](i64 i) {
      rmsprop_element_keras(p[i], g[i], v[i], buf[i], r.lr, r.alpha, r.eps, r.momentum,
                            r.weight_decay);
    });
  else
    for_elements(n, [&](i64 i) {
      rmsprop_element(p[i], g[i], v[i], buf[i], r.lr, r.alpha, r.eps, r.momentum, r.weight_decay);
    });
}

// The variants keep `fuse` a run-time value: its bits are loop-invariant branches that
// predict perfectly, and the update is bound by memory traffic, not by them.
void sgd_update(i64 n, float* p, const float* g, float* buf, const SgdParams& s,
                std::uint32_t fuse) {
  if (s.keras)
    for_elements(n, [&](i64 i) {
      sgd_element_keras_c(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov, fuse);
    });
  else
    for_elements(n, [&](i64 i) {
      sgd_element_c(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov, s.first,
                    fuse);
    });
}

void adam_update(i64 n, float* p, const float* g, float* m, float* v, const AdamParams& a,
                 AdamForm form, std::uint32_t fuse) {
  switch (form) {
    case AdamForm::keras: {
      const float lr_t = adam_keras_lr(a.lr, a.bc1, a.bc2);
      for_elements(n, [&](i64 i) {
        adam_element_keras_c(p[i], g[i], m[i], v[i], lr_t, a.lr, a.beta1, a.beta2, a.eps,
                             a.weight_decay, a.decoupled, fuse);
      });
      return;
    }
    case AdamForm::torch: {
      const AdamTorchScalars t = adam_torch_scalars(a.lr, a.bc1, a.bc2, a.weight_decay);
      for_elements(n, [&](i64 i) {
        adam_element_torch_c(p[i], g[i], m[i], v[i], t.step_size, t.bc2_sqrt, t.decay_mul, a.beta1,
                             a.beta2, a.eps, a.weight_decay, a.decoupled, fuse);
      });
      return;
    }
    case AdamForm::textbook: break;
  }
  for_elements(n, [&](i64 i) {
    adam_element_c(p[i], g[i], m[i], v[i], a.lr, a.beta1, a.beta2, a.eps, a.bc1, a.bc2,
                   a.weight_decay, a.decoupled, fuse);
  });
}

void rmsprop_update(i64 n, float* p, const float* g, float* v, float* buf, const RmspropParams& r,
                    std::uint32_t fuse) {
  if (r.keras)
    for_elements(n, [&](i64 i) {
      rmsprop_element_keras_c(p[i], g[i], v[i], buf[i], r.lr, r.alpha, r.eps, r.momentum,
                              r.weight_decay, fuse);
    });
  else
    for_elements(n, [&](i64 i) {
      rmsprop_element_c(p[i], g[i], v[i], buf[i], r.lr, r.alpha, r.eps, r.momentum, r.weight_decay,
                        fuse);
    });
}

std::pair<float, float> adam_bias_corrections(float beta1, float beta2, i64 t) {
  auto power = [](double b, i64 e) {
    double r = 1.0;
    while (e > 0) {
      if (e & 1) r = r * b;
      b = b * b;
      e >>= 1;
    }
    return r;
  };
  return {static_cast<float>(1.0 - power(beta1, t)), static_cast<float>(1.0 - power(beta2, t))};
}

}  // namespace detdl::cpu
