// The engine's differentiable ops. Each op computes its forward on its inputs' device: a
// CPU kernel from kernels/cpu/, a CUDA kernel through the door engine/cuda_backend.h, or
// under --impl vendor a vendor library's, as engine/ops/dispatch.h routes it (the level
// comes from this thread's RunContext, per op family), and records its backward on the
// tape (engine/autograd.h), which runs on the same device. Shape letters: N batch, C channels, H, W,
// K reduction length / classes, O outputs.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"
#include "kernels/common/activation.h"
#include "kernels/common/cross_entropy.h"

namespace detdl::ops {

// ---- element-wise arithmetic (same shapes; no broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);  // a + b (the residual add)
Tensor sub(const Tensor& a, const Tensor& b);  // a - b
Tensor mul(const Tensor& a, const Tensor& b);  // a * b
Tensor scale(const Tensor& a, float s);        // a * s
Tensor sum(const Tensor& a);                   // () canonical sum of all elements
Tensor mean(const Tensor& a);                  // () sum / numel

// ---- shapes ----
Tensor reshape(const Tensor& x, Shape shape);  // one -1 allowed
Tensor flatten(const Tensor& x);               // (N, ...) -> (N, prod(...))
Tensor concat(const std::vector<Tensor>& xs, int axis);

// ---- dense ----
Tensor matmul(const Tensor& a, const Tensor& b);  // (M,K) x (K,N) -> (M,N)
Tensor linear(const Tensor& x, const Tensor& w,
              const Tensor& b);  // x (N,I), w (O,I), b (O) or undefined -> (N,O)

// ---- activations ----
Tensor activation(const Tensor& x, Activation kind, float alpha = 0.0f);
inline Tensor relu(const Tensor& x) { return activation(x, Activation::relu); }
inline Tensor leaky_relu(const Tensor& x, float alpha = 0.01f) {
  return activation(x, Activation::leaky_relu, alpha);
}
inline Tensor elu(const Tensor& x, float alpha = 1.0f) {
  return activation(x, Activation::elu, alpha);
}
inline Tensor selu(const Tensor& x) { return activation(x, Activation::selu); }
inline Tensor tanh(const Tensor& x) { return activation(x, Activation::tanh); }
inline Tensor sigmoid(const Tensor& x) { return activation(x, Activation::sigmoid); }
Tensor softmax(const Tensor& logits);  // (N, K) -> (N, K); not differentiable (use the losses)

// ---- convolution and pooling (NCHW) ----
struct Conv2dOptions {
  std::int64_t stride = 1;
  std::int64_t pad = 0;  // symmetric padding (ignored when same = true)
  bool same = false;     // Keras/TensorFlow 'same' padding (may be asymmetric)
};
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b,
              const Conv2dOptions& o);  // x (N,C,H,W), w (O,C,KH,KW), b (O) or undefined
struct Pool2dOptions {
  std::int64_t kernel = 2;
  std::int64_t stride = 2;
  std::int64_t pad = 0;
  bool same = false;
  bool count_include_pad = false;  // average pooling only
};
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o);
// max_pool2d(relu(x), o) without the relu's tensor (LeNet's relu layer then max pool; the
// engine's Sequential fuses the two): bit for bit the two ops in turn, forward and backward
// (kernels/cpu/pool.h relu_maxpool2d_*). CUDA tensors run the two ops in turn.
Tensor relu_max_pool2d(const Tensor& x, const Pool2dOptions& o);
// relu_max_pool2d(conv2d(x, w, b, co), po) with each sample pooled right after its
// convolution, while in cache (engine/ops/conv_pool.cpp; Sequential fuses a Conv2d, relu and
// max pool in turn): bit for bit the two ops, forward and backward, recording their nodes.
// Where conv2d would not run the CPU's direct kernels (CUDA, `emulated` draws, other
// shapes), the two ops in turn.
Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& w, const Tensor& b,
                              const Conv2dOptions& co, const Pool2dOptions& po);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o);
Tensor global_avg_pool2d(const Tensor& x);  // (N,C,H,W) -> (N,C)

// ---- normalisation ----
// Keras 2.2.2's zero-debiased moving statistics (kernels/common/batchnorm_keras.h): the
// accumulators and the step count, buffers of the layer.
struct KerasMovingStats {
  Tensor biased_mean, biased_var;  // (C), start at 0
  Tensor steps;                    // (1), starts at 0
};
// x: (N, C) or (N, C, H, W). Training: batch statistics, running stats updated in place
// (running = running*(1-momentum) + batch*momentum; with `keras`, Keras 2.2.2's debiased
// update instead, always on detdl's own kernels). Eval: running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                  Tensor& running_var, bool training, float momentum, float eps,
                  bool unbiased_running_var = true, KerasMovingStats* keras = nullptr);

// ---- regularisation ----
// Inverted dropout keyed by (dropout seed, step, layer, element) from the RunContext;
// identity when not training or p == 0.
Tensor dropout(const Tensor& x, float p);

// ---- losses (return a () scalar: the mean over the batch) ----
// form: exact (from the logits) or Keras's clipped form (kernels/common/cross_entropy.h).
Tensor softmax_cross_entropy(const Tensor& logits,  // (N, K)
                             const Tensor& labels,  // (N) int32
                             CrossEntropyForm form = CrossEntropyForm::exact);
Tensor binary_cross_entropy(const Tensor& input, const Tensor& targets,
                            bool from_logits);                        // same shapes
Tensor mean_squared_error(const Tensor& pred, const Tensor& target);  // same shapes
Tensor l1_penalty(const Tensor& w, float lambda);                     // lambda * sum |w|
Tensor l2_penalty(const Tensor& w, float lambda);                     // lambda * sum w^2

}  // namespace detdl::ops
