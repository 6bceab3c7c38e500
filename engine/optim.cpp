#include "engine/optim.h"

#include <cstring>
#include <sstream>
#include <stdexcept>

#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "kernels/cpu/optim.h"

namespace detdl {

std::string_view optimizer_name(OptimizerConfig::Kind k) {
  switch (k) {
    case OptimizerConfig::Kind::sgd: return "sgd";
    case OptimizerConfig::Kind::adam: return "adam";
    case OptimizerConfig::Kind::rmsprop: return "rmsprop";
  }
  return "?";
}

std::optional<OptimizerConfig::Kind> parse_optimizer(std::string_view s) {
  for (auto k :
       {OptimizerConfig::Kind::sgd, OptimizerConfig::Kind::adam, OptimizerConfig::Kind::rmsprop})
    if (optimizer_name(k) == s) return k;
  return std::nullopt;
}

std::string OptimizerConfig::describe() const {
  std::ostringstream o;
  o << optimizer_name(kind) << (keras_form ? "[keras]" : "");
  switch (kind) {
    case Kind::sgd:
      o << "(momentum=" << momentum << (nesterov ? ", nesterov" : "") << ", wd=" << weight_decay
        << ")";
      break;
    case Kind::adam:
      o << "(b1=" << beta1 << ", b2=" << beta2 << ", eps=" << eps << ", wd=" << weight_decay
        << (decoupled ? " decoupled" : "") << ")";
      break;
    case Kind::rmsprop:
      o << "(alpha=" << alpha << ", eps=" << eps << ", momentum=" << momentum
        << ", wd=" << weight_decay << ")";
      break;
  }
  return o.str();
}

int optimizer_form_count(OptimizerConfig::Kind k) {
  return k == OptimizerConfig::Kind::adam ? kAdamFormCount : 2;
}

std::string_view optimizer_form_name(OptimizerConfig::Kind k, int form) {
  switch (k) {
    case OptimizerConfig::Kind::sgd: return form == 1 ? "keras" : "torch";
    case OptimizerConfig::Kind::adam: return form == 2 ? "keras" : form == 1 ? "torch" : "textbook";
    case OptimizerConfig::Kind::rmsprop: return form == 1 ? "tf" : "torch";
  }
  return "?";
}

OptimizerImpl Optimizer::draw_impl(OptimizerConfig::Kind k) {
  OptimizerImpl impl;
  if (const auto d = context().impl_draw(ImplFamily::optimizer))
    impl.form = static_cast<int>(d->choose(0, static_cast<std::uint32_t>(optimizer_form_count(k))));
  if (const auto c = context().impl_draw(ImplFamily::contraction))
    for (int b = 0; b < kOptimFuseBits; ++b)
      impl.fuse |= static_cast<std::uint32_t>(c->coin(static_cast<std::uint32_t>(b))) << b;
  return impl;
}

Optimizer::Optimizer(std::vector<NamedTensor> params, OptimizerConfig cfg)
    : params_(std::move(params)), cfg_(cfg) {
  std::vector<const char*> names;
  switch (cfg_.kind) {
    case OptimizerConfig::Kind::sgd: names = {"momentum_buffer"}; break;
    case OptimizerConfig::Kind::adam: names = {"exp_avg", "exp_avg_sq"}; break;
    case OptimizerConfig::Kind::rmsprop: names = {"square_avg", "momentum_buffer"}; break;
  }
  for (const auto& p : params_) {
    std::vector<std::pair<std::string, Tensor>> s;
    for (const char* n : names) s.emplace_back(n, Tensor::zeros(p.tensor.shape()));
    slots_.push_back(std::move(s));
  }
}

void Optimizer::step(float lr) {
  ++steps_;
  const auto [bc1, bc2] = cpu::adam_bias_corrections(cfg_.beta1, cfg_.beta2, steps_);
  const OptimizerImpl impl = draw_impl(cfg_.kind);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].tensor;
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const std::int64_t n = p.numel();
    auto& s = slots_[i];
    const Device dev = same_device({p, g, s[0].second}, "optimizer step");
    if (!impl.canonical()) {
      if (dev == Device::cuda)
        step_variant_on_gpu(n, p, g, s, lr, bc1, bc2, impl);
      else
        step_variant(n, p.f32(), g.f32(), s[0].second.f32(),
                     s.size() > 1 ? s[1].second.f32() : nullptr, lr, bc1, bc2, impl);
      continue;
    }
    if (dev == Device::cuda) {
      step_on_gpu(n, p, g, s, lr, bc1, bc2);
      continue;
    }
    switch (cfg_.kind) {
      case OptimizerConfig::Kind::sgd:
        cpu::sgd_update(
            n, p.f32(), g.f32(), s[0].second.f32(),
            {lr, cfg_.momentum, cfg_.weight_decay, cfg_.nesterov, steps_ == 1, cfg_.keras_form});
        break;
      case OptimizerConfig::Kind::adam:
        cpu::adam_update(n, p.f32(), g.f32(), s[0].second.f32(), s[1].second.f32(),
                         {lr, cfg_.beta1, cfg_.beta2, cfg_.eps, bc1, bc2, cfg_.weight_decay,
                          cfg_.decoupled, cfg_.keras_form});
        break;
      case OptimizerConfig::Kind::rmsprop:
        cpu::rmsprop_update(n, p.f32(), g.f32(), s[0].second.f32(), s[1].second.f32(),
                            {lr, cfg_.alpha, cfg_.eps, cfg_.momentum, cfg_.weight_decay});
        break;
    }
  }
}

void Optimizer::step_on_gpu(std::int64_t n, Tensor& p, const Tensor& g,
                            std::vector<std::pair<std::string, Tensor>>& s, float lr, float bc1,
                            float bc2) {
  // The configured rmsprop is always PyTorch's.
  const bool keras = cfg_.keras_form && cfg_.kind != OptimizerConfig::Kind::rmsprop;
  switch (cfg_.kind) {
    case OptimizerConfig::Kind::sgd:
      gpu::sgd_update(n, p.data_f32(), g.data_f32(), s[0].second.data_f32(),
                      {lr, cfg_.momentum, cfg_.weight_decay, cfg_.nesterov, steps_ == 1, keras});
      break;
    case OptimizerConfig::Kind::adam:
      gpu::adam_update(n, p.data_f32(), g.data_f32(), s[0].second.data_f32(),
                       s[1].second.data_f32(),
                       {lr, cfg_.beta1, cfg_.beta2, cfg_.eps, bc1, bc2, cfg_.weight_decay,
                        cfg_.decoupled, keras});
      break;
    case OptimizerConfig::Kind::rmsprop: {
      RmspropParams r{lr, cfg_.alpha, cfg_.eps, cfg_.momentum, cfg_.weight_decay};
      r.keras = keras;
      gpu::rmsprop_update(n, p.data_f32(), g.data_f32(), s[0].second.data_f32(),
                          s[1].second.data_f32(), r);
      break;
    }
  }
}

Optimizer::VariantParams Optimizer::variant_params(float lr, float bc1, float bc2,
                                                   const OptimizerImpl& impl) const {
  const bool drawn = impl.form >= 0;
  VariantParams v;
  v.sgd = {lr,
           cfg_.momentum,
           cfg_.weight_decay,
           cfg_.nesterov,
           steps_ == 1,
           drawn ? impl.form == 1 : cfg_.keras_form};
  v.form = drawn ? static_cast<AdamForm>(impl.form)
                 : (cfg_.keras_form ? AdamForm::keras : AdamForm::textbook);
  v.adam = {lr,
            cfg_.beta1,
            cfg_.beta2,
            cfg_.eps,
            bc1,
            bc2,
            cfg_.weight_decay,
            cfg_.decoupled,
            v.form == AdamForm::keras};
  // The configured run never reads keras_form for rmsprop (step() passes PyTorch's form):
  // the drawn form only replaces it at `emulated`.
  v.rmsprop = {lr, cfg_.alpha, cfg_.eps, cfg_.momentum, cfg_.weight_decay};
  v.rmsprop.keras = drawn && impl.form == 1;
  return v;
}

void Optimizer::step_variant(std::int64_t n, float* p, const float* g, float* s0, float* s1,
                             float lr, float bc1, float bc2, const OptimizerImpl& impl) const {
  const VariantParams v = variant_params(lr, bc1, bc2, impl);
  switch (cfg_.kind) {
    case OptimizerConfig::Kind::sgd: cpu::sgd_update(n, p, g, s0, v.sgd, impl.fuse); break;
    case OptimizerConfig::Kind::adam:
      cpu::adam_update(n, p, g, s0, s1, v.adam, v.form, impl.fuse);
      break;
    case OptimizerConfig::Kind::rmsprop:
      cpu::rmsprop_update(n, p, g, s0, s1, v.rmsprop, impl.fuse);
      break;
  }
}

void Optimizer::step_variant_on_gpu(std::int64_t n, Tensor& p, const Tensor& g,
                                    std::vector<std::pair<std::string, Tensor>>& s, float lr,
                                    float bc1, float bc2, const OptimizerImpl& impl) const {
  const VariantParams v = variant_params(lr, bc1, bc2, impl);
  float* s0 = s[0].second.data_f32();
  float* s1 = s.size() > 1 ? s[1].second.data_f32() : nullptr;
  switch (cfg_.kind) {
    case OptimizerConfig::Kind::sgd:
      gpu::sgd_update(n, p.data_f32(), g.data_f32(), s0, v.sgd, impl.fuse);
      break;
    case OptimizerConfig::Kind::adam:
      gpu::adam_update(n, p.data_f32(), g.data_f32(), s0, s1, v.adam, v.form, impl.fuse);
      break;
    case OptimizerConfig::Kind::rmsprop:
      gpu::rmsprop_update(n, p.data_f32(), g.data_f32(), s0, s1, v.rmsprop, impl.fuse);
      break;
  }
}

void Optimizer::to(Device d) {
  for (auto& slots : slots_)
    for (auto& [name, t] : slots) t.move_to(d);
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.tensor.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> Optimizer::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (std::size_t i = 0; i < params_.size(); ++i)
    for (const auto& [slot, t] : slots_[i]) out.emplace_back(params_[i].name + "." + slot, t);
  return out;
}

void Optimizer::load_state(const TensorFile& file, const std::string& prefix, std::int64_t steps) {
  for (std::size_t i = 0; i < params_.size(); ++i)
    for (auto& [slot, t] : slots_[i]) {
      const std::string name = prefix + params_[i].name + "." + slot;
      const Tensor* src = file.find(name);
      if (!src)
        throw std::runtime_error("optimizer state: the checkpoint has no tensor " + name +
                                 " (saved with another optimizer?)");
      if (src->shape() != t.shape())
        throw std::runtime_error("optimizer state: " + name + " has shape " +
                                 shape_str(src->shape()) + ", expected " + shape_str(t.shape()));
      const Device d = t.device();  // the state may live on the device: load on the host, move back
      t.move_to(Device::cpu);
      std::memcpy(t.f32(), src->to(Device::cpu).f32(), static_cast<std::size_t>(t.numel()) * 4);
      t.move_to(d);
    }
  steps_ = steps;
}

}  // namespace detdl
