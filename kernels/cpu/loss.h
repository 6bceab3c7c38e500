// Softmax, losses and weight penalties on the CPU. Transcendentals are detmath.h's
// (det_expf, det_logf, det_log1pf); no libm call.
//
// Reduction orders (the determinism contract, docs/determinism.md). Every sum below is a
// canonical sum of values (chunks of kChunkValues = 256, plain adds from +0.0f in index
// order, pairwise tree over chunks); a mean divides the root by the float count after it.
//   softmax row i:   m = max_k x[i][k] (k ascending; a NaN logit makes the row NaN),
//                    e_k = det_expf(x[i][k] - m), s = sum over k = 0..K-1 of e_k,
//                    p_k = e_k / s.
//   cross-entropy:   loss_i = det_logf(s_i) - (x[i][label_i] - m_i);
//                    mean = (sum over samples i = 0..N-1 of loss_i) / N;
//                    dlogits[i][k] = (p_k - [k == label_i]) / N.
//   BCE, MSE:        mean = (sum over elements i = 0..n-1 of loss_i) / n.
//   penalties:       sum over elements of |w_i| (l1) or of w_i * w_i (l2, the product
//                    rounded, then added).
// Per-row and per-element work is split across threads by rows / element ranges and
// never depends on the thread count. The means and penalty sums (OpFamily::loss_reduce):
//   `portable` / `repeatable`: the canonical sum (chunk partials may be computed on
//     different threads; they are combined in the tree in chunk order).
//   `fast` with 2+ threads and n >= 1024 terms: the index range is cut into pieces handed
//     to threads dynamically (parallel_dynamic); each worker adds its pieces' terms into
//     one running partial in the order it got them; the partials are added from +0.0f in
//     worker index order. Which pieces land in which partial depends on timing, so 2+
//     threads give run-to-run variation. With 1 thread, `fast` equals `portable`.
// Gradients are written (=), except the *_grad_add helpers, which add (+=).
#pragma once
#include <cstdint>

#include "kernels/common/cross_entropy.h"
#include "kernels/common/impl_choice.h"
#include "kernels/common/level.h"
#include "kernels/cpu/emulated_reduce.h"

namespace detdl::cpu {

// Row-wise softmax (see the order above). Element-wise per row: no Level.
void softmax_forward(std::int64_t N, std::int64_t K,
                     const float* logits,  // (N, K)
                     float* probs);        // (N, K)

// Softmax cross-entropy with integer labels; returns the mean loss. loss_per_sample and
// dlogits may be nullptr. Labels outside [0, K) throw std::invalid_argument naming the
// sample index and the label (checked before anything is written). form: the exact
// cross-entropy of the logits (above), or Keras's clipped categorical cross-entropy of the
// softmax output (kernels/common/cross_entropy.h: p_k = e_k / s as softmax_forward, S = the
// canonical sum of the p_k, loss_i = -det_logf(clip(p_y / S)), dlogits = (p_k / S -
// [k == y]) / N inside the clip and 0 outside); the mean is the same canonical sum / N.
// probs, where given, receives the softmax p_k = e_k / s on the way: softmax_forward's
// values bit for bit, so a caller that needs both (the BUTTER metrics on a training batch)
// does not take the exponentials twice.
float softmax_cross_entropy(Level level, std::int64_t N, std::int64_t K,
                            const float* logits,         // (N, K)
                            const std::int32_t* labels,  // (N)
                            float* loss_per_sample,      // (N) or nullptr
                            float* dlogits,              // (N, K) or nullptr
                            CrossEntropyForm form = CrossEntropyForm::exact,
                            float* probs = nullptr);  // (N, K) or nullptr

// Binary cross-entropy averaged over n elements; returns the mean.
// from_logits (the stable form): with a = |x| and e = det_expf(-a),
//   loss = ((x > 0 ? x : 0) - x * t) + det_log1pf(e)
//   sigmoid = x >= 0 ? 1 / (1 + e) : e / (1 + e);  dinput = (sigmoid - t) / n
// from probabilities: q = clamp(x, eps, 1 - eps) with eps = 1e-7f (Keras's epsilon);
//   loss = -((t * det_logf(q)) + ((1 - t) * det_logf(1 - q)))
//   dinput = ((q - t) / (q * (1 - q))) / n where eps <= x <= 1 - eps, else 0 (the
//   clamp's gradient, as TensorFlow's clip_by_value: it passes at the bounds).
float binary_cross_entropy(Level level, std::int64_t n,
                           const float* input,   // (n) logits or probabilities
                           const float* target,  // (n)
                           bool from_logits,
                           float* loss_per_element,  // (n) or nullptr
                           float* dinput);           // (n) or nullptr

// Mean squared error: d = p - t, loss = d * d, mean over n; dpred = (2 * d) / n.
float mean_squared_error(Level level, std::int64_t n,
                         const float* pred,        // (n)
                         const float* target,      // (n)
                         float* loss_per_element,  // (n) or nullptr
                         float* dpred);            // (n) or nullptr

// Penalty sums (the caller multiplies by lambda after the root).
float l1_penalty(Level level, std::int64_t n, const float* w);  // sum |w|;  w: (n)
float l2_penalty(Level level, std::int64_t n, const float* w);  // sum w*w;  w: (n)

// g = g + lambda * sign(w); sign(0) = 0 (either zero), sign(NaN) = NaN.
void l1_penalty_grad_add(std::int64_t n,
                         const float* w,  // (n)
                         float lambda,
                         float* g);  // (n) accumulated
// g = g + (2 * lambda) * w, (2 * lambda) computed once: the gradient of lambda * sum(w^2),
// which is Keras's l2(lambda) regulariser. (PyTorch's weight_decay wd adds wd * w to the
// gradient, i.e. it is the gradient of (wd / 2) * sum(w^2).)
void l2_penalty_grad_add(std::int64_t n,
                         const float* w,  // (n)
                         float lambda,
                         float* g);  // (n) accumulated

// ---- The `emulated` level (kernels/common/impl_choice.h) ----
// One loss call's implementation, drawn per place from three families. Each alternative is
// a real implementation, within the float64 tolerances of the canonical one
// (tests/kernels/test_emulated_loss.cpp); LossImpl{} is the canonical kernel, bit for bit.
//   ImplFamily::loss (decisions 0, 1, 2, 3):
//     subtract_max = false: softmax without the max subtracted, e_k = exp(x_k), as cuDNN's
//       CUDNN_SOFTMAX_FAST. Guard: a row whose max logit is above 80 or below -80 (or NaN)
//       subtracts the max anyway, so exp(x) cannot overflow (exp(88.7) is inf) or the
//       whole row underflow to s = 0; within the guard the two forms agree to float64
//       tolerance. Cross-entropy then uses m = 0.
//     log_of_softmax = true: cross-entropy as -log(p_y), p_y = e_y / s, as Keras's
//       categorical_crossentropy on probabilities; p_y == 0 (underflow) falls back to the
//       log-softmax form log(s) - (x_y - m), which is finite.
//     reciprocal_mean = true: a mean as root * (1 / n) and the gradient's 1/n as a multiply
//       by (1 / n), the reciprocal computed once (as many GPU kernels do), instead of / n.
//     log_softmax_grad = true: the cross-entropy gradient as PyTorch's nll_loss backward
//       then log_softmax backward: g = -1 / N (-weight / total_weight), l_k = (x_k - m) -
//       log(s), dlogits_k = ([k == y] ? g : 0) - exp(l_k) * g (reciprocal_mean unused).
//   ImplFamily::math (decision 0): exp, log and log1p from detmath_alt.h (another libm or
//     GPU intrinsics) instead of detmath.h. One coin for all three, as one library supplies
//     them all (and as activation.cpp draws); LossImpl keeps a flag per function so the
//     tests can check each. In softmax cross-entropy only exp reaches the gradient (log(s)
//     is the reported loss alone), so a net whose only math site is its cross-entropy
//     varies its weights through exp only.
//   ImplFamily::reduce: the loss mean's and the penalty sum's tree shape (emulated_reduce.h).
//     The softmax row sums over K stay canonical (one warp's chain for K <= 256).
// The emulated kernels ignore Level: they are thread-count invariant at any level.
struct LossImpl {
  bool subtract_max = true;
  bool log_of_softmax = false;
  bool reciprocal_mean = false;
  bool log_softmax_grad = false;
  bool alt_exp = false, alt_log = false, alt_log1p = false;
  ReduceShape reduce = ReduceShape::canonical;
  ImplDraw reduce_draw{};  // block_atomic's per-step arrival order
};

// The draw -> choice mapping; a null draw leaves that family canonical.
LossImpl loss_impl(const ImplDraw* loss, const ImplDraw* math, const ImplDraw* reduce);

void softmax_forward(const LossImpl& impl, std::int64_t N, std::int64_t K,
                     const float* logits,  // (N, K)
                     float* probs);        // (N, K)
// keras_clipped takes subtract_max, the math family's log and exp, reciprocal_mean and the
// reduce shape; log_of_softmax and log_softmax_grad do not apply (it is -log(p) already).
float softmax_cross_entropy(const LossImpl& impl, std::int64_t N, std::int64_t K,
                            const float* logits,         // (N, K)
                            const std::int32_t* labels,  // (N)
                            float* loss_per_sample,      // (N) or nullptr
                            float* dlogits,              // (N, K) or nullptr
                            CrossEntropyForm form = CrossEntropyForm::exact);
float binary_cross_entropy(const LossImpl& impl, std::int64_t n,
                           const float* input,   // (n) logits or probabilities
                           const float* target,  // (n)
                           bool from_logits,
                           float* loss_per_element,  // (n) or nullptr
                           float* dinput);           // (n) or nullptr
float mean_squared_error(const LossImpl& impl, std::int64_t n,
                         const float* pred,                              // (n)
                         const float* target,                            // (n)
                         float* loss_per_element,                        // (n) or nullptr
                         float* dpred);                                  // (n) or nullptr
float l1_penalty(const LossImpl& impl, std::int64_t n, const float* w);  // w: (n)
float l2_penalty(const LossImpl& impl, std::int64_t n, const float* w);  // w: (n)

}  // namespace detdl::cpu
