// Losses, softmax and penalties over kernels/cpu/loss.h (whose header names the orders) or,
// for CUDA tensors, kernels/cuda/loss.h (the same orders). Each loss returns a () tensor on
// the host, whatever the input's device (the kernels hand the value back to the host): the
// mean over the batch (or elements). Gradients go back on the input's device.
#include <optional>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/ops.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/parallel.h"

namespace detdl::ops {
namespace {

// d(loss)/d(input) = g * dlocal for a () upstream gradient g.
Tensor scaled(const Tensor& dlocal, const Tensor& g) {
  const float s = g.item();
  if (s == 1.0f) return dlocal;
  if (dlocal.device() == Device::cuda) {
    Tensor out = Tensor::empty_on(Device::cuda, dlocal.shape());
    gpu::scale(dlocal.numel(), dlocal.data_f32(), s, out.data_f32());
    return out;
  }
  Tensor out = Tensor::empty(dlocal.shape());
  for (std::int64_t i = 0; i < out.numel(); ++i) out.f32()[i] = dlocal.f32()[i] * s;
  return out;
}

Level loss_level() { return context().level(OpFamily::loss_reduce); }

// The `emulated` level's implementation of this CPU loss call (kernels/cpu/loss.h), or
// nullopt when none of its families is emulated (the canonical kernel runs). Each family's
// draw is taken once per call, in this fixed order.
std::optional<cpu::LossImpl> emulated_loss(bool with_math) {
  RunContext& ctx = context();
  const auto r = ctx.impl_draw(ImplFamily::reduce);
  const auto l = ctx.impl_draw(ImplFamily::loss);
  const auto m = with_math ? ctx.impl_draw(ImplFamily::math) : std::nullopt;
  if (!r && !l && !m) return std::nullopt;
  return cpu::loss_impl(l ? &*l : nullptr, m ? &*m : nullptr, r ? &*r : nullptr);
}

// A penalty sum on w's device: the reduce family's shape when emulated (one draw on either
// device), else the level's order.
float penalty_sum(const Tensor& w, float (*canonical)(Level, std::int64_t, const float*),
                  float (*emulated)(const cpu::LossImpl&, std::int64_t, const float*),
                  float (*on_gpu)(const SumOrder&, std::int64_t, const float*)) {
  const auto r = context().impl_draw(ImplFamily::reduce);
  if (w.device() == Device::cuda)
    return on_gpu(SumOrder::of(loss_level(), r), w.numel(), w.data_f32());
  if (r) return emulated(cpu::loss_impl(nullptr, nullptr, &*r), w.numel(), w.f32());
  return canonical(loss_level(), w.numel(), w.f32());
}

// Softmax alone has no reduction to draw: only the loss and math families.
std::optional<cpu::LossImpl> emulated_softmax() {
  RunContext& ctx = context();
  const auto l = ctx.impl_draw(ImplFamily::loss);
  const auto m = ctx.impl_draw(ImplFamily::math);
  if (!l && !m) return std::nullopt;
  return cpu::loss_impl(l ? &*l : nullptr, m ? &*m : nullptr, nullptr);
}

// The CUDA kernels' form of an emulated loss call (the same draws as the CPU's, in the same
// order): LossImpl's loss and math choices.
LossForm cuda_form(const std::optional<cpu::LossImpl>& e) {
  if (!e) return {};
  return {e->subtract_max, e->log_of_softmax, e->reciprocal_mean, e->log_softmax_grad,
          e->alt_exp,      e->alt_log,        e->alt_log1p};
}

// The order of the loss mean on CUDA: LossImpl's reduce shape, else the level's.
SumOrder cuda_order(const std::optional<cpu::LossImpl>& e) {
  if (e && e->reduce != cpu::ReduceShape::canonical) return {loss_level(), e->reduce_draw};
  return loss_level();
}

}  // namespace

Tensor softmax(const Tensor& logits) {
  check_ndim(logits, 2, "softmax input (N, K)");
  check_dtype(logits, DType::f32, "softmax input");
  Tensor p = Tensor::empty_on(logits.device(), logits.shape());
  if (logits.device() == Device::cuda)
    gpu::softmax_forward(logits.dim(0), logits.dim(1), logits.data_f32(), p.data_f32(),
                         cuda_form(emulated_softmax()));
  else if (const auto e = emulated_softmax())
    cpu::softmax_forward(*e, logits.dim(0), logits.dim(1), logits.f32(), p.f32());
  else
    cpu::softmax_forward(logits.dim(0), logits.dim(1), logits.f32(), p.f32());
  return p;
}

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, CrossEntropyForm form) {
  check_ndim(logits, 2, "softmax_cross_entropy logits (N, K)");
  check_dtype(labels, DType::i32, "softmax_cross_entropy labels");
  check_shape(labels, {logits.dim(0)}, "softmax_cross_entropy labels");
  check_dtype(logits, DType::f32, "softmax_cross_entropy logits");
  const Device dev = same_device({logits, labels}, "softmax_cross_entropy");
  const std::int64_t N = logits.dim(0), K = logits.dim(1);
  const bool grad = needs_grad({logits});
  Tensor d = grad ? Tensor::empty_on(dev, logits.shape()) : Tensor();
  float* dp = grad ? d.data_f32() : nullptr;
  float loss;
  const auto e = emulated_loss(true);
  if (dev == Device::cuda)
    loss = gpu::softmax_cross_entropy(cuda_order(e), N, K, logits.data_f32(), labels.data_i32(),
                                      nullptr, dp, form, cuda_form(e));
  else if (e)
    loss = cpu::softmax_cross_entropy(*e, N, K, logits.f32(), labels.i32(), nullptr, dp, form);
  else
    loss = cpu::softmax_cross_entropy(loss_level(), N, K, logits.f32(), labels.i32(), nullptr, dp,
                                      form);
  Tensor y = Tensor::scalar(loss);
  record(OpKind::softmax_cross_entropy, {logits}, y,
         [d](const Tensor& g) { return std::vector<Tensor>{scaled(d, g)}; });
  return y;
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& targets, bool from_logits) {
  check_shape(targets, input.shape(), "binary_cross_entropy targets");
  check_dtype(targets, DType::f32, "binary_cross_entropy targets");
  check_dtype(input, DType::f32, "binary_cross_entropy input");
  const Device dev = same_device({input, targets}, "binary_cross_entropy");
  const bool grad = needs_grad({input});
  Tensor d = grad ? Tensor::empty_on(dev, input.shape()) : Tensor();
  float* dp = grad ? d.data_f32() : nullptr;
  const std::int64_t n = input.numel();
  float loss;
  const auto e = emulated_loss(true);
  if (dev == Device::cuda)
    loss = gpu::binary_cross_entropy(cuda_order(e), n, input.data_f32(), targets.data_f32(),
                                     from_logits, nullptr, dp, cuda_form(e));
  else if (e)
    loss = cpu::binary_cross_entropy(*e, n, input.f32(), targets.f32(), from_logits, nullptr, dp);
  else
    loss = cpu::binary_cross_entropy(loss_level(), n, input.f32(), targets.f32(), from_logits,
                                     nullptr, dp);
  Tensor y = Tensor::scalar(loss);
  record(OpKind::binary_cross_entropy, {input}, y,
         [d](const Tensor& g) { return std::vector<Tensor>{scaled(d, g)}; });
  return y;
}

Tensor mean_squared_error(const Tensor& pred, const Tensor& target) {
  check_shape(target, pred.shape(), "mean_squared_error target");
  check_dtype(target, DType::f32, "mean_squared_error target");
  check_dtype(pred, DType::f32, "mean_squared_error prediction");
  const Device dev = same_device({pred, target}, "mean_squared_error");
  const bool grad = needs_grad({pred});
  Tensor d = grad ? Tensor::empty_on(dev, pred.shape()) : Tensor();
  float* dp = grad ? d.data_f32() : nullptr;
  const std::int64_t n = pred.numel();
  float loss;
  const auto e = emulated_loss(false);  // no transcendental: no math draw
  if (dev == Device::cuda)
    loss = gpu::mean_squared_error(cuda_order(e), n, pred.data_f32(), target.data_f32(), nullptr,
                                   dp, cuda_form(e));
  else if (e)
    loss = cpu::mean_squared_error(*e, n, pred.f32(), target.f32(), nullptr, dp);
  else
    loss = cpu::mean_squared_error(loss_level(), n, pred.f32(), target.f32(), nullptr, dp);
  Tensor y = Tensor::scalar(loss);
  record(OpKind::mean_squared_error, {pred}, y,
         [d](const Tensor& g) { return std::vector<Tensor>{scaled(d, g)}; });
  return y;
}

Tensor l1_penalty(const Tensor& w, float lambda) {
  const bool on_gpu = w.device() == Device::cuda;
  Tensor y =
      Tensor::scalar(lambda * penalty_sum(w, cpu::l1_penalty, cpu::l1_penalty, gpu::l1_penalty));
  record(OpKind::l1_penalty, {w}, y, [w, lambda, on_gpu](const Tensor& g) {
    Tensor d = Tensor::zeros(w.shape()).to(w.device());
    if (on_gpu)
      gpu::l1_penalty_grad_add(w.numel(), w.data_f32(), lambda, d.data_f32());
    else
      cpu::l1_penalty_grad_add(w.numel(), w.f32(), lambda, d.f32());
    return std::vector<Tensor>{scaled(d, g)};
  });
  return y;
}

// lambda * sum(w^2); gradient 2 * lambda * w (cpu::l2_penalty_grad_add).
Tensor l2_penalty(const Tensor& w, float lambda) {
  const bool on_gpu = w.device() == Device::cuda;
  Tensor y =
      Tensor::scalar(lambda * penalty_sum(w, cpu::l2_penalty, cpu::l2_penalty, gpu::l2_penalty));
  record(OpKind::l2_penalty, {w}, y, [w, lambda, on_gpu](const Tensor& g) {
    Tensor d = Tensor::zeros(w.shape()).to(w.device());
    if (on_gpu)
      gpu::l2_penalty_grad_add(w.numel(), w.data_f32(), lambda, d.data_f32());
    else
      cpu::l2_penalty_grad_add(w.numel(), w.f32(), lambda, d.f32());
    return std::vector<Tensor>{scaled(d, g)};
  });
  return y;
}

}  // namespace detdl::ops
