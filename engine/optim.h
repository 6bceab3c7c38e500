// Optimizers over a model's parameters. The update of each element is one formula from
// kernels/common/optim_formulas.h (shared with the CUDA kernels); host scalars (the
// learning rate from the schedule, Adam's bias corrections) are computed once per step
// here and passed in. Element-wise updates never depend on the thread count.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/nn.h"
#include "kernels/common/optim_formulas.h"
#include "kernels/common/optim_params.h"

namespace detdl {

struct OptimizerConfig {
  enum class Kind { sgd, adam, rmsprop } kind = Kind::sgd;
  float momentum = 0.0f;               // sgd, rmsprop
  bool nesterov = false;               // sgd
  float weight_decay = 0.0f;           // L2 added to the gradient (adam: see decoupled)
  bool decoupled = false;              // adam: AdamW-style decoupled weight decay
  float beta1 = 0.9f, beta2 = 0.999f;  // adam
  float eps = 1e-8f;                   // adam / rmsprop: PyTorch 1e-8, Keras 1e-7
  float alpha = 0.99f;                 // rmsprop: PyTorch alpha 0.99 (Keras rho 0.9)
  bool keras_form = false;  // the Keras update formulas instead of PyTorch's (see formulas header)
  // Keras's clipvalue: each gradient entry clamped to [-clip_value, clip_value] before the
  // update (0: off). Applied by the trainer (CPU runs).
  float clip_value = 0.0f;
  std::string describe() const;
};
std::string_view optimizer_name(OptimizerConfig::Kind k);
std::optional<OptimizerConfig::Kind> parse_optimizer(std::string_view s);

// At the `emulated` level (kernels/common/impl_choice.h) the drawn implementation replaces
// the configured form: the optimizer family picks each framework's form of the update
// (sgd: PyTorch or Keras; adam: textbook, torch.optim.Adam's code order, or Keras's lr_t;
// rmsprop: PyTorch with eps outside the square root or TensorFlow/Keras with eps inside),
// and the contraction family fuses the formula's a*b+c sites (optim_formulas.h, OptimSite).
// Both are drawn once per step, before any parameter (one framework and one compiled
// kernel update them all). The optimizer is the step's only call of its family, so its
// place is 0 and the form is the same at every step of a run, and for a run resumed from
// a checkpoint with the same impl seed: the state tensors (whose meaning differs between
// the sgd and rmsprop forms) always belong to the form that reads them.
struct OptimizerImpl {
  int form = -1;           // index into the kind's forms; -1: the configured one
  std::uint32_t fuse = 0;  // contraction sites fused (bit per OptimSite)
  bool canonical() const { return form < 0 && fuse == 0; }
};
int optimizer_form_count(OptimizerConfig::Kind k);
std::string_view optimizer_form_name(OptimizerConfig::Kind k, int form);

class Optimizer {
 public:
  Optimizer(std::vector<NamedTensor> params, OptimizerConfig cfg);

  // One update with learning rate lr using the parameters' current .grad; parameters
  // without a gradient are left unchanged.
  void step(float lr);
  // The implementation this step would draw from the run context (the configured one when
  // neither the optimizer nor the contraction family is emulated). Takes the places.
  static OptimizerImpl draw_impl(OptimizerConfig::Kind k);
  void zero_grad();
  // Moves the state (momentum buffers, moments) to `d`, where the parameters must be for
  // step(): on CUDA each update is the cuda:: kernel with the CPU's formula (same bits).
  void to(Device d);
  std::int64_t steps() const { return steps_; }
  const OptimizerConfig& config() const { return cfg_; }

  // State for checkpoints: "<param name>.<slot>" tensors plus the step count.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Restores the state saved by state() (names and shapes must match: a clear error otherwise).
  void load_state(const TensorFile& file, const std::string& prefix, std::int64_t steps);

 private:
  // The configured update of a CUDA parameter.
  void step_on_gpu(std::int64_t n, Tensor& p, const Tensor& g,
                   std::vector<std::pair<std::string, Tensor>>& s, float lr, float bc1, float bc2);
  // The drawn implementation's parameters (form -1: the configured one), for either device.
  struct VariantParams {
    SgdParams sgd;
    AdamParams adam;
    AdamForm form = AdamForm::textbook;
    RmspropParams rmsprop;
  };
  VariantParams variant_params(float lr, float bc1, float bc2, const OptimizerImpl& impl) const;
  // One parameter's update on the host arrays with the drawn implementation.
  void step_variant(std::int64_t n, float* p, const float* g, float* s0, float* s1, float lr,
                    float bc1, float bc2, const OptimizerImpl& impl) const;
  // The same for a CUDA parameter, on the CUDA variants (kernels/cuda/optim.h): the CPU's bits.
  void step_variant_on_gpu(std::int64_t n, Tensor& p, const Tensor& g,
                           std::vector<std::pair<std::string, Tensor>>& s, float lr, float bc1,
                           float bc2, const OptimizerImpl& impl) const;

  std::vector<NamedTensor> params_;
  OptimizerConfig cfg_;
  std::vector<std::vector<std::pair<std::string, Tensor>>> slots_;  // per parameter
  std::int64_t steps_ = 0;
};

}  // namespace detdl
