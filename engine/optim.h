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
  std::string describe() const;
};
std::string_view optimizer_name(OptimizerConfig::Kind k);
std::optional<OptimizerConfig::Kind> parse_optimizer(std::string_view s);

class Optimizer {
 public:
  Optimizer(std::vector<NamedTensor> params, OptimizerConfig cfg);

  // One update with learning rate lr using the parameters' current .grad; parameters
  // without a gradient are left unchanged.
  void step(float lr);
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
  void step_on_gpu(std::int64_t n, Tensor& p, const Tensor& g,
                   std::vector<std::pair<std::string, Tensor>>& s, float lr, float bc1, float bc2);

  std::vector<NamedTensor> params_;
  OptimizerConfig cfg_;
  std::vector<std::vector<std::pair<std::string, Tensor>>> slots_;  // per parameter
  std::int64_t steps_ = 0;
};

}  // namespace detdl
