#include "engine/nn.h"

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>

namespace detdl {

void Module::train(bool on) {
  for_each([on](Module& m) { m.training_ = on; });
}

void Module::for_each(const std::function<void(Module&)>& fn) {
  fn(*this);
  for (auto& [name, child] : children_) child->for_each(fn);
}

Tensor Module::add_parameter(std::string name, Shape shape, InitSpec init) {
  Tensor t = Tensor::zeros(shape);
  t.set_requires_grad(true);
  params_.push_back({std::move(name), t, init});
  return t;
}

Tensor Module::add_buffer(std::string name, Tensor value) {
  buffers_.push_back({std::move(name), value, {}});
  return value;
}

void Module::collect(const std::string& prefix, bool params, std::vector<NamedTensor>& out) const {
  for (const auto& nt : params ? params_ : buffers_)
    out.push_back({prefix + nt.name, nt.tensor, nt.init});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, out);
}

std::vector<NamedTensor> Module::parameters() const {
  std::vector<NamedTensor> out;
  collect("", true, out);
  return out;
}

std::vector<NamedTensor> Module::buffers() const {
  std::vector<NamedTensor> out;
  collect("", false, out);
  return out;
}

std::int64_t Module::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.tensor.numel();
  return n;
}

void Module::initialize(std::uint64_t seed) {
  // The initialisers draw on the host (the same bits on every device), then the tensors go back.
  const Device d = device();
  to(Device::cpu);
  auto ps = parameters();
  for (std::size_t i = 0; i < ps.size(); ++i)
    detdl::initialize(ps[i].tensor, ps[i].init, seed, static_cast<std::uint32_t>(i));
  for_each([](Module& m) { m.reset_buffers(); });
  to(d);
}

void Module::to(Device d) {
  for (auto& p : parameters()) p.tensor.move_to(d);
  for (auto& b : buffers()) b.tensor.move_to(d);
}

Device Module::device() const {
  for (const auto& p : parameters()) return p.tensor.device();
  for (const auto& b : buffers()) return b.tensor.device();
  return Device::cpu;
}

Linear::Linear(std::int64_t in, std::int64_t out, bool bias, InitSpec wi, InitSpec bi) {
  w_ = add_parameter("weight", {out, in}, wi);
  if (bias) b_ = add_parameter("bias", {out}, bi);
}

Tensor Linear::forward(const Tensor& x) { return ops::linear(x, w_, b_); }

Conv2d::Conv2d(std::int64_t in, std::int64_t out, std::int64_t kernel, ops::Conv2dOptions opt,
               bool bias, InitSpec wi, InitSpec bi)
    : opt_(opt) {
  w_ = add_parameter("weight", {out, in, kernel, kernel}, wi);
  if (bias) b_ = add_parameter("bias", {out}, bi);
}

Tensor Conv2d::forward(const Tensor& x) { return ops::conv2d(x, w_, b_, opt_); }
Tensor Conv2d::forward_relu_max_pool(const Tensor& x, const ops::Pool2dOptions& pool) {
  return ops::conv2d_relu_max_pool2d(x, w_, b_, opt_, pool);
}

BatchNorm::BatchNorm(std::int64_t channels, float momentum, float eps, bool unbiased,
                     InitSpec gamma_init, bool keras_moving_stats)
    : momentum_(momentum), eps_(eps), unbiased_(unbiased), keras_(keras_moving_stats) {
  gamma_ = add_parameter("weight", {channels}, gamma_init);
  beta_ = add_parameter("bias", {channels}, {InitKind::zeros});
  mean_ = add_buffer("running_mean", Tensor::zeros({channels}));
  var_ = add_buffer("running_var", Tensor::full({channels}, 1.0f));
  if (keras_) {
    keras_stats_.biased_mean = add_buffer("keras_biased_mean", Tensor::zeros({channels}));
    keras_stats_.biased_var = add_buffer("keras_biased_var", Tensor::zeros({channels}));
    keras_stats_.steps = add_buffer("keras_steps", Tensor::zeros({1}));
  }
}

void BatchNorm::reset_buffers() {
  float* m = mean_.f32();
  float* v = var_.f32();
  for (std::int64_t i = 0; i < mean_.numel(); ++i) {
    m[i] = 0.0f;
    v[i] = 1.0f;
  }
  if (keras_)
    for (Tensor* t : {&keras_stats_.biased_mean, &keras_stats_.biased_var, &keras_stats_.steps})
      for (std::int64_t i = 0; i < t->numel(); ++i) t->f32()[i] = 0.0f;
}

Tensor BatchNorm::forward(const Tensor& x) {
  return ops::batch_norm(x, gamma_, beta_, mean_, var_, training(), momentum_, eps_, unbiased_,
                         keras_ ? &keras_stats_ : nullptr);
}

namespace {
thread_local ActivationObserver* activation_observer = nullptr;
}  // namespace

ActivationObserverScope::ActivationObserverScope(ActivationObserver fn)
    : fn_(std::move(fn)), previous_(activation_observer) {
  activation_observer = &fn_;
}

ActivationObserverScope::~ActivationObserverScope() { activation_observer = previous_; }

Tensor Act::forward(const Tensor& x) {
  Tensor y = ops::activation(x, a_, alpha_);
  if (activation_observer != nullptr) (*activation_observer)(*this, y);
  return y;
}

void Sequential::insert(std::size_t index, std::shared_ptr<Module> m) {
  if (index > layers_.size())
    throw std::out_of_range("Sequential::insert: index " + std::to_string(index) + " past " +
                            std::to_string(layers_.size()) + " layers");
  layers_.insert(layers_.begin() + static_cast<std::ptrdiff_t>(index), std::move(m));
  clear_children();
  for (std::size_t i = 0; i < layers_.size(); ++i) add_child(std::to_string(i), layers_[i]);
}

bool Module::set_init(const std::string& name, const InitSpec& spec) {
  for (auto& p : params_)
    if (p.name == name) {
      p.init = spec;
      return true;
    }
  for (auto& [child, m] : children_) {
    const std::string prefix = child + ".";
    if (name.rfind(prefix, 0) == 0 && m->set_init(name.substr(prefix.size()), spec)) return true;
  }
  return false;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (i + 2 < layers_.size() && activation_observer == nullptr) {
      auto* conv = dynamic_cast<Conv2d*>(layers_[i].get());
      const auto* act = dynamic_cast<const Act*>(layers_[i + 1].get());
      const auto* pool = dynamic_cast<const MaxPool2d*>(layers_[i + 2].get());
      if (conv != nullptr && act != nullptr && pool != nullptr &&
          act->activation() == Activation::relu) {
        h = conv->forward_relu_max_pool(h, pool->options());
        i += 2;
        continue;
      }
    }
    if (i + 1 < layers_.size() && activation_observer == nullptr) {
      const auto* act = dynamic_cast<const Act*>(layers_[i].get());
      const auto* pool = dynamic_cast<const MaxPool2d*>(layers_[i + 1].get());
      if (act != nullptr && pool != nullptr && act->activation() == Activation::relu) {
        h = ops::relu_max_pool2d(h, pool->options());
        ++i;
        continue;
      }
    }
    h = layers_[i]->forward(h);
  }
  return h;
}

}  // namespace detdl
