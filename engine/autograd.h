// Reverse-mode autograd on a tape.
//
// Every differentiable op that has an input requiring a gradient appends one Node to the
// calling thread's tape: its inputs, its output, and a closure that maps the output's
// gradient to gradients of the inputs. backward(loss) walks the tape from the newest node
// to the oldest (a valid topological order, and the same order on every run, thread count
// and device), then clears it.
//
// The accumulation rule, written once (accumulate_grad): the first gradient that reaches
// a tensor is stored as its .grad; every later one is added element-wise, grad = grad + g,
// in tape order. Leaves (parameters) keep their .grad across backward calls until
// zero_grad(); a parameter used twice in one step therefore gets both contributions, in a
// fixed order. Gradient closures never write .grad themselves: they return fresh tensors.
#pragma once
#include <functional>
#include <vector>

#include "engine/ops/registry.h"
#include "engine/tensor.h"

namespace detdl {

struct Node {
  std::vector<Tensor> inputs;
  Tensor output;
  // Given d(loss)/d(output), returns one gradient per input (undefined where an input
  // needs none). Closures capture what the backward needs (saved activations, indices).
  std::function<std::vector<Tensor>(const Tensor& grad_output)> backward;
  OpKind kind = OpKind::count_;
  const char* name() const { return kind == OpKind::count_ ? "?" : op_info(kind).name; }
};

// True while gradients are being recorded on this thread (default true).
bool grad_enabled();

// Disables recording on this thread for its lifetime (evaluation, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True if any input requires a gradient and recording is on: ops call this to decide
// whether to record.
bool needs_grad(const std::vector<Tensor>& inputs);

// Records a node for the op `kind` (engine/ops/registry.h); marks output as requiring
// grad. No-op when !needs_grad(inputs).
void record(OpKind kind, std::vector<Tensor> inputs, const Tensor& output,
            std::function<std::vector<Tensor>(const Tensor&)> backward);

// The accumulation rule (see the header comment).
void accumulate_grad(const Tensor& t, Tensor g);

// Seeds d(loss)/d(loss) = 1 (loss must have one element), runs the tape backwards,
// accumulates into every tensor that requires a gradient, and clears the tape.
void backward(const Tensor& loss);

// Drops the tape without running it (e.g. after an evaluation pass with recording on).
void clear_tape();
std::size_t tape_size();

}  // namespace detdl
