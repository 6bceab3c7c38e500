#include "engine/autograd.h"

#include <stdexcept>

#include "engine/cuda_backend.h"
#include "kernels/cpu/parallel.h"

namespace detdl {
namespace {
thread_local std::vector<Node> tape;
thread_local bool recording = true;
}  // namespace

bool grad_enabled() { return recording; }
NoGradGuard::NoGradGuard() : previous_(recording) { recording = false; }
NoGradGuard::~NoGradGuard() { recording = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!recording) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(OpKind kind, std::vector<Tensor> inputs, const Tensor& output,
            std::function<std::vector<Tensor>(const Tensor&)> backward) {
  if (!needs_grad(inputs)) return;
  output.impl().requires_grad = true;
  tape.push_back(Node{std::move(inputs), output, std::move(backward), kind});
}

void accumulate_grad(const Tensor& t, Tensor g) {
  if (!g.defined()) return;
  TensorImpl& impl = t.impl();
  if (g.shape() != impl.shape)
    throw std::logic_error("gradient of shape " + shape_str(g.shape()) + " for a tensor of shape " +
                           shape_str(impl.shape));
  if (g.device() != t.device())
    throw std::logic_error("gradient on " + std::string(device_name(g.device())) +
                           " for a tensor on " + std::string(device_name(t.device())));
  if (!impl.grad) {
    impl.grad = g.impl_ptr();
    return;
  }
  float* acc = static_cast<float*>(impl.grad->storage->data);
  if (g.device() == Device::cuda) {
    gpu::add_inplace(g.numel(), acc, g.data_f32());
    return;
  }
  const float* add = g.f32();
  cpu::parallel_ranges(g.numel(), [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t i = b; i < e; ++i) acc[i] = acc[i] + add[i];
  });
}

void backward(const Tensor& loss) {
  if (loss.numel() != 1)
    throw std::invalid_argument("backward: the loss must have one element, got shape " +
                                shape_str(loss.shape()));
  if (!loss.requires_grad())
    throw std::invalid_argument("backward: the loss does not require a gradient");
  accumulate_grad(loss, Tensor::full(loss.shape(), 1.0f).to(loss.device()));
  // Move the tape out first so that a throwing closure cannot leave it half-run.
  std::vector<Node> nodes;
  nodes.swap(tape);
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const auto& gout = it->output.impl().grad;
    if (!gout) continue;  // this output does not reach the loss
    std::vector<Tensor> gin = it->backward(Tensor(gout));
    if (gin.size() != it->inputs.size())
      throw std::logic_error(std::string("backward of ") + it->name() +
                             " returned a wrong number of gradients");
    for (std::size_t i = 0; i < gin.size(); ++i)
      if (it->inputs[i].defined() && it->inputs[i].requires_grad())
        accumulate_grad(it->inputs[i], std::move(gin[i]));
    // Free the intermediate's gradient as soon as it is consumed.
    it->output.impl().grad.reset();
  }
}

void clear_tape() { tape.clear(); }
std::size_t tape_size() { return tape.size(); }

}  // namespace detdl
