// The optimizers' per-call parameters, shared by the CPU (kernels/cpu/optim.h) and CUDA
// (kernels/cuda/optim.h) updates, which give every element the same bits.
#pragma once

namespace detdl {

// first: this is the optimizer's first step (PyTorch's momentum buffer starts as g').
// keras: Keras's formula (sgd_element_keras) instead of PyTorch's.
struct SgdParams {
  float lr, momentum, weight_decay;
  bool nesterov, first, keras;
};

// bc1, bc2 from adam_bias_corrections for this step. keras: Keras's formula with
// lr_t = adam_keras_lr(lr, bc1, bc2) computed once per call.
struct AdamParams {
  float lr, beta1, beta2, eps, bc1, bc2, weight_decay;
  bool decoupled, keras;
};

// alpha is Keras's rho when keras is set.
struct RmspropParams {
  float lr, alpha, eps, momentum, weight_decay;
  bool keras = false;
};

}  // namespace detdl
