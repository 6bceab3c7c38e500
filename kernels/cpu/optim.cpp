#include "kernels/cpu/optim.h"

#include <algorithm>

#include "kernels/common/optim_formulas.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

// Fixed blocks of elements, one task each (a single block runs on the calling thread).
constexpr i64 kGrain = 1 << 15;

template <class F>
void for_elements(i64 n, F f) {
  const i64 blocks = (n + kGrain - 1) / kGrain;
  auto run_block = [&](i64 t) {
    const i64 e = std::min(n, (t + 1) * kGrain);
    for (i64 i = t * kGrain; i < e; ++i) f(i);
  };
  if (blocks <= 1) {
    if (n > 0) run_block(0);
    return;
  }
  parallel_for(blocks, run_block);
}

}  // namespace

void sgd_update(i64 n, float* p, const float* g, float* buf, const SgdParams& s) {
  if (s.keras)
    for_elements(n, [&](i64 i) {
      sgd_element_keras(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov);
    });
  else
    for_elements(n, [&](i64 i) {
      sgd_element(p[i], g[i], buf[i], s.lr, s.momentum, s.weight_decay, s.nesterov, s.first);
    });
}

void adam_update(i64 n, float* p, const float* g, float* m, float* v, const AdamParams& a) {
  if (a.keras) {
    const float lr_t = adam_keras_lr(a.lr, a.bc1, a.bc2);
    for_elements(n, [&](i64 i) {
      adam_element_keras(p[i], g[i], m[i], v[i], lr_t, a.lr, a.beta1, a.beta2, a.eps,
                         a.weight_decay, a.decoupled);
    });
  } else {
    for_elements(n, [&](i64 i) {
      adam_element(p[i], g[i], m[i], v[i], a.lr, a.beta1, a.beta2, a.eps, a.bc1, a.bc2,
                   a.weight_decay, a.decoupled);
    });
  }
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
