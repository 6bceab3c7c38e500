// Modules: parameter-holding building blocks over engine/ops. A Module owns its
// parameters (trainable) and buffers (running statistics), names them, and lists them in
// a fixed order (registration order, depth first): that order keys the initialiser's
// Philox streams, the optimizer's state and the checkpoint, so it is part of a model's
// identity.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/init.h"
#include "engine/ops/ops.h"

namespace detdl {

struct NamedTensor {
  std::string name;
  Tensor tensor;
  InitSpec init;  // how a parameter is initialised (ignored for buffers)
};

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  virtual std::string kind() const = 0;

  void train(bool on = true);
  bool training() const { return training_; }

  // All parameters / buffers with dotted names ("0.weight", "block1.bn.running_mean").
  std::vector<NamedTensor> parameters() const;
  std::vector<NamedTensor> buffers() const;
  std::int64_t parameter_count() const;

  // Initialises every parameter from its InitSpec: parameter i (in parameters() order)
  // uses Philox sub-stream i of the init seed. Buffers are reset to their defaults.
  void initialize(std::uint64_t seed);

  // Calls fn on this module and every descendant, depth first in registration order.
  void visit(const std::function<void(Module&)>& fn) { for_each(fn); }
  // Replaces the initialiser of the parameter with dotted name `name`; false if none has it.
  // The doctor's repairs (nets/edits.h) change initialisers before a run initialises.
  bool set_init(const std::string& name, const InitSpec& spec);

  // Moves every parameter and buffer to `d` in place (the module's handles stay valid;
  // gradients are dropped). Initialise first: the initialisers run on the host.
  void to(Device d);
  // The device of the first parameter (or buffer); Device::cpu for a module with neither.
  Device device() const;

 protected:
  // Both return a handle to the new tensor (handles alias: the module keeps the same one).
  Tensor add_parameter(std::string name, Shape shape, InitSpec init);
  Tensor add_buffer(std::string name, Tensor value);
  template <class M>
  M& add_child(std::string name, std::shared_ptr<M> m) {
    children_.emplace_back(std::move(name), m);
    return *m;
  }
  virtual void reset_buffers() {}
  void clear_children() { children_.clear(); }

 private:
  void collect(const std::string& prefix, bool params, std::vector<NamedTensor>& out) const;
  void for_each(const std::function<void(Module&)>& fn);

  std::vector<NamedTensor> params_;
  std::vector<NamedTensor> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// y = x W^T + b; W (O, I) Glorot-uniform, b zeros by default (Keras Dense).
class Linear final : public Module {
 public:
  Linear(std::int64_t in, std::int64_t out, bool bias = true,
         InitSpec weight_init = {InitKind::glorot_uniform}, InitSpec bias_init = {InitKind::zeros});
  Tensor forward(const Tensor& x) override;
  std::string kind() const override { return "Linear"; }
  Tensor weight() const { return w_; }

 private:
  Tensor w_, b_;
};

class Conv2d final : public Module {
 public:
  Conv2d(std::int64_t in, std::int64_t out, std::int64_t kernel, ops::Conv2dOptions opt = {},
         bool bias = true, InitSpec weight_init = {InitKind::glorot_uniform},
         InitSpec bias_init = {InitKind::zeros});
  Tensor forward(const Tensor& x) override;
  // forward, then relu and a max pool as one op (ops::conv2d_relu_max_pool2d; Sequential's
  // Conv2d, relu, MaxPool2d in turn): the same bits.
  Tensor forward_relu_max_pool(const Tensor& x, const ops::Pool2dOptions& pool);
  std::string kind() const override { return "Conv2d"; }
  Tensor weight() const { return w_; }

 private:
  ops::Conv2dOptions opt_;
  Tensor w_, b_;
};

// Batch normalisation over (N, C) or (N, C, H, W); momentum in PyTorch's convention.
class BatchNorm final : public Module {
 public:
  // gamma_init: ones by default; the WRN study draws gamma from U(0, 1).
  // keras_moving_stats: Keras 2.2.2's zero-debiased moving averages (ops::KerasMovingStats;
  // three more buffers), which override unbiased_running_var.
  explicit BatchNorm(std::int64_t channels, float momentum = 0.1f, float eps = 1e-5f,
                     bool unbiased_running_var = true, InitSpec gamma_init = {InitKind::ones},
                     bool keras_moving_stats = false);
  Tensor forward(const Tensor& x) override;
  std::string kind() const override { return "BatchNorm"; }

 protected:
  void reset_buffers() override;

 private:
  float momentum_, eps_;
  bool unbiased_, keras_;
  Tensor gamma_, beta_, mean_, var_;
  ops::KerasMovingStats keras_stats_;  // defined when keras_
};

class Act final : public Module {
 public:
  // output: the net's output activation (a sigmoid for BCE), which the doctor's repairs of
  // the hidden activations leave alone.
  explicit Act(Activation a, float alpha = 0.0f, bool output = false)
      : a_(a), alpha_(alpha), output_(output) {}
  // ops::activation, shown to this thread's ActivationObserver when one is installed.
  Tensor forward(const Tensor& x) override;
  std::string kind() const override { return std::string(activation_name(a_)); }
  Activation activation() const { return a_; }
  float alpha() const { return alpha_; }
  bool output() const { return output_; }
  void set_activation(Activation a, float alpha) { a_ = a, alpha_ = alpha; }

 private:
  Activation a_;
  float alpha_;
  bool output_;
};

// Sees the output of every activation layer a forward pass runs on this thread, in forward
// order (the training monitor counts dead units on them: engine/monitor.h). Installed for
// a scope; none is installed by default, and then Act::forward costs one pointer test.
using ActivationObserver = std::function<void(const Act& layer, const Tensor& out)>;
class ActivationObserverScope {
 public:
  explicit ActivationObserverScope(ActivationObserver fn);
  ~ActivationObserverScope();
  ActivationObserverScope(const ActivationObserverScope&) = delete;
  ActivationObserverScope& operator=(const ActivationObserverScope&) = delete;

 private:
  ActivationObserver fn_;
  ActivationObserver* previous_;
};

class MaxPool2d final : public Module {
 public:
  explicit MaxPool2d(ops::Pool2dOptions o) : o_(o) {}
  Tensor forward(const Tensor& x) override { return ops::max_pool2d(x, o_); }
  std::string kind() const override { return "MaxPool2d"; }
  const ops::Pool2dOptions& options() const { return o_; }

 private:
  ops::Pool2dOptions o_;
};

class AvgPool2d final : public Module {
 public:
  explicit AvgPool2d(ops::Pool2dOptions o) : o_(o) {}
  Tensor forward(const Tensor& x) override { return ops::avg_pool2d(x, o_); }
  std::string kind() const override { return "AvgPool2d"; }

 private:
  ops::Pool2dOptions o_;
};

class GlobalAvgPool final : public Module {
 public:
  Tensor forward(const Tensor& x) override { return ops::global_avg_pool2d(x); }
  std::string kind() const override { return "GlobalAvgPool"; }
};

class Flatten final : public Module {
 public:
  Tensor forward(const Tensor& x) override { return ops::flatten(x); }
  std::string kind() const override { return "Flatten"; }
};

class Dropout final : public Module {
 public:
  explicit Dropout(float p) : p_(p) {}
  Tensor forward(const Tensor& x) override { return training() ? ops::dropout(x, p_) : x; }
  std::string kind() const override { return "Dropout"; }

 private:
  float p_;
};

// Runs its children in order; children are named "0", "1", ...
// Layers in turn. A relu layer followed by a max pool runs as one op (ops::relu_max_pool2d:
// the same bits, without the relu's tensor), and a Conv2d before them joins it
// (ops::conv2d_relu_max_pool2d: each sample pooled right after its convolution), unless an
// ActivationObserver is installed (the monitor's probes see every activation layer's output).
class Sequential : public Module {
 public:
  Sequential() = default;
  template <class M>
  Sequential& add(std::shared_ptr<M> m) {
    layers_.push_back(m);
    add_child(std::to_string(layers_.size() - 1), std::move(m));
    return *this;
  }
  template <class M, class... Args>
  Sequential& emplace(Args&&... args) {
    return add(std::make_shared<M>(std::forward<Args>(args)...));
  }
  Tensor forward(const Tensor& x) override;
  std::string kind() const override { return "Sequential"; }
  std::size_t size() const { return layers_.size(); }
  const std::shared_ptr<Module>& layer(std::size_t i) const { return layers_.at(i); }
  // Inserts m before layer `index` (size(): at the end); the children are renamed "0", "1",
  // ... in the new order, which is the parameters' order (and the initialiser's streams).
  void insert(std::size_t index, std::shared_ptr<Module> m);

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace detdl
