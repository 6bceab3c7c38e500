// The two forms of softmax cross-entropy with integer labels, and the per-row arithmetic of
// Keras's form, written once for the CPU kernels (exact and emulated) and the CUDA kernel.
//
// exact: the cross-entropy of the logits, loss = log(s) - (x_y - m) with s the row's
//   canonical sum of exp(x_k - m); gradient p_k - [k == y]. (PyTorch's cross_entropy,
//   tf.nn.softmax_cross_entropy_with_logits.)
// keras_clipped: Keras 2.2.2's categorical_crossentropy on the softmax output, as the
//   dl-variance models were compiled (softmax activation + loss on probabilities; the
//   TensorFlow backend's keras/backend/tensorflow_backend.py):
//     p = softmax(x);  q = p / sum_k p_k;  q = clip_by_value(q, eps, 1 - eps);
//     loss = -sum_k t_k log(q_k)  =  -log(q_y) for a one-hot t,
//   with eps = 1e-7 (K.epsilon()). A sample whose q_y is below eps (a confidently wrong
//   sample) or above 1 - eps gets a loss of at most -log(1e-7) = 16.12 and a zero gradient:
//   TensorFlow's clip passes the gradient only where eps <= q <= 1 - eps (the bounds
//   included). Inside, the chain rule through the log, the division by S = sum_k p_k and
//   the softmax simplifies exactly to dx_k = p_k / S - [k == y]; detdl evaluates that closed
//   form (TensorFlow's float32 ops round differently: the semantics, clip region and all,
//   are Keras's, the bits are detdl's canonical ones).
#pragma once
#include <cstdint>

#include "kernels/common/hd.h"
#include "kernels/common/reduction.h"

namespace detdl {

enum class CrossEntropyForm { exact, keras_clipped };

// K.epsilon() in Keras 2.2.2, and 1 - eps as float32 computes it (0.99999988f).
constexpr float kKerasEpsilon = 1e-7f;
constexpr float kKerasOneMinusEpsilon = 1.0f - kKerasEpsilon;

struct KerasRow {
  float loss;   // -log(clip(q_y))
  float sum;    // S = canonical sum of the row's probabilities
  bool active;  // eps <= q_y <= 1 - eps: the gradient passes the clip
};

// One row of keras_clipped. p: (K) the row's softmax probabilities; log: the logarithm
// (det_logf, or the emulated level's alternative).
template <class Log>
DETDL_HD KerasRow keras_row(const float* p, std::int64_t K, std::int32_t label, Log log) {
  const float S = canonical_sum(p, K);
  const float q = p[label] / S;
  const bool below = q<kKerasEpsilon, above = q> kKerasOneMinusEpsilon;
  const float clipped = below ? kKerasEpsilon : (above ? kKerasOneMinusEpsilon : q);
  return {-log(clipped), S, !(below || above)};
}

// The gradient of keras_row for logit k, divided by the batch count by `mean`.
template <class Mean>
DETDL_HD float keras_grad(const KerasRow& r, float p_k, bool is_label, Mean mean) {
  return r.active ? mean(p_k / r.sum - (is_label ? 1.0f : 0.0f)) : 0.0f;
}

}  // namespace detdl
